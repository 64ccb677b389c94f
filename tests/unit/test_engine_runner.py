"""The runner over an in-memory store: claims, deferral, the outbox and overdue waits, in milliseconds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fakes.engine import Bus
from fakes.memory_store import MemoryStateStore

from functions.engine import writer
from functions.engine.claims import Claims
from functions.engine.contract import Done, StepContext, Wait, Waiting
from functions.engine.runner import StepRunner
from functions.engine.services import Services
from functions.engine.transitions import new_operation
from functions.engine.triggers import Trigger, TriggerKind
from functions.errors import ClaimHeld, StepError
from schemas.common import Step, utcnow
from schemas.config import RestoreConfig
from schemas.outputs import StepOutputs
from schemas.state import Claim, OperationState
from unit.fakes import RUNBOOK_CONFIG, SETTINGS


def services(store: MemoryStateStore, bus: Bus) -> Services:
    return Services(SETTINGS, publisher=bus, store=store)


def at_step(store: MemoryStateStore, step: Step, **fields: Any) -> OperationState:
    state = new_operation(Trigger.internal(TriggerKind.OPERATOR, "op-1"), "op-1", SETTINGS, utcnow())
    state.config = RestoreConfig.model_validate(RUNBOOK_CONFIG).model_dump(mode="json")
    state.next_step = step
    for name, value in fields.items():
        setattr(state, name, value)
    return store.create(state)


def event(step: Step) -> dict[str, Any]:
    previous = list(Step)[list(Step).index(step) - 1]
    detail = {
        "operation_id": "op-1",
        "step": previous.value,
        "next_step": step.value,
        "message": "m",
        "result": {},
    }
    return {"source": "aurora-restore", "detail-type": "StepCompleted", "detail": detail}


def copied(ctx: StepContext) -> Done:
    return Done("copied", Step.CHECK_COPY_STATUS, outputs=StepOutputs(target_snapshot="s-copy"))


def test_a_step_runs_commits_once_and_puts_its_event(store: MemoryStateStore, bus: Bus) -> None:
    at_step(store, Step.COPY_SNAPSHOT)
    answer = StepRunner(Step.COPY_SNAPSHOT, copied, services(store, bus))(event(Step.COPY_SNAPSHOT))
    state = store.get("op-1")
    assert state is not None
    assert answer["next_step"] == "check_copy_status"
    assert (state.next_step, state.outputs["target_snapshot"], state.claim, state.outbox) == (
        "check_copy_status",
        "s-copy",
        None,
        [],
    )
    assert [e.detail_type for e in bus.events] == ["StepCompleted"]


def test_a_duplicate_trigger_replays_and_changes_nothing(store: MemoryStateStore, bus: Bus) -> None:
    at_step(store, Step.COPY_SNAPSHOT)
    runner = StepRunner(Step.COPY_SNAPSHOT, copied, services(store, bus))
    first = runner(event(Step.COPY_SNAPSHOT))
    version = store.get("op-1").version  # type: ignore[union-attr]

    def must_not_run(ctx: StepContext) -> Done:
        raise AssertionError("ran twice")

    again = StepRunner(Step.COPY_SNAPSHOT, must_not_run, services(store, bus))(event(Step.COPY_SNAPSHOT))
    assert again == first
    assert store.get("op-1").version == version  # type: ignore[union-attr]
    assert len(bus.events) == 1


def test_a_live_claim_of_another_invocation_holds_the_step(store: MemoryStateStore, bus: Bus) -> None:
    # Given another invocation running copy_snapshot, and no wake-ups configured
    until = utcnow() + timedelta(minutes=5)
    at_step(store, Step.COPY_SNAPSHOT, claim=Claim(step=Step.COPY_SNAPSHOT, token="other", until=until))

    # When its duplicate trigger comes, it raises ClaimHeld (retryable) and runs nothing
    with pytest.raises(ClaimHeld):
        StepRunner(Step.COPY_SNAPSHOT, copied, services(store, bus))(event(Step.COPY_SNAPSHOT))
    assert store.get("op-1").next_step == "copy_snapshot"  # type: ignore[union-attr]
    assert bus.events == []


def test_a_claim_left_by_a_dead_invocation_expires(store: MemoryStateStore, bus: Bus) -> None:
    until = utcnow() - timedelta(seconds=1)
    at_step(store, Step.COPY_SNAPSHOT, claim=Claim(step=Step.COPY_SNAPSHOT, token="dead", until=until))
    answer = StepRunner(Step.COPY_SNAPSHOT, copied, services(store, bus))(event(Step.COPY_SNAPSHOT))
    assert answer["status"] == "success"


def test_a_duplicate_defers_to_the_watchdog_when_one_can_be_armed(
    store: MemoryStateStore, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    armed: list[Any] = []
    monkeypatch.setattr("functions.wakeup.arm_watchdog", lambda s, op, at: armed.append(at) or True)
    until = utcnow() + timedelta(minutes=5)
    at_step(store, Step.COPY_SNAPSHOT, claim=Claim(step=Step.COPY_SNAPSHOT, token="other", until=until))

    answer = StepRunner(Step.COPY_SNAPSHOT, copied, services(store, bus))(event(Step.COPY_SNAPSHOT))

    assert answer["status"] == "deferred"
    assert armed == [until + timedelta(seconds=1)]


def test_claims_take_and_release_through_the_version_condition(store: MemoryStateStore) -> None:
    state = at_step(store, Step.COPY_SNAPSHOT)
    mine, theirs = Claims(Step.COPY_SNAPSHOT, store, SETTINGS), Claims(Step.COPY_SNAPSHOT, store, SETTINGS)
    taken = mine.take(state)
    with pytest.raises(ClaimHeld):
        theirs.take(store.get("op-1"))  # type: ignore[arg-type]
    mine.release(taken, retry_error="throttled")
    released = store.get("op-1")
    assert released is not None
    assert (released.claim, released.retry_error) == (None, "throttled")


def test_events_the_bus_refused_wait_in_the_outbox_and_the_trigger_is_retried(
    store: MemoryStateStore, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    at_step(store, Step.COPY_SNAPSHOT)
    bus.down = True
    with pytest.raises(StepError) as raised:
        StepRunner(Step.COPY_SNAPSHOT, copied, services(store, bus))(event(Step.COPY_SNAPSHOT))
    assert raised.value.retryable
    state = store.get("op-1")
    assert state is not None
    assert state.next_step == "check_copy_status"  # the transition stands
    assert [item["detail_type"] for item in state.outbox] == ["StepCompleted"]

    # When the bus is back and the retry comes past the grace, the replay puts the outbox on the bus
    bus.down = False
    monkeypatch.setattr(writer, "OUTBOX_GRACE", timedelta(0))
    answer = StepRunner(Step.COPY_SNAPSHOT, copied, services(store, bus))(event(Step.COPY_SNAPSHOT))
    assert answer["next_step"] == "check_copy_status"
    assert [e.detail_type for e in bus.events] == ["StepCompleted"]
    assert store.get("op-1").outbox == []  # type: ignore[union-attr]


def test_a_check_past_the_deadline_that_still_waits_fails_the_operation(
    store: MemoryStateStore, bus: Bus
) -> None:
    def still_copying(ctx: StepContext) -> Waiting:
        return Waiting("copying", Wait("snapshot copy s-copy", timeout_minutes=60))

    at_step(store, Step.CHECK_COPY_STATUS)
    runner = StepRunner(Step.CHECK_COPY_STATUS, still_copying, services(store, bus))
    recheck = {"source": "aurora-restore", "detail-type": "RecheckDue"}
    recheck["detail"] = {"operation_id": "op-1", "step": "check_copy_status"}  # type: ignore[assignment]
    assert runner(recheck)["status"] == "success"
    state = store.get("op-1")
    assert state is not None and state.waiting is not None
    state.waiting.deadline = utcnow() - timedelta(seconds=1)
    store.save(state)

    answer = runner(recheck)

    failed = store.get("op-1")
    assert failed is not None
    assert answer["error"]["type"] == "WaitTimedOut"
    assert (failed.status, failed.failed_step, failed.waiting) == ("failed", "check_copy_status", None)
    assert [e.detail_type for e in bus.events] == ["StepWaiting", "StepFailed", "OperationFinished"]
