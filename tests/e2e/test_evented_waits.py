"""Only RDS events end the deletion's and the restore's waits: with no wake-up of theirs, no watchdog and no
reconciler to end them, a restore completes because the rules match RDS's events, and stalls when they don't."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from aurora_restore.local.runtime import LocalRuntime
from functions.routes import RECONCILE, build_routes
from schemas.common import Step

pytestmark = pytest.mark.e2e

EVENTED = (Step.DELETE_RDS.value, Step.CHECK_RESTORE_STATUS.value)
# Far beyond any timeout here: were an evented wait's safety re-check ever due, it would not be in time.
HOURS = 3600.0


def events_only(start_runtime: Callable[..., LocalRuntime]) -> LocalRuntime:
    """A runtime where only the copy's wake-ups fire (Aurora sends no copy event); no other schedule, no
    watchdog, no reconciler scan: the deletion and the restore can only be moved on by RDS events."""
    return start_runtime(
        wakeups_fired_for=frozenset({Step.CHECK_COPY_STATUS.value}),
        reconciler=False,
        event_wait_recheck_seconds=HOURS,
        stall_seconds=HOURS,
    )


def _runs(state: Any, step: str) -> list[tuple[str, str]]:
    return [(entry.outcome, entry.trigger) for entry in state.history if entry.step == step]


def test_rds_events_alone_end_the_deletion_and_the_restore(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given the local runtime where nothing but an RDS event can end the deletion's or the restore's wait
    runtime = events_only(start_runtime)

    # When a refresh is requested
    runtime.put_restore_requested("evented-only", date.today())
    state = runtime.wait_for("evented-only", timeout=90)

    # Then it completes, each evented wait entered by the step before it and moved on only by RDS events
    assert state is not None and state.status == "completed", state and (state.error, state.history[-3:])
    for step in EVENTED:
        runs = _runs(state, step)
        assert runs[0] == ("waiting", "StepCompleted"), runs
        assert runs[-1][0] == "success", runs
        assert all(trigger.startswith("RDS-EVENT-") for _, trigger in runs[1:]), runs
    # And none of their wake-ups fired, nor any watchdog, and the reconciler never ran
    fired = [detail for _, detail in runtime.wakeup_log]
    assert all(detail.get("step") == Step.CHECK_COPY_STATUS.value for detail in fired), fired
    assert not [d for d in runtime.deliveries if d.function == RECONCILE]


def test_with_rules_that_match_no_rds_event_the_deletion_waits_on(
    start_runtime: Callable[..., LocalRuntime], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same runtime, but its RDS rules matching an event id RDS never sends
    def unmatched(target_region: str | None = None) -> list[Any]:
        return [
            dataclasses.replace(
                route, pattern={"source": ["aws.rds"], "detail": {"EventID": ["RDS-EVENT-NONE"]}}
            )
            if route.bus == "default"
            else route
            for route in build_routes(target_region)
        ]

    monkeypatch.setattr("aurora_restore.local.delivery.build_routes", unmatched)
    runtime = events_only(start_runtime)

    # When a refresh is requested and the old target is long gone from RDS
    runtime.put_restore_requested("events-unmatched", date.today())
    runtime.wait_for_step("events-unmatched", Step.CHECK_COPY_STATUS.value, timeout=60)
    assert runtime.simulator is not None
    deadline = time.monotonic() + 60
    while not any(w.action == "DeleteDBCluster" and w.finished for w in runtime.simulator.works):
        assert time.monotonic() < deadline, "the simulator never deleted the old target"
        time.sleep(0.1)
    time.sleep(3)

    # Then the operation still waits at delete_rds: only an RDS event could have moved it on
    state = runtime.state("events-unmatched")
    assert state is not None and (state.status, state.next_step) == ("waiting", Step.DELETE_RDS.value), (
        state.status,
        state.next_step,
    )
    assert [trigger for _, trigger in _runs(state, Step.DELETE_RDS.value)] == ["StepCompleted"]
