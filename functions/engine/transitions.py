"""Transitions as pure functions: from the state and a step's outcome (or failure) to the new state, its
events, the direct response and the wake-ups to change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from functions.config import ResolvedConfig
from functions.engine.contract import Done, Finished, Outcome, Waiting
from functions.engine.responses import compact, error_response
from functions.engine.timers import TimerPlan
from functions.engine.triggers import Trigger
from functions.errors import StepError, WaitTimedOut
from functions.notify import left_in_place
from functions.settings import Settings
from functions.state import expiry
from schemas.common import Step
from schemas.config import CONFIG_FIELDS, RestoreConfig
from schemas.events import (
    LATEST,
    BusEvent,
    ErrorInfo,
    OperationFinished,
    StepCompleted,
    StepFailed,
    StepWaiting,
)
from schemas.state import TERMINAL_STATUSES, HistoryEntry, OperationState
from schemas.state import Waiting as WaitRecord

# The runbook's script invokes cleanup itself and expects `next_step: null` from these two steps' direct
# answers, while notify_completion's StepCompleted still routes the choreography on to cleanup.
DIRECT_ENDS = frozenset({Step.NOTIFY_COMPLETION, Step.CLEANUP})


@dataclass
class Transition:
    """What one invocation writes (the state, with `events` in its outbox), answers, and schedules."""

    state: OperationState
    events: list[BusEvent]
    response: dict[str, Any]
    label: str
    timers: TimerPlan


def succeed(
    step: Step,
    state: OperationState,
    trigger: Trigger,
    outcome: Outcome,
    resolved: ResolvedConfig,
    started_at: datetime,
    now: datetime,
) -> Transition:
    """The step's outcome applied to the operation."""
    plan = TimerPlan(step=step, was=state.status, begins_stretch=_begins_stretch(step, state))
    state.outputs.update(outcome.outputs.recorded())
    _keep_config(state, resolved)
    state.redriven, state.retry_error, state.stalled_since = 0, None, None  # it moved
    label = "waiting" if isinstance(outcome, Waiting) else "success"
    state.history.append(_entry(step, label, outcome.message, trigger, started_at, now))
    state.current_step = step
    if isinstance(outcome, Waiting):
        events, plan = _wait(step, state, trigger, outcome, resolved.config, plan, now)
        direct_next: Step | None = step
    else:
        events, plan = _move_on(step, state, outcome, resolved.config, plan, now)
        direct_next = None if step in DIRECT_ENDS else state.next_step  # type: ignore[assignment]
    response = {
        "operation_id": state.operation_id,
        "status": "success",
        "message": outcome.message,
        **outcome.fields,
        "next_step": Step(direct_next).value if direct_next else None,
    }
    if isinstance(outcome, Done) or (isinstance(outcome, Finished) and outcome.status == "completed"):
        state.results[step.value] = compact(response, limit=60_000)
    return Transition(state, events, response, label, plan)


def _begins_stretch(step: Step, state: OperationState) -> bool:
    """Whether this run starts a stretch of steps: the first step, or a re-run of the step the operation
    failed at (the operator resumed it there: the history's last entry for this step is that failure)."""
    last = next((entry for entry in reversed(state.history) if entry.step == step.value), None)
    return step is Step.SNAPSHOT_CHECK or (last is not None and last.outcome == "failed")


def _keep_config(state: OperationState, resolved: ResolvedConfig) -> None:
    """The configuration the operation keeps, and where each value came from (`status` shows it)."""
    if state.config:
        return
    state.config = resolved.config.model_dump(mode="json")
    state.config_sources = dict(resolved.sources)
    state.target_cluster_id = resolved.config.target_cluster_id


def _entry(
    step: Step, outcome: str, message: str, trigger: Trigger, started_at: datetime, now: datetime
) -> HistoryEntry:
    return HistoryEntry(
        step=step,
        outcome=outcome,  # type: ignore[arg-type]
        message=message,
        trigger=trigger.label,
        started_at=started_at,
        finished_at=now,
    )


def _wait(
    step: Step,
    state: OperationState,
    trigger: Trigger,
    outcome: Waiting,
    config: RestoreConfig,
    plan: TimerPlan,
    now: datetime,
) -> tuple[list[BusEvent], TimerPlan]:
    previous = state.waiting if state.waiting and state.waiting.step == step.value else None
    recheck = outcome.wait.recheck_after_seconds or config.recheck_interval_seconds
    if trigger.rds is not None and previous and previous.waiting_for == outcome.wait.waiting_for:
        # The RDS event that ends this wait came before RDS describes the resource so (an instance created,
        # then configuring its monitoring): it will not come again, so look again soon.
        recheck = min(recheck, config.recheck_interval_seconds)
    deadline = previous.deadline if previous else now + timedelta(minutes=outcome.wait.timeout_minutes)
    state.waiting = WaitRecord(
        step=step,
        waiting_for=outcome.wait.waiting_for,
        next_check_at=min(now + timedelta(seconds=recheck), deadline),
        deadline=deadline,
        since=previous.since if previous else now,
    )
    state.status, state.next_step = "waiting", step
    events: list[BusEvent] = []
    if previous is None or previous.waiting_for != outcome.wait.waiting_for:
        waiting_event = StepWaiting(
            operation_id=state.operation_id,
            step=step,
            waiting_for=outcome.wait.waiting_for,
            next_check_at=state.waiting.next_check_at,
        )
        events.append(waiting_event)
    replaces = previous.next_check_at if previous is not None else None
    next_check = state.waiting.next_check_at
    return events, TimerPlan(step, plan.was, plan.begins_stretch, next_check=next_check, replaces=replaces)


def _move_on(
    step: Step,
    state: OperationState,
    outcome: Done | Finished,
    config: RestoreConfig,
    plan: TimerPlan,
    now: datetime,
) -> tuple[list[BusEvent], TimerPlan]:
    ended = state.waiting if state.waiting is not None and state.waiting.step == step.value else None
    state.waiting = None
    events: list[BusEvent] = []
    if isinstance(outcome, Done):
        state.status, state.next_step = "running", outcome.next_step
    else:
        state.status, state.next_step = outcome.status, None
        state.expires_at = expiry(config.state_retention_days, now)
    if not (isinstance(outcome, Finished) and outcome.status == "failed"):  # a failure notice routes nowhere
        completed = StepCompleted(
            operation_id=state.operation_id,
            step=step,
            next_step=state.next_step,
            message=outcome.message,
            result=compact(outcome.fields),
        )
        events.append(completed)
    if isinstance(outcome, Finished) and outcome.status == "completed":
        events.append(OperationFinished(operation_id=state.operation_id, outcome="completed"))
    return events, TimerPlan(step, plan.was, plan.begins_stretch, ended=ended)


def fail(
    step: Step, state: OperationState, trigger: Trigger, exc: StepError, started_at: datetime, now: datetime
) -> Transition:
    """A non-retryable failure recorded: the operation fails at this step (unless it ended already)."""
    plan = TimerPlan(step=step, was=state.status, begins_stretch=False, ended=state.waiting)
    error = ErrorInfo(type=exc.error_type, message=exc.message, retryable=exc.retryable)
    state.redriven, state.retry_error, state.stalled_since = 0, None, None
    state.history.append(_entry(step, "failed", exc.message, trigger, started_at, now))
    events: list[BusEvent] = []
    if state.status not in TERMINAL_STATUSES:
        state.status, state.error, state.failed_step, state.waiting = "failed", error, step, None
        failed = StepFailed(
            operation_id=state.operation_id, step=step, error=error, left_in_place=left_in_place(state)
        )
        events += [failed, OperationFinished(operation_id=state.operation_id, outcome="failed")]
    if state.waiting is not None:  # an ended operation's wait is not dropped by this failure
        plan = TimerPlan(step, plan.was, False)
    return Transition(state, events, error_response(state.operation_id, exc), "failed", plan)


def rejected(step: Step, trigger: Trigger, exc: StepError, settings: Settings, now: datetime) -> Transition:
    """A request refused before its step could run (its payload did not validate) that names a usable,
    new operation id: the operation begins failed at `step`, with StepFailed (routed to notify_completion,
    which tells the subscribers) and OperationFinished(failed). `trigger` carries only what may be kept
    of the request (functions.engine.rejections)."""
    assert trigger.operation_id is not None
    state = new_operation(trigger, trigger.operation_id, settings, now)
    return fail(step, state, trigger, exc, now, now)


def overdue(step: Step, state: OperationState, outcome: Outcome, now: datetime) -> WaitTimedOut | None:
    """A check that finds its wait still not over at or past the deadline fails it there and then: this
    check was the last look (waiting on would schedule the next check in the past)."""
    waiting = state.waiting
    if not isinstance(outcome, Waiting) or waiting is None or waiting.step != step.value:
        return None
    return timed_out(waiting) if now >= waiting.deadline else None


def timed_out(waiting: WaitRecord) -> WaitTimedOut:
    """The failure of a wait past its deadline, found by its own check or by the reconciler."""
    minutes = int((waiting.deadline - waiting.since).total_seconds() // 60)
    return WaitTimedOut(
        f"{Step(waiting.step).value} waited for {waiting.waiting_for} past its deadline ({minutes} min)"
    )


def new_operation(trigger: Trigger, operation_id: str, settings: Settings, now: datetime) -> OperationState:
    """The state item snapshot_check creates for a new operation (its first write)."""
    raw_date = trigger.payload.get("target_date")
    try:
        target_date = date.fromisoformat(str(raw_date)) if raw_date else now.date()
    except ValueError:
        target_date = now.date()
    overrides = trigger.payload.get("overrides") or {}
    if trigger.is_direct and isinstance(overrides, dict):
        # A direct payload's own configuration fields are overrides too (they win, as in resolve_for_step):
        # kept, so that a resume at snapshot_check resolves what this run did.
        overrides = {**overrides, **{k: v for k, v in trigger.payload.items() if k in CONFIG_FIELDS}}
    return OperationState(
        operation_id=operation_id,
        status="running",
        next_step=Step.SNAPSHOT_CHECK,
        target_date=target_date,
        latest_snapshot=raw_date == LATEST,
        # Only configuration fields are kept: an unknown key (refused by snapshot_check) could hold anything,
        # and the state item must never hold a secret.
        overrides={k: v for k, v in overrides.items() if k in CONFIG_FIELDS}
        if isinstance(overrides, dict)
        else {},
        created_at=now,
        updated_at=now,
        expires_at=expiry(settings.state_ttl_days, now),
    )
