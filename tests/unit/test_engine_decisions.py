"""The engine's pure decisions: admission (run, replay, refuse, ignore) and transitions (state, events, answer)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from functions.config import ResolvedConfig
from functions.engine.admission import Ignore, Refuse, Replay, Run, admit
from functions.engine.contract import Done, Finished, Wait, Waiting
from functions.engine.transitions import fail, new_operation, overdue, succeed
from functions.engine.triggers import Trigger, TriggerKind
from functions.errors import StepError, WaitTimedOut
from schemas.common import Step, utcnow
from schemas.config import RestoreConfig
from schemas.outputs import StepOutputs
from schemas.state import OperationState
from unit.fakes import RUNBOOK_CONFIG, SETTINGS

NOW = utcnow()


def trigger(kind: TriggerKind = TriggerKind.STEP_COMPLETED, **payload: Any) -> Trigger:
    return Trigger(kind, kind.value, "op-1", {"operation_id": "op-1", **payload})


def state_at(step: Step, status: str = "running", **fields: Any) -> OperationState:
    state = new_operation(trigger(TriggerKind.DIRECT), "op-1", SETTINGS, NOW)
    state.config = RestoreConfig.model_validate(RUNBOOK_CONFIG).model_dump(mode="json")
    state.next_step, state.status = step, status  # type: ignore[assignment]
    for name, value in fields.items():
        setattr(state, name, value)
    return state


def resolved() -> ResolvedConfig:
    return ResolvedConfig(RestoreConfig.model_validate(RUNBOOK_CONFIG), {})


# -- admission -----------------------------------------------------------------------------------------------
def test_the_step_the_operation_is_at_runs() -> None:
    assert admit(Step.COPY_SNAPSHOT, state_at(Step.COPY_SNAPSHOT), trigger()) == Run()


def test_a_recorded_step_replays_its_result_whatever_the_operation_is_at() -> None:
    # Given an operation that has passed delete_rds, with its recorded answer
    state = state_at(Step.SETUP_DB_USERS, results={"delete_rds": {"status": "success", "next_step": "x"}})

    # When a stray delete_rds call comes, direct or by event
    for kind in (TriggerKind.DIRECT, TriggerKind.RECHECK_DUE):
        decision = admit(Step.DELETE_RDS, state, trigger(kind))

        # Then it replays what was recorded, never running again
        assert decision == Replay({"status": "success", "next_step": "x"})


def test_an_ended_operation_refuses_every_step() -> None:
    state = state_at(Step.COPY_SNAPSHOT, status="aborted")
    decision = admit(Step.COPY_SNAPSHOT, state, trigger())
    assert isinstance(decision, Refuse)
    assert decision.response["status"] == "error"
    assert "op-1 is aborted" in decision.response["message"]


def test_an_event_for_another_step_is_ignored_but_a_direct_call_is_refused() -> None:
    state = state_at(Step.CHECK_COPY_STATUS, status="waiting")
    assert isinstance(admit(Step.DELETE_RDS, state, trigger()), Ignore)
    refused = admit(Step.DELETE_RDS, state, trigger(TriggerKind.DIRECT))
    assert isinstance(refused, Refuse)
    assert refused.response["error"]["type"] == "InvalidRequest"


def test_a_failure_is_notified_only_while_the_operation_is_still_failed() -> None:
    failed = state_at(Step.NOTIFY_COMPLETION, status="failed", results={"notify_completion": {"x": 1}})
    assert admit(Step.NOTIFY_COMPLETION, failed, trigger(TriggerKind.STEP_FAILED)) == Run()
    resumed = state_at(Step.NOTIFY_COMPLETION, status="running")
    assert isinstance(admit(Step.NOTIFY_COMPLETION, resumed, trigger(TriggerKind.STEP_FAILED)), Ignore)


# -- transitions ---------------------------------------------------------------------------------------------
def test_done_moves_the_operation_on_and_announces_the_next_step() -> None:
    state = state_at(Step.COPY_SNAPSHOT)
    outcome = Done(
        "copied", Step.CHECK_COPY_STATUS, fields={"a": 1}, outputs=StepOutputs(target_snapshot="s")
    )

    moved = succeed(Step.COPY_SNAPSHOT, state, trigger(), outcome, resolved(), NOW, NOW)

    assert (moved.state.status, moved.state.next_step, moved.state.current_step) == (
        "running",
        "check_copy_status",
        "copy_snapshot",
    )
    assert moved.state.outputs["target_snapshot"] == "s"
    assert [event.detail_type for event in moved.events] == ["StepCompleted"]
    assert moved.response == {
        "operation_id": "op-1",
        "status": "success",
        "message": "copied",
        "a": 1,
        "next_step": "check_copy_status",
    }
    assert moved.state.results["copy_snapshot"] == moved.response


def test_notify_completion_routes_to_cleanup_but_answers_no_next_step() -> None:
    state = state_at(Step.NOTIFY_COMPLETION)
    moved = succeed(
        Step.NOTIFY_COMPLETION, state, trigger(), Done("sent", Step.CLEANUP), resolved(), NOW, NOW
    )
    assert moved.state.next_step == "cleanup"
    assert moved.response["next_step"] is None
    assert moved.events[0].next_step == Step.CLEANUP  # type: ignore[attr-defined]


def test_a_wait_keeps_its_deadline_and_announces_itself_once() -> None:
    state = state_at(Step.CHECK_COPY_STATUS)
    waiting = Waiting("copying", Wait("snapshot copy s", timeout_minutes=60))

    first = succeed(Step.CHECK_COPY_STATUS, state, trigger(), waiting, resolved(), NOW, NOW)
    later = NOW + timedelta(minutes=5)
    second = succeed(
        Step.CHECK_COPY_STATUS,
        first.state,
        trigger(TriggerKind.RECHECK_DUE),
        waiting,
        resolved(),
        later,
        later,
    )

    assert second.state.status == "waiting"
    assert second.state.waiting is not None
    assert second.state.waiting.deadline == NOW + timedelta(minutes=60)
    assert [e.detail_type for e in first.events] == ["StepWaiting"]
    assert second.events == []
    assert second.timers.replaces == first.timers.next_check  # the state is changed in place
    assert "check_copy_status" not in second.state.results  # a wait records no result
    assert second.response["next_step"] == "check_copy_status"


def test_finished_completed_ends_the_operation_with_its_events() -> None:
    state = state_at(Step.CLEANUP)
    moved = succeed(Step.CLEANUP, state, trigger(), Finished("clean", "completed"), resolved(), NOW, NOW)
    assert moved.state.status == "completed"
    assert [e.detail_type for e in moved.events] == ["StepCompleted", "OperationFinished"]
    assert moved.state.expires_at is not None
    assert moved.response["next_step"] is None


def test_a_notified_failure_stays_failed_routes_nowhere_and_records_nothing() -> None:
    state = state_at(Step.NOTIFY_COMPLETION, status="failed")
    outcome = Finished("notified", "failed", outputs=StepOutputs(failures_notified=["x#1"]))
    moved = succeed(
        Step.NOTIFY_COMPLETION, state, trigger(TriggerKind.STEP_FAILED), outcome, resolved(), NOW, NOW
    )
    assert moved.state.status == "failed"
    assert moved.events == []
    assert "notify_completion" not in moved.state.results
    assert moved.state.outputs["failures_notified"] == ["x#1"]


def test_a_failure_fails_the_operation_and_says_what_was_left() -> None:
    state = state_at(
        Step.DELETE_RDS, outputs={"target_cluster_id": "dev-target-cluster", "deletion_started": True}
    )
    failed = fail(Step.DELETE_RDS, state, trigger(), StepError("refused"), NOW, NOW)
    assert (failed.state.status, failed.state.failed_step) == ("failed", "delete_rds")
    assert [e.detail_type for e in failed.events] == ["StepFailed", "OperationFinished"]
    assert failed.events[0].left_in_place["lease"] == "dev-target-cluster"  # type: ignore[attr-defined]
    assert failed.response["status"] == "error"


def test_a_failure_of_an_ended_operation_emits_nothing() -> None:
    state = state_at(Step.NOTIFY_COMPLETION, status="aborted")
    failed = fail(Step.NOTIFY_COMPLETION, state, trigger(), StepError("late"), NOW, NOW)
    assert failed.state.status == "aborted"
    assert failed.events == []


@pytest.mark.parametrize(("minutes_late", "fails"), [(-1, False), (0, True), (5, True)])
def test_a_check_at_or_past_the_deadline_that_still_waits_is_overdue(minutes_late: int, fails: bool) -> None:
    state = state_at(Step.CHECK_COPY_STATUS)
    waiting = Waiting("copying", Wait("snapshot copy s", timeout_minutes=60))
    state = succeed(Step.CHECK_COPY_STATUS, state, trigger(), waiting, resolved(), NOW, NOW).state
    assert state.waiting is not None
    at = state.waiting.deadline + timedelta(minutes=minutes_late)
    found = overdue(Step.CHECK_COPY_STATUS, state, waiting, at)
    assert isinstance(found, WaitTimedOut) if fails else found is None
    assert overdue(Step.CHECK_COPY_STATUS, state, Done("copied", Step.DELETE_RDS), at) is None
