"""Wake-ups in moto's EventBridge Scheduler: a wait's RecheckDue, and the operation's watchdog between waits.

Every running operation has one wake-up pending and no more: the watchdog while steps hand over to each
other, the wait's own RecheckDue while it waits, nothing once it has ended.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from aurora_restore import operations
from aurora_restore.operations import Target
from functions import database
from functions.errors import AwsError, DatabaseError
from functions.rds import RdsAdapter
from integration.world import (
    ACCOUNT,
    COPY_NAME,
    EVENT_BUS,
    OPERATION_ID,
    STATE_TABLE,
    TARGET_REGION,
    World,
    rds_backend,
    reset_function_caches,
)

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/aurora-restore-wakeups-dev"
BUS_ARN = f"arn:aws:events:{TARGET_REGION}:{ACCOUNT}:event-bus/{EVENT_BUS}"


@pytest.fixture
def scheduled(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("AURORA_RESTORE_SCHEDULER_ROLE_ARN", ROLE_ARN)
    monkeypatch.setenv("AURORA_RESTORE_EVENT_BUS_ARN", BUS_ARN)
    monkeypatch.setenv("AURORA_RESTORE_STALL_SECONDS", "900")
    reset_function_caches()
    return world


def schedules(world: World) -> dict[str, dict[str, Any]]:
    """Every pending schedule: name -> the event it will put on the bus, and when."""
    scheduler = world.client("scheduler")
    found: dict[str, dict[str, Any]] = {}
    for summary in scheduler.list_schedules().get("Schedules", []):
        schedule = scheduler.get_schedule(Name=summary["Name"], GroupName="default")
        target = schedule["Target"]
        found[summary["Name"]] = {
            "detail_type": target["EventBridgeParameters"]["DetailType"],
            "detail": json.loads(target["Input"]),
            "at": datetime.fromisoformat(schedule["ScheduleExpression"][3:-1]),
        }
    return found


def kinds(world: World) -> list[tuple[str, str | None]]:
    return sorted((s["detail_type"], s["detail"].get("step")) for s in schedules(world).values())


def test_one_wake_up_is_pending_at_every_point_of_a_run(scheduled: World) -> None:
    world = scheduled
    assert world.run("snapshot_check")["status"] == "success"
    (watchdog,) = schedules(world).values()
    assert watchdog["detail_type"] == "StallCheckDue"
    assert watchdog["detail"]["operation_id"] == OPERATION_ID
    lead = watchdog["at"] - datetime.utcnow()
    assert timedelta(seconds=800) < lead <= timedelta(seconds=901)  # at() rounds up to the whole second

    world.run("copy_snapshot")
    assert kinds(world) == [("StallCheckDue", None)]  # the same stretch: not armed twice

    # The copy is still running: the wait takes over with its own wake-up, the watchdog goes.
    rds_backend(TARGET_REGION).cluster_snapshots[COPY_NAME].status = "copying"
    assert world.run("check_copy_status")["copy_status"] == "in-progress"
    assert kinds(world) == [("RecheckDue", "check_copy_status")]

    # The copy is done: its pending wake-up is dropped and the next stretch is watched.
    rds_backend(TARGET_REGION).cluster_snapshots[COPY_NAME].status = "available"
    assert world.run("check_copy_status")["copy_status"] == "available"
    assert kinds(world) == [("StallCheckDue", None)]

    for step in ("delete_rds", "restore_snapshot", "check_restore_status"):
        while world.run(step)["next_step"] == step:
            pass
    for step in ("setup_db_users", "verify_restore", "notify_completion", "cleanup"):
        assert world.run(step)["status"] == "success"
    assert world.state()["status"] == "completed"  # type: ignore[index]
    assert schedules(world) == {}


def _stale(world: World, operation_id: str, minutes: int) -> None:
    """Make the operation look unmoved for `minutes` (as if its next step's trigger had been lost)."""
    then = (datetime.utcnow() - timedelta(minutes=minutes)).isoformat() + "Z"
    world.client("dynamodb").update_item(
        TableName=STATE_TABLE,
        Key={"operation_id": {"S": operation_id}},
        UpdateExpression="SET updated_at = :then",
        ExpressionAttributeValues={":then": {"S": then}},
    )


def _watchdog_fires(world: World, operation_id: str) -> dict[str, Any]:
    event = {
        "source": "aurora-restore",
        "detail-type": "StallCheckDue",
        "detail": {"operation_id": operation_id, "schema_version": "1"},
    }
    return world.invoke("reconcile", event)


def test_a_watchdog_re_drives_an_operation_whose_trigger_was_lost(scheduled: World) -> None:
    world = scheduled
    world.seed_operation(OPERATION_ID, "setup_db_users")
    _stale(world, OPERATION_ID, minutes=30)

    answer = _watchdog_fires(world, OPERATION_ID)

    assert answer["redriven"] == [OPERATION_ID]
    restarted = [e for e in world.published_of("StepCompleted") if e["operation_id"] == OPERATION_ID]
    assert [e["next_step"] for e in restarted] == ["setup_db_users"]
    assert kinds(world) == [("StallCheckDue", None)]  # and it keeps watching the re-driven step


def _setup_db_users_due() -> dict[str, Any]:
    """The bus's StepCompleted that starts setup_db_users."""
    from integration.test_idempotency import bus_event

    detail = {"step": "check_restore_status", "next_step": "setup_db_users", "message": "ok"}
    return bus_event("StepCompleted", {"operation_id": OPERATION_ID, **detail})


def test_a_step_that_fails_retryably_at_every_try_is_failed_after_the_last_re_drive(
    scheduled: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.reconcile import MAX_REDRIVES

    # Given an operation at setup_db_users whose database refuses every connection (retryable each time)
    world = scheduled
    world.seed_operation(OPERATION_ID, "setup_db_users")

    def unreachable(*_: Any, **__: Any) -> Any:
        raise DatabaseError("cannot connect to the writer: connection refused", retryable=True)

    monkeypatch.setattr(database, "connect", unreachable)
    trigger = _setup_db_users_due()

    # When each try fails and the watchdog re-drives the step, again and again
    for redrive in range(MAX_REDRIVES + 1):
        with pytest.raises(DatabaseError):
            world.invoke("setup_db_users", trigger)
        _stale(world, OPERATION_ID, minutes=30)
        answer = _watchdog_fires(world, OPERATION_ID)
        if redrive < MAX_REDRIVES:
            assert answer["redriven"] == [OPERATION_ID]

    # Then after the last re-drive the operation is failed at that step, with the step's last error, and
    # the failure goes out for the notification: the lease is no longer held while nobody is told
    state = world.state()
    assert state is not None and (state["status"], state["failed_step"]) == ("failed", "setup_db_users")
    assert f"after {MAX_REDRIVES} re-drives: cannot connect to the writer" in state["error"]["message"]
    assert [e["step"] for e in world.published_of("StepFailed")] == ["setup_db_users"]
    assert schedules(world) == {}


def test_a_step_only_slow_to_start_is_re_driven_without_being_failed(scheduled: World) -> None:
    """Before, every re-drive counted: a trigger queued behind others for 4 stall periods (the bench's 50
    operations on two CPUs) failed the refresh "after 4 re-drives (its trigger was lost each time)"."""
    from functions.reconcile import MAX_REDRIVES

    # Given an operation at setup_db_users whose trigger never comes, watchdog after watchdog
    world = scheduled
    world.seed_operation(OPERATION_ID, "setup_db_users")
    for _ in range(MAX_REDRIVES + 2):
        _stale(world, OPERATION_ID, minutes=30)
        assert _watchdog_fires(world, OPERATION_ID)["redriven"] == [OPERATION_ID]

    # Then it is still running, re-driven each time, never failed
    state = world.state()
    assert state is not None and (state["status"], state["redriven"]) == ("running", 0)
    assert len(world.published_of("StepCompleted")) == MAX_REDRIVES + 2
    assert world.published_of("StepFailed") == []
    assert state["stalled_since"] is not None
    # And when a trigger reaches the step at last, the operation goes on, no longer counted as stalled
    assert world.run("setup_db_users")["status"] == "success"
    state = world.state()
    assert state is not None and (state["next_step"], state["stalled_since"]) == ("verify_restore", None)


class Killed(BaseException):
    """The Lambda runtime ending an invocation (timeout, out of memory): none of our code runs after it."""


def _expire_claim(world: World, operation_id: str) -> None:
    """Let the dead invocation's claim run out, as it does a function timeout after the invocation began."""
    then = (datetime.utcnow() - timedelta(seconds=1)).isoformat() + "Z"
    world.client("dynamodb").update_item(
        TableName=STATE_TABLE,
        Key={"operation_id": {"S": operation_id}},
        UpdateExpression="SET claim.#until = :then",
        ExpressionAttributeNames={"#until": "until"},
        ExpressionAttributeValues={":then": {"S": then}},
    )


def test_a_step_whose_invocation_dies_at_every_try_is_failed_after_the_last_re_drive(
    scheduled: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, an invocation that died (nothing recorded, its claim left to expire) was re-driven without
    being counted, every stall period for ever, holding the target's lease while nobody was told."""
    from functions.reconcile import MAX_REDRIVES

    # Given an operation at setup_db_users whose invocation is killed at every try, holding its claim
    world = scheduled
    world.seed_operation(OPERATION_ID, "setup_db_users")

    def killed(*_: Any, **__: Any) -> Any:
        raise Killed("Task timed out after 300.00 seconds")

    monkeypatch.setattr(database, "connect", killed)
    trigger = _setup_db_users_due()

    # When each try dies and the watchdog re-drives the step once its claim has expired
    for redrive in range(MAX_REDRIVES + 1):
        with pytest.raises(Killed):
            world.invoke("setup_db_users", trigger)
        state = world.state()
        assert state is not None and state["claim"]["step"] == "setup_db_users"  # left behind
        _expire_claim(world, OPERATION_ID)
        answer = _watchdog_fires(world, OPERATION_ID)
        if redrive < MAX_REDRIVES:
            assert answer["redriven"] == [OPERATION_ID]
            assert world.state()["redriven"] == redrive + 1  # type: ignore[index]
    assert (answer["redriven"], answer["failed"]) == ([], [OPERATION_ID])

    # Then the operation is failed at that step, saying its invocations died, and the failure is notified
    state = world.state()
    assert state is not None and (state["status"], state["failed_step"]) == ("failed", "setup_db_users")
    assert (
        f"after {MAX_REDRIVES} re-drives: its invocation ended holding its claim" in state["error"]["message"]
    )
    assert [e["step"] for e in world.published_of("StepFailed")] == ["setup_db_users"]
    assert schedules(world) == {}


def test_a_step_whose_trigger_never_arrives_is_failed_after_a_day_of_re_drives(scheduled: World) -> None:
    """A trigger queued behind others arrives in minutes; one that has not in a day of re-drives is refused
    (the function throttled to nothing, disabled, its permission gone): re-driving it for ever held the
    target's lease while nobody was told."""
    from functions.reconcile import STALLED_PERIODS

    # Given an operation at setup_db_users re-driven once already, its trigger lost
    world = scheduled
    world.seed_operation(OPERATION_ID, "setup_db_users")
    _stale(world, OPERATION_ID, minutes=30)
    assert _watchdog_fires(world, OPERATION_ID)["redriven"] == [OPERATION_ID]
    first = world.state()["stalled_since"]  # type: ignore[index]
    assert first is not None

    # When re-drives go on, still short of STALLED_PERIODS stall periods, it is re-driven again
    _stale(world, OPERATION_ID, minutes=30)
    assert _watchdog_fires(world, OPERATION_ID)["redriven"] == [OPERATION_ID]
    assert world.state()["stalled_since"] == first  # type: ignore[index]
    assert world.published_of("StepFailed") == []

    # And when the first re-drive lies STALLED_PERIODS stall periods (900 s here) back, it is failed
    then = datetime.utcnow() - timedelta(seconds=900 * STALLED_PERIODS + 60)
    world.client("dynamodb").update_item(
        TableName=STATE_TABLE,
        Key={"operation_id": {"S": OPERATION_ID}},
        UpdateExpression="SET stalled_since = :then",
        ExpressionAttributeValues={":then": {"S": then.isoformat() + "Z"}},
    )
    _stale(world, OPERATION_ID, minutes=30)
    answer = _watchdog_fires(world, OPERATION_ID)
    assert (answer["redriven"], answer["failed"]) == ([], [OPERATION_ID])

    state = world.state()
    assert state is not None and (state["status"], state["failed_step"]) == ("failed", "setup_db_users")
    assert "setup_db_users did not move in 24.0 h of re-drives" in state["error"]["message"]
    assert "its trigger does not reach it" in state["error"]["message"]
    assert [e["step"] for e in world.published_of("StepFailed")] == ["setup_db_users"]
    assert schedules(world) == {}


def test_a_watchdog_leaves_a_moving_operation_alone_and_watches_on(scheduled: World) -> None:
    world = scheduled
    world.seed_operation(OPERATION_ID, "setup_db_users")

    answer = _watchdog_fires(world, OPERATION_ID)

    assert answer["redriven"] == []
    assert world.published_of("StepCompleted") == []
    (watchdog,) = schedules(world).values()
    assert watchdog["at"] > datetime.utcnow() + timedelta(seconds=800)


def test_a_watchdog_for_a_finished_or_unknown_operation_does_nothing(scheduled: World) -> None:
    answer = _watchdog_fires(scheduled, "no-such-operation")
    assert answer["redriven"] == [] and answer["flushed"] == []
    assert schedules(scheduled) == {}


def test_a_refused_cluster_deletion_is_looked_at_again_soon(
    scheduled: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No rule listens for the instances' deletions, so a refusal must not wait for the safety re-check."""
    from functions.rds import RdsAdapter

    world = scheduled
    world.advance("delete_rds")
    monkeypatch.setattr(RdsAdapter, "delete_cluster", lambda self, cluster_id, final: False)
    assert world.run("delete_rds")["deletion_status"] == "in-progress"
    (recheck,) = schedules(world).values()
    assert recheck["detail"]["step"] == "delete_rds"
    assert recheck["at"] - datetime.utcnow() <= timedelta(seconds=61)  # at() rounds up to the whole second


def _claimed_by_another(world: World, step: str, minutes: int = 5) -> int:
    """Another invocation is running `step` (its claim live for `minutes`); the state's version then."""
    from functions.state import DynamoStateStore
    from schemas.common import Step, utcnow
    from schemas.state import Claim

    store = DynamoStateStore(STATE_TABLE, TARGET_REGION)
    state = store.get(OPERATION_ID)
    assert state is not None
    state.claim = Claim(
        step=Step(step), token="another-invocation", until=utcnow() + timedelta(minutes=minutes)
    )
    return store.save(state).version


def _recheck_due(step: str) -> dict[str, Any]:
    from integration.test_idempotency import bus_event

    return bus_event("RecheckDue", {"operation_id": OPERATION_ID, "step": step})


def test_a_wait_s_trigger_meeting_a_live_claim_defers_to_a_recheck_instead_of_raising(
    scheduled: World,
) -> None:
    """An RDS event racing a wake-up is routine at a wait. Before, the loser raised ClaimHeld, which Lambda
    counts as an error: the function's errors alarm (1 in 5 minutes) fired in normal runs."""
    # Given an operation waiting for its copy, whose wake-up fired (its schedule deleted itself) and whose
    # check that wake-up's invocation is running
    world = scheduled
    world.advance("check_copy_status")
    rds_backend(TARGET_REGION).cluster_snapshots[COPY_NAME].status = "copying"
    assert world.run("check_copy_status")["copy_status"] == "in-progress"
    (fired,) = schedules(world)
    world.client("scheduler").delete_schedule(Name=fired, GroupName="default")
    version = _claimed_by_another(world, "check_copy_status")
    world.rds_calls.clear()

    # When a second trigger of the check arrives (the reconciler's, a wake-up's)
    asked = datetime.utcnow()
    answer = world.invoke("check_copy_status", _recheck_due("check_copy_status"))

    # Then it answers without raising, having changed nothing and called no AWS API but Scheduler's
    assert answer["status"] == "deferred"
    assert "being run by another invocation" in answer["message"]
    state = world.state()
    assert state is not None and state["version"] == version
    assert state["claim"]["token"] == "another-invocation"
    assert world.rds_calls.calls == []
    # And its news is not lost: a RecheckDue comes recheck_interval_seconds (60) later
    (recheck,) = schedules(world).values()
    assert (recheck["detail_type"], recheck["detail"]["step"]) == ("RecheckDue", "check_copy_status")
    assert timedelta(seconds=59) <= recheck["at"] - asked <= timedelta(seconds=62)

    # And should the holder have died, that recheck runs the check once its claim has expired
    _expire_claim(world, OPERATION_ID)
    rds_backend(TARGET_REGION).cluster_snapshots[COPY_NAME].status = "available"
    answer = world.invoke("check_copy_status", _recheck_due("check_copy_status"))
    assert (answer["status"], answer["copy_status"]) == ("success", "available")
    assert world.state()["next_step"] == "delete_rds"  # type: ignore[index]


def test_a_wait_s_trigger_meeting_a_live_claim_raises_when_no_recheck_can_be_scheduled(world: World) -> None:
    """Without wake-ups (none configured here) a dropped trigger could be news nobody looks at for an hour:
    it raises, and Lambda delivers it again."""
    from functions.errors import ClaimHeld

    world.advance("check_copy_status")
    rds_backend(TARGET_REGION).cluster_snapshots[COPY_NAME].status = "copying"
    world.run("check_copy_status")
    version = _claimed_by_another(world, "check_copy_status")

    with pytest.raises(ClaimHeld, match="being run by another invocation"):
        world.invoke("check_copy_status", _recheck_due("check_copy_status"))
    assert world.state()["version"] == version  # type: ignore[index]


def test_a_duplicate_trigger_of_a_step_that_does_not_wait_arms_the_watchdog_for_the_claim_s_expiry(
    scheduled: World,
) -> None:
    """Before, it raised ClaimHeld: Lambda counted an error, and its retries at 1 and 3 minutes met the claim
    (the function's timeout) of a long setup_db_users still live, so the trigger went to the DLQ and its
    alarm fired although nothing was lost."""
    # Given an operation at setup_db_users that another invocation is running, its claim live 5 minutes
    world = scheduled
    world.seed_operation(OPERATION_ID, "setup_db_users")
    version = _claimed_by_another(world, "setup_db_users")
    until = datetime.fromisoformat(world.state()["claim"]["until"].rstrip("Z"))  # type: ignore[index]

    # When a duplicate of its trigger arrives
    answer = world.invoke("setup_db_users", _setup_db_users_due())

    # Then it answers without raising, having changed nothing
    assert answer["status"] == "deferred"
    assert "being run by another invocation" in answer["message"]
    assert world.state()["version"] == version  # type: ignore[index]
    # And the operation's one watchdog fires just as that claim expires (nothing else is pending)
    (watchdog,) = schedules(world).values()
    assert watchdog["detail_type"] == "StallCheckDue"
    assert timedelta(0) < watchdog["at"] - until <= timedelta(seconds=2)  # at() rounds up to the second

    # And should the holder have died, that watchdog re-drives the step, which then runs
    _expire_claim(world, OPERATION_ID)
    assert _watchdog_fires(world, OPERATION_ID)["redriven"] == [OPERATION_ID]
    (redriven,) = world.published_of("StepCompleted")
    assert redriven["next_step"] == "setup_db_users"
    assert world.invoke("setup_db_users", _setup_db_users_due())["status"] == "success"
    assert world.state()["next_step"] == "verify_restore"  # type: ignore[index]


def test_a_duplicate_trigger_of_a_step_that_does_not_wait_raises_without_wake_ups(world: World) -> None:
    """No watchdog can be armed (wake-ups not configured): it raises, and Lambda delivers it again."""
    from functions.errors import ClaimHeld

    world.seed_operation(OPERATION_ID, "setup_db_users")
    version = _claimed_by_another(world, "setup_db_users")

    with pytest.raises(ClaimHeld, match="being run by another invocation"):
        world.invoke("setup_db_users", _setup_db_users_due())
    assert world.state()["version"] == version  # type: ignore[index]


def test_a_check_past_its_deadline_fails_the_wait_and_schedules_nothing(scheduled: World) -> None:
    """The check is the last look: still copying at the deadline fails the wait there and then. Before, it
    waited on and scheduled its next check at the deadline, already past, and again, until the hourly scan."""
    from functions.state import DynamoStateStore
    from schemas.common import utcnow

    world = scheduled
    world.advance("check_copy_status")
    rds_backend(TARGET_REGION).cluster_snapshots[COPY_NAME].status = "copying"
    assert world.run("check_copy_status")["copy_status"] == "in-progress"
    store = DynamoStateStore(STATE_TABLE, TARGET_REGION)
    state = store.get(OPERATION_ID)
    assert state is not None and state.waiting is not None
    state.waiting.deadline = utcnow() - timedelta(seconds=1)
    store.save(state)

    from integration.test_idempotency import bus_event

    due = bus_event("RecheckDue", {"operation_id": OPERATION_ID, "step": "check_copy_status"})
    answer = world.invoke("check_copy_status", due)

    assert answer["status"] == "error" and answer["error"]["type"] == "WaitTimedOut"
    assert "past its deadline" in answer["error"]["message"]
    found = world.state()
    assert found is not None and found["status"] == "failed" and found["waiting"] is None
    assert schedules(world) == {}


def _refused(self: RdsAdapter, *args: Any, **kwargs: Any) -> Any:
    raise AwsError("RDS refused the call (the operator fixes the cause, then resumes)")


def _resume(world: World) -> dict[str, Any]:
    """The operator's resume; returns the event it put on the bus, as the bus would deliver it."""
    operations.resume(Target("dev", TARGET_REGION), OPERATION_ID)
    return world.published()[-1]


def test_a_resumed_stretch_between_waits_is_watched(
    scheduled: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = scheduled
    world.advance("restore_snapshot")
    with monkeypatch.context() as broken:
        broken.setattr(RdsAdapter, "restore_cluster", _refused)
        assert world.run("restore_snapshot")["status"] == "error"
    assert world.state()["status"] == "failed"  # type: ignore[index]
    assert schedules(world) == {}  # a failed operation has nothing pending

    resumed = _resume(world)
    assert world.invoke("restore_snapshot", resumed)["status"] == "success"

    assert kinds(world) == [("StallCheckDue", None)]


@pytest.mark.parametrize(
    ("copy_status", "pending"),
    [("copying", [("RecheckDue", "check_copy_status")]), ("available", [("StallCheckDue", None)])],
)
def test_a_resumed_wait_has_one_wake_up_pending(
    scheduled: World, monkeypatch: pytest.MonkeyPatch, copy_status: str, pending: list[Any]
) -> None:
    """Resumed at a waiting step: the wait's own wake-up if it still waits, else the watchdog; never both."""
    world = scheduled
    world.advance("check_copy_status")
    with monkeypatch.context() as broken:
        broken.setattr(RdsAdapter, "cluster_snapshot", _refused)
        assert world.run("check_copy_status")["status"] == "error"
    assert schedules(world) == {}

    rds_backend(TARGET_REGION).cluster_snapshots[COPY_NAME].status = copy_status
    resumed = _resume(world)
    assert resumed["detail-type"] == "RecheckDue"
    assert world.invoke("check_copy_status", resumed)["status"] == "success"

    assert kinds(world) == pending


def _abort(world: World) -> None:
    assert operations.abort(Target("dev", TARGET_REGION), OPERATION_ID).status == "aborted"
    assert world.state()["status"] == "aborted"  # type: ignore[index]


def test_abort_of_a_waiting_operation_leaves_no_wake_up(scheduled: World) -> None:
    world = scheduled
    world.advance("check_copy_status")
    rds_backend(TARGET_REGION).cluster_snapshots[COPY_NAME].status = "copying"
    assert world.run("check_copy_status")["copy_status"] == "in-progress"
    assert kinds(world) == [("RecheckDue", "check_copy_status")]

    _abort(world)

    assert schedules(world) == {}


def test_abort_of_an_operation_between_waits_leaves_no_wake_up(scheduled: World) -> None:
    world = scheduled
    world.advance("restore_snapshot")
    assert kinds(world) == [("StallCheckDue", None)]

    _abort(world)

    assert schedules(world) == {}


def test_abort_goes_ahead_when_its_wake_ups_cannot_be_dropped(
    scheduled: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropping the wake-ups is best effort: one left behind fires later and finds the operation ended."""
    from botocore.exceptions import ClientError

    from functions import aws

    world = scheduled
    world.advance("restore_snapshot")

    def denied(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DeleteSchedule")

    monkeypatch.setattr(aws.client("scheduler", TARGET_REGION), "delete_schedule", denied)

    _abort(world)

    assert kinds(world) == [("StallCheckDue", None)]


def test_the_hourly_scan_goes_on_past_an_operation_it_cannot_look_at(
    scheduled: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two stalled operations, and the first one's re-drive refused by AWS
    from functions import reconcile
    from functions.engine.services import Services
    from functions.settings import get_settings

    world = scheduled
    for operation in ("dev-restore-a", "dev-restore-b"):
        world.seed_operation(operation, "setup_db_users")
        _stale(world, operation, minutes=30)
    real = reconcile.redrive

    def redrive(state: Any, services: Any, now: datetime) -> None:
        if state.operation_id == "dev-restore-a":
            raise AwsError("PutEvents failed: AccessDenied")
        real(state, services, now)

    monkeypatch.setattr(reconcile, "redrive", redrive)

    # When the hourly scan runs
    answer = reconcile.reconcile(Services(get_settings()))

    # Then the second is still re-driven, and the first is reported for the next scan
    assert answer["redriven"] == ["dev-restore-b"]
    assert answer["unreconciled"] == ["dev-restore-a"]


def _scan(world: World) -> dict[str, Any]:
    return world.invoke("reconcile", {"source": "aws.events", "detail-type": "Scheduled Event"})


def _overdue(world: World, deadline_ago: timedelta, check_ago: timedelta) -> None:
    """Move the copy's wait back in time: its deadline and its next check both passed, nobody came."""
    from functions.state import DynamoStateStore
    from schemas.common import utcnow

    store = DynamoStateStore(STATE_TABLE, TARGET_REGION)
    state = store.get(OPERATION_ID)
    assert state is not None and state.waiting is not None
    state.waiting.deadline = utcnow() - deadline_ago
    state.waiting.since = state.waiting.deadline - timedelta(minutes=240)
    state.waiting.next_check_at = utcnow() - check_ago
    store.save(state)


def _copy_waiting_past_its_deadline(world: World) -> None:
    world.advance("check_copy_status")
    rds_backend(TARGET_REGION).cluster_snapshots[COPY_NAME].status = "copying"
    assert world.run("check_copy_status")["copy_status"] == "in-progress"
    world.published()  # forget the wait's own events
    world._captured.clear()
    _overdue(world, deadline_ago=timedelta(minutes=2), check_ago=timedelta(minutes=3))


def test_the_scan_gives_a_wait_past_its_deadline_a_last_look_and_the_copy_done_moves_on(world: World) -> None:
    """Without wake-ups (or with one lost), the hourly scan is the net. Before, it failed a wait past its
    deadline without looking: a copy that had ended, its event lost, failed the refresh."""
    from integration.test_idempotency import bus_event

    # Given a copy that ended while nobody looked (its event lost) and a wait now past its deadline
    _copy_waiting_past_its_deadline(world)
    rds_backend(TARGET_REGION).cluster_snapshots[COPY_NAME].status = "available"

    # When the scan comes by
    answer = _scan(world)

    # Then it asks for a last look instead of failing the wait
    assert (answer["rechecked"], answer["timed_out"]) == ([OPERATION_ID], [])
    (due,) = world.published_of("RecheckDue")
    assert due["step"] == "check_copy_status"
    # And that look finds the copy done: the operation goes on to the target's deletion
    world.invoke("check_copy_status", bus_event("RecheckDue", due))
    state = world.state()
    assert state is not None and (state["status"], state["next_step"]) == ("running", "delete_rds")


def test_a_last_look_that_never_comes_fails_the_wait_at_the_next_scan(world: World) -> None:
    # Given a copy still going past its wait's deadline, and the scan's last look asked for
    _copy_waiting_past_its_deadline(world)
    assert _scan(world)["rechecked"] == [OPERATION_ID]
    state = world.state()
    assert state is not None and state["status"] == "waiting"

    # When that look is lost, and an hour later the next scan finds it late too
    world.published()
    world._captured.clear()
    _overdue(world, deadline_ago=timedelta(minutes=62), check_ago=timedelta(minutes=1))
    answer = _scan(world)

    # Then the wait is failed there, once, and the failure goes out for the notification
    assert (answer["rechecked"], answer["timed_out"]) == ([], [OPERATION_ID])
    state = world.state()
    assert state is not None and (state["status"], state["failed_step"]) == ("failed", "check_copy_status")
    assert (
        state["error"]["type"] == "WaitTimedOut"
        and "past its deadline (240 min)" in state["error"]["message"]
    )
    assert [e["step"] for e in world.published_of("StepFailed")] == ["check_copy_status"]
    assert world.published_of("RecheckDue") == []
