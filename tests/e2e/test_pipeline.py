"""A whole restore on the local runtime, started by put-events and advanced only by events."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import psycopg2
import pytest

from aurora_restore.local.runtime import DATABASE, RUNBOOK_USERS, TARGET_CLUSTER, FaultProfile, LocalRuntime
from functions.sequence import RUNBOOK
from schemas.common import WAITING_STEPS

pytestmark = pytest.mark.e2e

ADVANCING = ("RecheckDue", "RDS-EVENT-")


def _triggers(state: object, step: str) -> list[tuple[str, str]]:
    return [(entry.outcome, entry.trigger) for entry in state.history if entry.step == step]  # type: ignore[attr-defined]


def login(runtime: LocalRuntime, user: dict[str, str]) -> Any:
    """A connection to the restored database as one of the runbook's users, with its password."""
    assert runtime.postgres is not None
    return psycopg2.connect(
        host="127.0.0.1",
        port=runtime.postgres.port,
        dbname=DATABASE,
        user=user["username"],
        password=user["password"],
    )


def test_put_events_runs_a_whole_restore(start_runtime: Callable[..., LocalRuntime]) -> None:
    # Given the local runtime with its fixtures (source snapshots, an existing target with a writer), and
    # RDS work that lasts the demo's seconds: long enough that no wait can be over at its first check
    from aurora_restore.local.simulator import Durations

    runtime = start_runtime(durations=Durations())
    old_target_arn = runtime.client("rds").describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)[
        "DBClusters"
    ][0]["DBClusterArn"]
    # When an operation is started with one put-events
    runtime.put_restore_requested("e2e-complete", date.today())
    state = runtime.wait_for("e2e-complete", timeout=90)

    # Then it completes, through the runbook's ten steps in order (no masking configured: no mask_data)
    assert state is not None and state.status == "completed", state and (state.error, state.history[-3:])
    done = [entry.step for entry in state.history if entry.outcome == "success"]
    assert done == [step.value for step in RUNBOOK]
    # And each waiting step was entered by StepCompleted, waited, and was advanced to success only by a
    # RecheckDue (a wake-up) or an RDS event: never by a step's event, never by sleeping
    for step in WAITING_STEPS:
        runs = _triggers(state, step.value)
        assert runs[0] == ("waiting", "StepCompleted"), runs
        assert runs[-1][0] == "success"
        assert runs[-1][1].startswith(ADVANCING), runs
    # Aurora sends no copy event: the copy can only have been noticed by a wake-up
    assert not [t for _, t in _triggers(state, "check_copy_status") if t.startswith("RDS-EVENT-")]
    assert _triggers(state, "check_copy_status")[-1][1] == "RecheckDue"

    # And the target is a new cluster, tagged with the operation, with a writer
    rds = runtime.client("rds")
    cluster = rds.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]
    tags = {
        t["Key"]: t["Value"]
        for t in rds.list_tags_for_resource(ResourceName=cluster["DBClusterArn"])["TagList"]
    }
    assert tags["aurora-restore:operation-id"] == "e2e-complete"
    assert cluster["DBClusterArn"] == old_target_arn  # same name, same ARN: the old one is gone
    members = [m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"]]
    assert members == [f"{TARGET_CLUSTER}-writer"]
    # And the copied snapshot was cleaned up and the lease released
    copies = rds.describe_db_cluster_snapshots(DBClusterIdentifier=TARGET_CLUSTER)["DBClusterSnapshots"]
    assert not [c for c in copies if c["DBClusterSnapshotIdentifier"].endswith("-copy")]
    assert (
        runtime.client("dynamodb")
        .get_item(
            TableName="aurora-restore-state-dev", Key={"operation_id": {"S": f"lease#{TARGET_CLUSTER}"}}
        )
        .get("Item")
        is None
    )
    # And a completion notification reached the queue
    queue = runtime.client("sqs").get_queue_url(QueueName="dev-notifications")["QueueUrl"]
    bodies = [
        json.loads(m["Body"])
        for m in runtime.client("sqs")
        .receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        .get("Messages", [])
    ]
    assert [(b["operation_id"], b["outcome"]) for b in bodies] == [("e2e-complete", "completed")]
    # And every step left its record in the log bucket
    keys = [
        o["Key"]
        for o in runtime.client("s3").list_objects_v2(
            Bucket="dev-aurora-restore-logs", Prefix="aurora-restore-logs/e2e-complete/"
        )["Contents"]
    ]
    assert len(keys) == 10
    # And the application user logs in to the restored database with its password and reads a table
    assert runtime.postgres is not None
    conn = login(runtime, RUNBOOK_USERS[0])
    with conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM public.users")
        assert cursor.fetchone() == (2,)
    conn.close()
    # And no invocation raised (each error counts against the function's alarm) but a concurrent duplicate's
    # ClaimHeld at a step that does not wait: a wait's step defers instead (an RDS event racing a wake-up is
    # routine). One raising after its work was done had its trigger delivered again, and ran twice over
    waits = {step.value for step in WAITING_STEPS}
    raised = [
        d
        for d in runtime.deliveries
        if d.outcome.startswith("error") and ("ClaimHeld" not in d.outcome or d.function in waits)
    ]
    assert raised == [], raised
    # And each mutating RDS call happened once
    calls = runtime.simulator.mutating_calls() if runtime.simulator else {}
    assert dict(calls) == {
        "CopyDBClusterSnapshot": 1,
        "DeleteDBInstance": 1,
        "DeleteDBCluster": 1,
        "RestoreDBClusterFromSnapshot": 1,
        "CreateDBInstance": 1,
        "ModifyDBCluster:MasterUserPassword": 1,
    }


def test_a_second_refresh_updates_the_users_it_finds_as_a_master_that_is_not_superuser(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given the stand-in's master user, made as Aurora makes it: CREATEROLE, not a superuser
    from aurora_restore.local.simulator import MASTER_USERNAME

    runtime = start_runtime()
    # When the target is refreshed twice (the roles outlive a restore on the one stand-in server, as they
    # come back with a snapshot that has them: the second run alters them)
    for operation in ("e2e-first", "e2e-second"):
        runtime.put_restore_requested(operation, date.today())
        state = runtime.wait_for(operation, timeout=90)
        # Then each completes
        assert state is not None and state.status == "completed", state and (state.error, state.history[-3:])
    assert runtime.postgres is not None
    admin = runtime.postgres.connect()
    try:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = %s", (MASTER_USERNAME,)
            )
            assert cursor.fetchone() == (False, True)
    finally:
        admin.close()
    # And the users log in with their passwords
    for user in RUNBOOK_USERS:
        login(runtime, user).close()


def test_without_rds_events_the_reconciler_completes_the_operation(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given RDS events that are never delivered
    runtime = start_runtime(faults=FaultProfile(name="no-rds-events", drop_rds_events=True))
    # When an operation runs
    runtime.put_restore_requested("e2e-no-events", date.today())
    state = runtime.wait_for("e2e-no-events", timeout=90)
    # Then it completes, every wait advanced by RecheckDue, none by an RDS event
    assert state is not None and state.status == "completed", state and state.error
    triggers = [entry.trigger for entry in state.history]
    assert not [t for t in triggers if t.startswith("RDS-EVENT-")]
    assert triggers.count("RecheckDue") >= 3
    # And RDS did produce its events: they were lost, not absent
    assert runtime.simulator is not None
    assert runtime.simulator.events and not [e for e in runtime.simulator.events if e["sent"]]


def test_a_wait_past_its_deadline_fails_cleanly(start_runtime: Callable[..., LocalRuntime]) -> None:
    # Given a snapshot copy that takes far longer than the copy timeout (0.05 min = 3 s)
    from aurora_restore.local.simulator import Durations

    runtime = start_runtime(
        durations=Durations(
            copy=60, delete_instance=0.5, delete_cluster=0.5, restore=0.5, create_instance=0.5
        ),
        config_overrides={"copy_timeout_minutes": 0.05},
    )
    # When an operation runs
    runtime.put_restore_requested("e2e-deadline", date.today())
    state = runtime.wait_for("e2e-deadline", timeout=60)
    # Then the reconciler fails it at check_copy_status with a clear error
    assert state is not None and state.status == "failed"
    assert state.failed_step == "check_copy_status"
    assert state.error is not None and state.error.type == "WaitTimedOut"
    assert "past its deadline" in state.error.message
    # And the target cluster was never touched
    assert runtime.simulator is not None
    assert not runtime.simulator.mutating_calls({TARGET_CLUSTER, f"{TARGET_CLUSTER}-instance-1"})
    # And a failure notification says where it stopped
    queue = runtime.client("sqs").get_queue_url(QueueName="dev-notifications")["QueueUrl"]
    deadline_bodies: list[dict[str, object]] = []
    for _ in range(20):
        messages = runtime.client("sqs").receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        deadline_bodies += [json.loads(m["Body"]) for m in messages.get("Messages", [])]
        if deadline_bodies:
            break
    assert deadline_bodies and deadline_bodies[0]["outcome"] == "failed", "\n".join(
        map(str, runtime.deliveries[-16:])
    )
    assert deadline_bodies[0]["failed_step"] == "check_copy_status"
