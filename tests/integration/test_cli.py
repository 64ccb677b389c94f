"""The operator's CLI: what it refuses before anything reaches the bus, and what it says when things go wrong.

Against moto (the functions' own state store and publisher, unchanged). What needs no AWS, and the
helpers both use, is in tests/unit/test_cli_offline.py.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from unit.test_cli_offline import (
    CLUSTER,
    REGION,
    copy_wait,
    failed_at_snapshot_check,
    help_text,
    operation,
    run,
)

from aurora_restore import cli, operations
from aurora_restore.operations import OperatorError, Target
from integration.world import create_state_table
from schemas.common import utcnow
from schemas.events import ErrorInfo
from schemas.state import OperationState

pytestmark = pytest.mark.integration

TARGET = Target("dev", REGION)


# -- fixtures ------------------------------------------------------------------------------------------------
class Bus:
    """What reached the dev bus: a rule sends every event on it to an SQS queue."""

    def __init__(self) -> None:
        import boto3

        self.sqs = boto3.client("sqs", region_name=REGION)
        self.queue_url = self.sqs.create_queue(QueueName="everything-on-the-bus")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name=TARGET.bus)
        events.put_rule(
            Name="everything",
            EventBusName=TARGET.bus,
            EventPattern=json.dumps({"source": ["aurora-restore"]}),
        )
        events.put_targets(Rule="everything", EventBusName=TARGET.bus, Targets=[{"Id": "q", "Arn": arn}])

    def events(self) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(message["Body"]) for message in answer.get("Messages", [])]


@pytest.fixture
def bus(mocked_aws: None) -> Bus:
    """The dev environment on (moto's) AWS: its state table and its bus."""
    create_state_table(TARGET.table, REGION)
    return Bus()


def stored(state: OperationState) -> OperationState:
    return TARGET.store().create(state)


def failed_at_setup_db_users(operation_id: str = "dev-restore-2026-11-30") -> OperationState:
    """Failed after the restore: the lease held, the copy and the restored cluster in place."""
    return operation(
        operation_id,
        status="failed",
        current_step="setup_db_users",
        failed_step="setup_db_users",
        error=ErrorInfo(
            type="ConfigError", message="secret dev/app-user-password not found", retryable=False
        ),
        outputs={
            "snapshot_name": "dev-source-cluster-snapshot-2026-11-30",
            "target_snapshot": "dev-source-cluster-snapshot-2026-11-30-copy",
            "target_cluster_id": CLUSTER,
            "cluster_endpoint": "dev-target-cluster.cluster-x.us-west-2.rds.amazonaws.com",
        },
    )


# -- 1, 2: start refuses what the first step would refuse later ----------------------------------------------
def test_start_refuses_an_operation_id_the_state_cannot_hold_before_putting_anything_on_the_bus(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the dev environment
    # When an operator starts an operation with an id holding a space and a slash
    code, out, err = run(capsys, "start", "--date", "2026-11-30", "--operation-id", "my op/1")

    # Then one line says what an operation id may hold, as other operator errors do; nothing is on the bus
    assert code == cli.EXIT_FAILED
    assert err.strip().splitlines() == [
        "aurora-restore: operation id 'my op/1' is not valid: an operation id holds 1-128 letters, digits, "
        "'.', '_', ':' and '-', and starts with a letter or digit"
    ]
    assert "Traceback" not in out + err and "ValidationError" not in out + err
    assert bus.events() == []
    assert TARGET.store().get("my op/1") is None


def test_operations_start_checks_the_operation_id_itself(bus: Bus) -> None:
    # Given the dev environment
    # When start is called (as the demo and tests do) with an id of 129 characters
    # Then it is refused before anything is put on the bus
    with pytest.raises(OperatorError, match="is not valid: an operation id holds 1-128"):
        operations.start(TARGET, "a" * 129, date(2026, 11, 30))
    assert bus.events() == []


@pytest.mark.parametrize(
    ("override", "field", "says"),
    [
        ("copy_timeout_minutes=abc", "copy_timeout_minutes", "input should be a valid number"),
        ("copy_timeout_minutes=0", "copy_timeout_minutes", "input should be greater than or equal to 0.001"),
        ("expected_tables=public.users", "expected_tables", "input should be a valid list"),
        ('expected_tables=["users"]', "expected_tables[0]", "string should match pattern"),
        ("delete_logs=maybe", "delete_logs", "input should be a valid boolean"),
        ("instance_class=r6g.large", "instance_class", "string should match pattern"),
        ("target_security_groups=sg-1234", "target_security_groups", "input should be a valid list"),
    ],
)
def test_start_refuses_an_override_its_configuration_field_does_not_take(
    bus: Bus, capsys: pytest.CaptureFixture[str], override: str, field: str, says: str
) -> None:
    # Given the dev environment
    # When an operator starts an operation with an override its field refuses
    code, out, err = run(
        capsys, "start", "--date", "2026-11-30", "--operation-id", "op-1", "--override", override
    )

    # Then one line names the field and what is wrong, and nothing is on the bus
    assert code == cli.EXIT_FAILED
    [line] = err.strip().splitlines()
    assert line.startswith(f"aurora-restore: override {override.partition('=')[0]}=")
    assert f"refused: {field}: {says}" in line
    assert "Traceback" not in out + err
    assert bus.events() == []


def test_a_long_refused_override_value_is_not_echoed(bus: Bus, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an override value of 5,000 characters that the field refuses
    value = "x" * 5000

    # When an operator starts an operation with it
    code, _, err = run(capsys, "start", "--date", "2026-11-30", "--override", f"copy_timeout_minutes={value}")

    # Then the message names the field and the value's length, not the value
    assert code == cli.EXIT_FAILED
    assert "copy_timeout_minutes=<5000 characters> is refused: copy_timeout_minutes:" in err
    assert "xxxxxxxxxx" not in err


def test_start_puts_one_restore_requested_with_the_checked_overrides_on_the_bus(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the dev environment
    # When an operator starts an operation with valid overrides
    code, out, _ = run(
        capsys,
        "start",
        "--date",
        "2026-11-30",
        "--operation-id",
        "op-1",
        "--override",
        "copy_timeout_minutes=30",
        "--override",
        'expected_tables=["public.users"]',
    )

    # Then one RestoreRequested with those overrides is on the bus
    assert code == cli.EXIT_OK, out
    [event] = bus.events()
    assert event["detail-type"] == "RestoreRequested"
    assert event["detail"]["operation_id"] == "op-1"
    assert event["detail"]["overrides"] == {"copy_timeout_minutes": 30, "expected_tables": ["public.users"]}


# -- 4: watch ------------------------------------------------------------------------------------------------
def test_watch_gives_up_on_an_operation_that_does_not_appear(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no operation no-such-op
    began = time.monotonic()

    # When an operator watches it, with a short appear timeout
    code, out, err = run(capsys, "watch", "no-such-op", "--appear-timeout", "0.3")

    # Then the watch ends soon, saying where it looked and what to check
    assert time.monotonic() - began < 10
    assert code == cli.EXIT_FAILED
    assert err.strip() == (
        f"aurora-restore: operation no-such-op did not appear in {TARGET.table} ({REGION}) within 0.3 s: "
        "check the operation id, --env and --region (`aurora-restore start` printed the id)"
    )


def test_watch_says_the_operation_carries_on_when_its_timeout_runs_out(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a running operation
    stored(operation("op-running", status="running", current_step="copy_snapshot"))

    # When an operator watches it with --timeout 0.3
    code, _, err = run(capsys, "watch", "op-running", "--timeout", "0.3")

    # Then the watch says it gave up, what the operation is, and how to follow it again
    assert code == cli.EXIT_FAILED
    assert err.strip() == (
        "aurora-restore: gave up watching after 0.3 s; op-running is still running: "
        "`aurora-restore watch op-running` to follow it again"
    )


def test_ctrl_c_during_watch_says_the_operation_carries_on(
    bus: Bus, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a waiting operation being watched
    stored(operation("op-waiting", status="waiting", current_step="check_copy_status"))

    def ctrl_c(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(operations.time, "sleep", ctrl_c)

    # When the operator presses Ctrl-C
    code, _, err = run(capsys, "watch", "op-waiting")

    # Then the watch ends with 130 and says the operation goes on
    assert code == cli.EXIT_INTERRUPTED
    assert "stopped watching op-waiting; the operation carries on: `aurora-restore watch op-waiting`" in err


# -- 9: status -----------------------------------------------------------------------------------------------
def test_status_of_a_failed_operation_shows_what_was_left_in_place(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an operation failed at setup_db_users after the restore
    from functions.notify import left_in_place

    state = stored(failed_at_setup_db_users())
    left = left_in_place(state)
    assert left  # the failure notification's dict

    # When the operator asks for its status
    code, out, _ = run(capsys, "status", state.operation_id)

    # Then it exits 1 and shows the error and each thing the failure notification says was left in place
    assert code == cli.EXIT_FAILED
    assert "error       setup_db_users: ConfigError: secret dev/app-user-password not found" in out
    shown = out[out.index("\nin place    ") :].splitlines()[1 : len(left) + 1]
    assert [line[12:] for line in shown] == [f"{name}: {value}" for name, value in left.items()]
    assert f"lease: {CLUSTER}" in out
    assert f"fix the cause, then `aurora-restore resume {state.operation_id}`" in out

    # And --json carries the same dict
    code, out, _ = run(capsys, "status", state.operation_id, "--json")
    assert code == cli.EXIT_FAILED
    assert json.loads(out)["left_in_place"] == left


# -- 10: abort -----------------------------------------------------------------------------------------------
def test_abort_of_an_operation_that_never_took_the_lease_says_no_lease_was_released(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an operation that failed at snapshot_check with LeaseHeld: another operation holds the target
    stored(failed_at_snapshot_check("second", "LeaseHeld", "held by first"))
    TARGET.store().acquire_lease(CLUSTER, "first")

    # When the operator aborts it
    code, out, _ = run(capsys, "abort", "second")

    # Then it says there was no lease of its own, and the other operation's lease stays
    assert code == cli.EXIT_OK
    assert "released" not in out
    assert out.strip() == (
        f"aborted second: it held no lease on {CLUSTER} (nothing to release), the cluster is left as it is"
    )
    assert TARGET.store().lease_holder(CLUSTER) == "first"


def test_abort_of_an_operation_with_no_target_says_there_was_no_lease(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an operation that failed before its configuration was resolved (no target)
    stored(operation("no-target", status="failed", failed_step="snapshot_check", config={}))

    # When the operator aborts it
    code, out, _ = run(capsys, "abort", "no-target")

    # Then nothing claims a lease was released
    assert code == cli.EXIT_OK
    assert out.strip() == "aborted no-target: it had no target cluster yet (no lease to release)"


def test_abort_of_an_operation_holding_the_lease_releases_it_and_says_so(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a failed operation holding the lease on its target, and the only user of its snapshot copy
    state = stored(failed_at_setup_db_users("holder"))
    TARGET.store().acquire_lease(CLUSTER, state.operation_id)
    copy = state.outputs["target_snapshot"]
    TARGET.store().join_copy(copy, "holder")

    # When the operator aborts it
    code, out, _ = run(capsys, "abort", "holder")

    # Then the lease is gone, and the output says so and names the copy nobody will delete
    assert code == cli.EXIT_OK
    assert out.strip().splitlines() == [
        f"aborted holder: lease on {CLUSTER} released, the cluster is left as it is",
        f"the snapshot copy {copy} is left in {REGION}; delete it when no longer wanted: aws rds "
        f"delete-db-cluster-snapshot --db-cluster-snapshot-identifier {copy} --region {REGION}",
    ]
    assert TARGET.store().lease_holder(CLUSTER) is None
    assert TARGET.store().get("holder").status == "aborted"  # type: ignore[union-attr]
    # And status shows what is left in place, without the lease it gave up
    code, out, _ = run(capsys, "status", "holder")
    assert f"target_snapshot: {copy}" in out and "lease:" not in out and "resume" not in out


def test_abort_tells_the_subscribers_once_and_says_so(bus: Bus, capsys: pytest.CaptureFixture[str]) -> None:
    """No function runs for an aborted operation: before, subscribers told of its failure never heard more."""
    import boto3

    # Given a failed operation whose configuration names the environment's topic and queue
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="dev-notifications")["TopicArn"]
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="dev-notifications")["QueueUrl"]
    state = failed_at_setup_db_users("told")
    state.config |= {"notification_topic_arn": topic, "notification_queue_url": queue}
    stored(state)

    # When the operator aborts it
    code, out, err = run(capsys, "abort", "told")

    # Then the abort goes to the queue (and the topic), saying where it stopped and what it left
    assert code == cli.EXIT_OK and err == ""
    assert "subscribers told: the abort was sent to the notification topic and queue (SNS " in out
    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    notice = json.loads(message["Body"])
    assert (notice["operation_id"], notice["outcome"], notice["stopped_at"]) == (
        "told",
        "aborted",
        "setup_db_users",
    )
    assert notice["target_cluster_id"] == CLUSTER and notice["left_in_place"]["lease"] is None
    assert notice["left_in_place"]["target_snapshot"] == state.outputs["target_snapshot"]
    # And a second abort is refused before anything is sent again
    assert run(capsys, "abort", "told")[0] == cli.EXIT_FAILED
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)


def test_abort_that_cannot_tell_the_subscribers_still_aborts_and_warns(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a failed operation whose notification topic no longer exists
    state = failed_at_setup_db_users("untold")
    state.config |= {
        "notification_topic_arn": f"arn:aws:sns:{REGION}:123456789012:gone",
        "notification_queue_url": f"https://sqs.{REGION}.amazonaws.com/123456789012/gone",
    }
    stored(state)

    # When the operator aborts it
    code, out, err = run(capsys, "abort", "untold")

    # Then the abort stands, and a warning says the subscribers were not told, and why
    assert code == cli.EXIT_OK and out.startswith("aborted untold: ")
    assert err.startswith(
        "warning: subscribers were not told of the abort: sending the notification failed: "
    )
    assert TARGET.store().get("untold").status == "aborted"  # type: ignore[union-attr]


def test_abort_leaves_a_shared_copy_to_the_other_operations_cleanup(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two operations sharing the day's copy, both failed (neither may leave it yet)
    state = stored(failed_at_setup_db_users("holder"))
    stored(failed_at_setup_db_users("other"))
    copy = state.outputs["target_snapshot"]
    TARGET.store().join_copy(copy, "holder")
    TARGET.store().join_copy(copy, "other")

    # When the failed one is aborted
    code, out, _ = run(capsys, "abort", "holder")

    # Then the copy is left to the other, which no longer counts the aborted one: its cleanup deletes it
    assert "deletion of" not in out  # it had not started deleting the target
    assert code == cli.EXIT_OK
    assert out.strip().splitlines()[-1] == (
        f"the snapshot copy {copy} is left to the 1 other operation(s) using it: the last one's cleanup deletes it"
    )
    assert TARGET.store().leave_copy(copy, "other") == 0


def test_status_of_an_operation_that_failed_before_taking_the_lease_names_no_lease(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an operation that failed at snapshot_check (no snapshot that day): it never took the lease
    stored(failed_at_snapshot_check("no-snapshot", "NotFound", "no snapshot"))

    # When its status is shown
    code, out, _ = run(capsys, "status", "no-snapshot")

    # Then nothing is said to be in place, as abort would find
    assert code == cli.EXIT_FAILED
    assert "in place    nothing" in out and "lease" not in out


# -- list: the environment's operations ------------------------------------------------------------------------
def _listed(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[list[str]], str]:
    """`list`'s rows, split on the runs of spaces between its columns (header first), and what followed."""
    import re

    code, out, _ = run(capsys, "list", *argv)
    lines = out.splitlines()
    table = [line for line in lines if not line.startswith("...")]
    rest = "\n".join(line for line in lines if line.startswith("..."))
    return code, [re.split(r"\s{2,}", line) for line in table], rest


def test_list_shows_the_environment_s_operations_newest_first_with_where_each_is(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three operations started an hour apart: one completed, one failed, one waiting for its copy
    now = utcnow()
    completed = operation("op-old", status="completed", current_step="cleanup")
    completed.created_at = now - timedelta(hours=2)
    failed = failed_at_setup_db_users("op-failed")
    failed.created_at = now - timedelta(hours=1)
    waiting = operation(
        "op-new",
        status="waiting",
        current_step="check_copy_status",
        next_step="check_copy_status",
        waiting=copy_wait("snapshot copy dev-copy"),
    )
    for state in (completed, failed, waiting):
        stored(state)
    TARGET.store().acquire_lease("another-cluster", "op-new")  # a lease item is not an operation

    # When the operator lists them
    code, rows, rest = _listed(capsys)

    # Then one row each, newest first: where each is, its target, and why (its error, what it waits for)
    assert code == cli.EXIT_OK
    assert rows[0] == ["OPERATION", "STATUS", "STEP", "TARGET", "STARTED (UTC)", "UPDATED (UTC)", "NOTE"]
    assert [row[:4] for row in rows[1:]] == [
        ["op-new", "waiting", "check_copy_status", CLUSTER],
        ["op-failed", "failed", "setup_db_users", CLUSTER],
        ["op-old", "completed", "cleanup", CLUSTER],
    ]
    assert rows[1][6] == "waiting for snapshot copy dev-copy"
    assert rows[2][6] == "ConfigError: secret dev/app-user-password not found"
    assert rows[3][4] == f"{completed.created_at:%Y-%m-%d %H:%M:%S}"
    assert rest == ""

    # And --status keeps those with that status, --limit the newest, saying how many more there are
    code, rows, _ = _listed(capsys, "--status", "failed")
    assert [row[0] for row in rows[1:]] == ["op-failed"]
    code, rows, rest = _listed(capsys, "--limit", "1")
    assert [row[0] for row in rows[1:]] == ["op-new"]
    assert rest == "... and 2 older (--limit 1; --limit 0 for all)"
    code, rows, _ = _listed(capsys, "--limit", "0")
    assert len(rows) == 4

    # And --json gives each with its error
    code, out, _ = run(capsys, "list", "--json")
    listed = json.loads(out)
    assert [(o["operation_id"], o["status"], o["step"]) for o in listed] == [
        ("op-new", "waiting", "check_copy_status"),
        ("op-failed", "failed", "setup_db_users"),
        ("op-old", "completed", "cleanup"),
    ]
    assert listed[1]["error"]["type"] == "ConfigError" and listed[0]["error"] is None
    assert listed[1]["target_cluster_id"] == CLUSTER


def test_list_of_an_environment_without_operations_says_so(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "list", "--status", "running")
    assert code == cli.EXIT_OK
    assert out.strip() == f"no running operations in {TARGET.table} ({REGION})"


# -- 11: an environment with no stack ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["status", "op-1", "--env", "staging"],
        ["start", "--date", "2026-11-30", "--env", "staging"],
        ["watch", "op-1", "--env", "staging"],
        ["abort", "op-1", "--env", "staging"],
        ["list", "--env", "staging"],
    ],
)
def test_an_environment_without_a_state_table_is_named_as_such(
    bus: Bus, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    # Given dev deployed, and no stack for staging
    # When an operator points a command at staging
    code, out, err = run(capsys, *argv)

    # Then one line says the staging state table does not exist in the region, and what to check
    assert code == cli.EXIT_FAILED
    assert err.strip() == (
        f"aurora-restore: the state table aurora-restore-state-staging does not exist in {REGION}: is the "
        "stack for staging deployed there, and are --env and --region right?"
    )
    assert "ResourceNotFoundException" not in out + err


def test_an_environment_without_a_bus_is_named_as_such(
    mocked_aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a state table for dev but no bus
    create_state_table(TARGET.table, REGION)

    # When an operator starts an operation
    code, _, err = run(capsys, "start", "--date", "2026-11-30", "--operation-id", "op-1")

    # Then one line names the missing bus
    assert code == cli.EXIT_FAILED
    assert err.strip() == (
        f"aurora-restore: the event bus aurora-restore-dev does not exist in {REGION}: is the stack for dev "
        "deployed there, and are --env and --region right?"
    )


def test_an_event_the_bus_refuses_is_one_line_not_a_traceback(
    bus: Bus, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bus that refuses the entry (EventBridge answers FailedEntryCount, not an exception)
    from functions.bus import EventPublisher
    from functions.errors import PublishError

    def refuse(self: Any, events: Any) -> None:
        raise PublishError([{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}])

    monkeypatch.setattr(EventPublisher, "publish", refuse)

    # When an operator starts an operation
    code, _, err = run(capsys, "start", "--date", "2026-11-30", "--operation-id", "op-1")

    # Then one line says the bus refused it and that nothing started
    assert code == cli.EXIT_FAILED
    assert err.strip() == (
        "aurora-restore: the event bus refused the event (ThrottlingException); nothing was started"
    )


# -- 12: local serve without PostgreSQL ----------------------------------------------------------------------
@pytest.fixture
def no_postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from aurora_restore.local import postgres

    def missing() -> Path:
        raise postgres.PostgresUnavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them, for example "
            "`apt-get update && apt-get install -y postgresql`, then run this again."
        )

    monkeypatch.setattr(postgres, "find_bindir", missing)
    for name in list(os.environ):
        if name.startswith(("AURORA_RESTORE_", "AWS_")):
            monkeypatch.delenv(name)
    yield


def test_local_serve_without_postgresql_says_what_is_missing(
    no_postgres: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import signal

    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    env_file = tmp_path / ".local.env"

    # Given a machine without PostgreSQL's server binaries
    # When `local serve` starts
    code, out, err = run(capsys, "local", "serve", "--env-file", str(env_file))

    # Then it says what is missing, as the demo does, exits non-zero, and leaves nothing set up
    assert code != 0
    assert err.strip() == (
        "cannot start the local runtime: PostgreSQL server binaries (initdb, pg_ctl) were not found. Install "
        "them, for example `apt-get update && apt-get install -y postgresql`, then run this again."
    )
    assert "ready" not in out and "Traceback" not in err
    assert not env_file.exists()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_the_demo_without_postgresql_says_the_same(
    no_postgres: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aurora_restore.demo import run_demo

    # Given a machine without PostgreSQL's server binaries
    # When the demo starts
    code = run_demo(log_path=tmp_path / "functions.log")

    # Then it says the same
    out = capsys.readouterr().out
    assert code == 2
    assert (
        "cannot start the local runtime: PostgreSQL server binaries (initdb, pg_ctl) were not found." in out
    )


# -- 13: help ------------------------------------------------------------------------------------------------


def test_chaos_help_lists_the_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    from aurora_restore.chaos import EXTRA_PROFILES, PROFILES

    # When the operator reads chaos's help
    text = help_text(capsys, "chaos")

    # Then --profile names every profile chaos knows
    for name in [*PROFILES, *EXTRA_PROFILES]:
        assert name in text
    assert "{profile names}" not in text


# -- 12: config show ------------------------------------------------------------------------------------------
def test_config_show_leaves_out_this_shells_config_variables_and_says_so(
    bus: Bus, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment layer is the functions' environment: shown from the operator's shell, it predicted
    a value no operation used."""
    import boto3
    from unit.fakes import RUNBOOK_CONFIG

    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/aurora-restore/dev/config", Value=json.dumps(RUNBOOK_CONFIG), Type="String")
    ssm.put_parameter(Name="/aurora-restore/dev/db_users", Value="[]", Type="String")
    monkeypatch.setenv("AURORA_RESTORE_INSTANCE_CLASS", "db.t4g.medium")

    code, out, _ = run(capsys, "config", "show", "--json")

    assert code == cli.EXIT_OK
    document = json.loads(out)
    assert document["config"]["instance_class"]["source"] == "default"
    assert document["config"]["instance_class"]["value"] != "db.t4g.medium"
    assert any("ignored: AURORA_RESTORE_INSTANCE_CLASS set in this shell" in w for w in document["warnings"])


def test_config_show_of_an_environment_without_its_parameter_says_so(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "config", "show", "--env", "nope")

    assert code != cli.EXIT_OK
    assert "SSM parameter /aurora-restore/nope/config does not exist or is empty" in err


def test_local_serve_refuses_a_directory_as_env_file_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "local", "serve", "--env-file", str(tmp_path))

    assert code == cli.EXIT_USAGE
    assert err.strip() == f"aurora-restore: --env-file {tmp_path} is a directory: name a file to write"
    assert "ready" not in out and "Traceback" not in err


# -- 13: start with the target held ----------------------------------------------------------------------------
def test_start_refuses_a_target_another_live_operation_holds_before_putting_anything_on_the_bus(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first step would refuse it at once (LeaseHeld), and the operator saw it only under watch."""
    import boto3
    from unit.fakes import RUNBOOK_CONFIG

    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/aurora-restore/dev/config", Value=json.dumps(RUNBOOK_CONFIG), Type="String"
    )
    stored(operation("first", status="waiting", current_step="check_copy_status"))
    TARGET.store().acquire_lease(RUNBOOK_CONFIG["target_cluster_id"], "first")

    code, out, err = run(capsys, "start", "--date", "2026-11-30", "--operation-id", "second")

    assert code == cli.EXIT_FAILED
    assert err.strip() == (
        f"aurora-restore: target cluster {RUNBOOK_CONFIG['target_cluster_id']} is held by operation first, which"
        " is waiting: wait for it to finish or run `aurora-restore abort first`"
    )
    assert bus.events() == [] and TARGET.store().get("second") is None
    # The same target written in upper case is the same cluster to RDS, and is refused too
    override = f"target_cluster_id={RUNBOOK_CONFIG['target_cluster_id'].upper()}"
    code, _, err = run(
        capsys, "start", "--date", "2026-11-30", "--operation-id", "second", "--override", override
    )
    assert code == cli.EXIT_FAILED and "held by operation first" in err

    # An override naming another target goes ahead; so does a lease whose holder is gone
    TARGET.store().acquire_lease("gone-target", "long-gone")
    for operation_id, cluster in (("third", "other"), ("fourth", "Gone-Target")):
        override = f"target_cluster_id={cluster}"
        code, _, _ = run(
            capsys, "start", "--date", "2026-11-30", "--operation-id", operation_id, "--override", override
        )
        assert code == cli.EXIT_OK
    assert len(bus.events()) == 2


def test_abort_after_the_deletion_started_says_the_target_was_changed(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an operation that failed at delete_rds after its writer's deletion was asked for
    state = failed_at_setup_db_users("partly")
    state.outputs["deletion_started"] = True
    stored(state)

    # When aborted
    code, out, _ = run(capsys, "abort", "partly")

    # Then "left as it is" is not all it says
    assert code == cli.EXIT_OK
    assert f"the deletion of {CLUSTER} had started" in out


@pytest.mark.parametrize("password_set", [False, True])
def test_abort_of_a_restore_says_when_the_cluster_keeps_the_sources_master_password(
    bus: Bus, capsys: pytest.CaptureFixture[str], password_set: bool
) -> None:
    # Given an operation failed at check_restore_status: its restore asked for, its cluster's master
    # password reset or not yet
    state = failed_at_setup_db_users("restoring")
    state.failed_step = "check_restore_status"  # type: ignore[assignment]
    state.results["restore_snapshot"] = {"status": "success"}
    if password_set:
        state.outputs["master_password_set"] = True
    stored(state)

    # When aborted
    code, out, _ = run(capsys, "abort", "restoring")

    # Then the operator is told to reset it only when it was not reset: production's password must not
    # stay on a development cluster
    assert code == cli.EXIT_OK
    said = f"the restored {CLUSTER} keeps the source cluster's master password"
    assert (said in out) is not password_set, out
    if not password_set:
        assert f"modify-db-cluster --db-cluster-identifier {CLUSTER} --master-user-password" in out


@pytest.mark.parametrize("command", ["status", "watch", "abort", "resume"])
def test_commands_on_an_operation_check_its_id_first(
    bus: Bus, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # When an operator passes an empty id, or one pasted whole from somewhere
    for operation_id, named in (
        ("", "operation id '' is not valid"),
        ("x" * 3000, "<3000 characters> is not valid"),
    ):
        code, out, err = run(capsys, command, operation_id)

        # Then one line says what an operation id may hold, not DynamoDB's error, nor the id in full
        assert code == cli.EXIT_FAILED, (command, out, err)
        assert named in err and "ValidationException" not in out + err and "x" * 200 not in err


def test_an_environment_name_that_no_stack_can_have_is_named_as_such(
    bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "status", "--env", "Dev Env", "some-op")

    assert code == cli.EXIT_FAILED
    assert err.strip().startswith("aurora-restore: environment 'Dev Env' is not valid: lower-case letters")
