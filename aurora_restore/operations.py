"""What an operator does to an operation: start it, read it, resume it, abort it.

Uses the functions' own state store and event publisher, so the CLI and the functions share one of each.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from functions import wakeup
from functions.bus import EventPublisher
from functions.errors import StaleWrite
from functions.runner import restart_event
from functions.state import StateStore
from schemas.common import Step, utcnow
from schemas.config import CONFIG_FIELDS
from schemas.events import OperationFinished, RestoreRequested
from schemas.state import TERMINAL_STATUSES, OperationState, Waiting


class OperatorError(Exception):
    """Something the operator asked for cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    environment: str
    region: str

    @property
    def bus(self) -> str:
        return f"aurora-restore-{self.environment}"

    @property
    def table(self) -> str:
        return f"aurora-restore-state-{self.environment}"

    def store(self) -> StateStore:
        return StateStore(self.table, self.region)

    def publisher(self) -> EventPublisher:
        return EventPublisher(self.bus, self.region)


def default_operation_id(environment: str, target_date: date) -> str:
    return f"{environment}-restore-{target_date.isoformat()}-{utcnow().strftime('%H%M%S')}"


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs; a value that parses as JSON is taken as JSON (lists, numbers, booleans)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise OperatorError(f"override {pair!r} is not key=value")
        if key not in CONFIG_FIELDS:
            raise OperatorError(f"unknown configuration field {key!r} (see `aurora-restore config show`)")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    return overrides


def start(
    target: Target, operation_id: str, target_date: date, overrides: dict[str, Any] | None = None
) -> RestoreRequested:
    """One put-events of RestoreRequested: everything else is the choreography."""
    event = RestoreRequested(operation_id=operation_id, target_date=target_date, overrides=overrides or None)
    existing = target.store().get(operation_id)
    if existing is not None:
        raise OperatorError(f"operation {operation_id} exists already ({existing.status}); choose another id")
    target.publisher().publish([event])
    return event


def load(target: Target, operation_id: str) -> OperationState:
    state = target.store().get(operation_id)
    if state is None:
        raise OperatorError(f"no operation {operation_id} in {target.table} ({target.region})")
    return state


def resume(target: Target, operation_id: str) -> tuple[OperationState, str]:
    """Continue a failed operation from the step that failed, once its cause is fixed."""
    store = target.store()
    state = load(target, operation_id)
    if state.status != "failed" or state.failed_step is None:
        raise OperatorError(
            f"operation {operation_id} is {state.status}: only a failed operation can be resumed"
        )
    step = Step(state.failed_step)
    state.status = "running"
    state.next_step = step
    state.error = None
    state.expires_at = None
    try:
        store.save(state)
    except StaleWrite as exc:
        raise OperatorError(f"operation {operation_id} changed while resuming; try again") from exc
    event = restart_event(state, step, f"resumed by the operator at {step.value}")
    target.publisher().publish([event])
    return state, step.value


def _update(
    target: Target,
    operation_id: str,
    change: Callable[[OperationState], None],
    doing: str,
    attempts: int = 10,
) -> OperationState:
    """Apply `change` with a conditional write, re-reading when a running operation moved meanwhile."""
    store = target.store()
    for _ in range(attempts):
        state = load(target, operation_id)
        change(state)
        try:
            return store.save(state)
        except StaleWrite:
            continue
    raise OperatorError(f"operation {operation_id} kept changing while {doing}; try again")


def abort(target: Target, operation_id: str) -> OperationState:
    """Stop an operation: release the lease, drop its pending wake-ups, leave the target cluster as it is."""
    waited: Waiting | None = None

    def change(state: OperationState) -> None:
        nonlocal waited
        if state.status in TERMINAL_STATUSES and state.status != "failed":
            raise OperatorError(f"operation {operation_id} is {state.status} already")
        waited = state.waiting  # as of the read that is written: its wake-up's name comes from it
        state.status = "aborted"
        state.waiting = None
        state.next_step = None

    state = _update(target, operation_id, change, "aborting")
    cluster = state.config.get("target_cluster_id")
    if cluster:
        target.store().release_lease(str(cluster), operation_id)
    target.publisher().publish([OperationFinished(operation_id=operation_id, outcome="aborted")])
    wakeup.drop_all(target.environment, target.region, operation_id, waited)
    return state
