"""How the bench reads a time-scaled run back in AWS seconds (aurora_restore.bench.timeline.read_timeline):
a wait ended by a timer counts the timer time-scaled; everything an event or a function does, at face value."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from aurora_restore.bench.timeline import (
    RENAME_WORK,
    Call,
    CallRecorder,
    raised_by_type,
    read_timeline,
    switch_downtime,
)

OP = "bench-op"
SCALE = 0.5 / 60  # wall seconds per AWS second: a wall second stands for two AWS minutes
STEP = "check_restore_status"


def work(action: str, started: float, due: float) -> SimpleNamespace:
    return SimpleNamespace(
        action=action, resource="dev-target", started=started, due=due, finished=due + 0.05
    )


def done(step: str, at: float) -> SimpleNamespace:
    return SimpleNamespace(step=step, outcome="success", finished_at=datetime.fromtimestamp(at, UTC))


def call(trigger: str, started: float, finished: float, response: dict[str, Any] | None = None) -> Call:
    # As the recorder sees it: a bus event names its operation; an RDS event only through the response
    operation_id = OP if trigger == "RecheckDue" or response else None
    return Call(STEP, operation_id, trigger, started, finished, response or {})


WORKS = [work("RestoreDBClusterFromSnapshot", 10.0, 17.5), work("CreateDBInstance", 18.0, 23.0)]
SUCCESS = {"status": "success", "operation_id": OP}
WOKEN = [(17.69, {"operation_id": OP, "step": STEP})]  # the wait's wake-up fired 0.19 s after the restore


def restore_delay(calls: list[Call], wakeups: list[tuple[float, dict[str, Any]]] = WOKEN) -> float:
    reading = read_timeline(
        operation_id=OP,
        began=0.0,
        ended=24.0,
        works=WORKS,
        history=[done(STEP, 23.2)],
        calls=calls,
        scale=SCALE,
        wakeups=wakeups,
    )
    return reading.detection_s["restore"]


def test_a_restore_noticed_by_its_wake_up_counts_the_wait_for_the_timer_time_scaled() -> None:
    # the writer is created at 18.0 by the invocation the wake-up started
    delay = restore_delay([call("RecheckDue", 17.7, 18.1, SUCCESS)])
    assert delay == pytest.approx(0.19 / SCALE + (0.5 - 0.19), abs=0.2)


def test_a_restore_whose_event_reached_the_step_first_counts_at_face_value() -> None:
    # the RDS event arrived at 17.65 and lost the step's claim to the wake-up's invocation: the event,
    # not the timer, is how the operation learned, so the 0.5 s from the restore's end count as they are
    delay = restore_delay(
        [call("RDS DB Cluster Event", 17.65, 17.8), call("RecheckDue", 17.7, 18.1, SUCCESS)]
    )
    assert delay == pytest.approx(0.5, abs=0.05)


def test_an_invocation_that_found_the_step_claimed_is_not_the_one_that_noticed() -> None:
    # a wake-up's delivery ran into the event's claim and stood aside (it did no work); the event's
    # invocation created the writer
    delay = restore_delay(
        [call("RecheckDue", 17.95, 17.99), call("RDS DB Cluster Event", 17.6, 18.1, SUCCESS)],
        wakeups=[(17.94, {"operation_id": OP, "step": STEP})],
    )
    assert delay == pytest.approx(0.5, abs=0.05)


def test_aws_work_that_overlaps_counts_once() -> None:
    # the writer's deletion (5 AWS minutes) runs inside the cluster's (8): 8 minutes of work, not 13
    deletes = [
        work("DeleteDBInstance", 1.0, 1.0 + 300 * SCALE),
        work("DeleteDBCluster", 1.0, 1.0 + 480 * SCALE),
    ]
    reading = read_timeline(
        operation_id=OP,
        began=0.0,
        ended=6.0,
        works=deletes,
        history=[done("delete_rds", 6.0)],
        calls=[],
        scale=SCALE,
    )
    assert reading.work_s == pytest.approx(480, abs=0.5)
    assert reading.e2e_s == pytest.approx(480 + (6.0 - 480 * SCALE), abs=0.5)
    assert reading.overhead_s == pytest.approx(6.0 - 480 * SCALE, abs=0.1)


def test_the_recorder_counts_the_invocations_that_raised_by_type() -> None:
    # Given a runtime's handlers, one of which raises (Lambda counts it against the function's alarm)
    from functions.errors import ClaimHeld

    def answers(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"status": "deferred", "operation_id": OP}

    def raises(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise ClaimHeld("setup_db_users is being run by another invocation")

    runtime = SimpleNamespace(handlers={"check_restore_status": answers, "setup_db_users": raises})
    recorder = CallRecorder(runtime)
    event = {"detail-type": "RecheckDue", "detail": {"operation_id": OP}}

    # When each is invoked through the recorder, the raising one twice
    runtime.handlers["check_restore_status"](event, None)
    for _ in range(2):
        with pytest.raises(ClaimHeld):
            runtime.handlers["setup_db_users"](event, None)

    # Then every call is recorded, the raising ones with their exception's type, and counted by it
    calls = recorder.snapshot()
    assert [(c.function, c.raised) for c in calls] == [
        ("check_restore_status", None),
        ("setup_db_users", "ClaimHeld"),
        ("setup_db_users", "ClaimHeld"),
    ]
    assert raised_by_type(calls) == {"ClaimHeld": 2}


def test_rds_event_invocations_that_name_no_operation_are_counted_by_their_resource() -> None:
    # Given a runtime's handler answering RDS events: one it ran, one it ignored (not the step's turn, so
    # its answer names no operation), one raising; and one about another operation's cluster
    from aurora_restore.bench.timeline import of_operation, rds_triggered

    answers = iter(
        [
            {"status": "waiting", "operation_id": OP},
            {"status": "ignored", "message": "operation bench-op is at step setup_db_users"},
            {"status": "ignored", "message": "other-target belongs to no operation"},
        ]
    )

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event["detail"]["EventID"] == "RDS-EVENT-0005":
            raise RuntimeError("the state store is throttled")
        return next(answers)

    runtime = SimpleNamespace(handlers={STEP: handler})
    recorder = CallRecorder(runtime)

    def rds_event(source: str, event_id: str) -> dict[str, Any]:
        detail = {"SourceIdentifier": f"rds:{source}", "EventID": event_id}
        return {"detail-type": "RDS DB Cluster Event", "source": "aws.rds", "detail": detail}

    # When the events arrive
    runtime.handlers[STEP](rds_event("dev-target", "RDS-EVENT-0170"), None)
    runtime.handlers[STEP](rds_event("dev-target", "RDS-EVENT-0170"), None)
    with pytest.raises(RuntimeError):
        runtime.handlers[STEP](rds_event("dev-target-writer", "RDS-EVENT-0005"), None)
    runtime.handlers[STEP](rds_event("other-target", "RDS-EVENT-0170"), None)

    # Then the operation's invocations are the three about its resources, the ignored and the raising one
    # among them though neither names it; the one about another cluster is not its
    calls = recorder.snapshot()
    mine = of_operation(calls, OP, {"dev-target", "dev-target-writer"})
    assert [c.resource for c in mine] == ["dev-target", "dev-target", "dev-target-writer"]
    assert rds_triggered(mine) == {"total": 3, "ignored": 1, "raised": 1}


def test_a_swaps_downtime_is_its_switch_the_gap_between_the_renames_at_face_value() -> None:
    # Given a swap's two renames as the simulator records them (each work named by the cluster's new
    # name), 2 AWS minutes each, the second called 0.1 s after the first, and the old cluster's deletions
    # after the switch
    from functions.identifiers import swap_names

    target = "dev-target"
    new_id, old_id = swap_names(target, OP)
    rename = 120 * SCALE
    works = [
        SimpleNamespace(action=RENAME_WORK, resource=old_id, started=5.0, due=5.0 + rename, finished=6.1),
        SimpleNamespace(action=RENAME_WORK, resource=target, started=5.1, due=5.1 + rename, finished=6.2),
        work("DeleteDBInstance", 7.0, 7.0 + 300 * SCALE),
    ]

    # When the timeline is read as a swap on that target
    reading = read_timeline(
        operation_id=OP,
        began=0.0,
        ended=12.0,
        works=works,
        history=[done("swap_clusters", 6.3), done("setup_db_users", 4.0)],
        calls=[],
        scale=SCALE,
        swap_target=target,
    )

    # Then the downtime runs from the rename away to the rename in being due: 0.1 s plus 2 AWS minutes,
    # not the deletion to the users (the replace strategy's reading); both renames count as AWS work
    assert reading.downtime_s == pytest.approx(120.1, abs=0.05)
    assert reading.work_s == pytest.approx((0.1 + rename) / SCALE + 300, abs=0.5)
    assert "rename" in reading.detection_s
    # and without its renames (a swap that never switched) there is no downtime figure
    assert switch_downtime(works[2:], target, OP, SCALE) is None
