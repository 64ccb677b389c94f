"""The reconciler: re-check overdue waits (past the deadline, as the wait's last look), fail a wait whose last
look never came, flush stuck outboxes, and re-drive a step whose trigger was lost or whose invocation died
holding its claim.

It runs for one operation when that operation's watchdog fires (StallCheckDue, see functions/wakeup.py),
and over every operation on an hourly schedule: the net for a wake-up that could not be scheduled.
This is how lost RDS events, lost step events and crashed invocations are survived.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from functions import wakeup
from functions.engine import services as process_services
from functions.engine.restart import recheck_event, restart_event
from functions.engine.services import Services
from functions.engine.settle import record_failure
from functions.engine.timers import recheck_interval
from functions.engine.transitions import timed_out
from functions.engine.triggers import Trigger, TriggerKind
from functions.engine.writer import OUTBOX_GRACE, Writer
from functions.errors import InvalidRequest, StaleWrite, StepError
from functions.observability import invocation_keys, logger, record_metric
from functions.routes import RECONCILE
from schemas.common import Step, spoken_duration, utcnow
from schemas.events import StallCheckDue
from schemas.state import TERMINAL_STATUSES, OperationState

# About an hour of tries (with stall_seconds' default, 900 s), each with Lambda's own two retries.
MAX_REDRIVES = 4
# A day of re-drives (with stall_seconds' default) that never got the step to run.
STALLED_PERIODS = 96
DIED = (
    "its invocation ended holding its claim, with nothing recorded (a Lambda timeout or out of memory?"
    " see the function's logs)"
)


@dataclass
class Report:
    """What one reconciler run did, by operation."""

    rechecked: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    flushed: list[str] = field(default_factory=list)
    redriven: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # re-driven enough: failed at its step instead
    unreconciled: list[str] = field(default_factory=list)


def reconcile(services: Services) -> dict[str, Any]:
    """The hourly scan: every operation in the table. One that cannot be looked at (AWS refused a call
    for it, a fault) is logged and left for the next scan; the others are still looked at."""
    now, report = utcnow(), Report()
    for state in services.store.scan_operations():
        try:
            _reconcile_state(state, now, services, report)
        except Exception as exc:  # noqa: BLE001 - one operation's trouble must not stop the scan
            logger.error(
                "could not reconcile an operation; the next scan tries again",
                extra={"op": state.operation_id, "error_type": type(exc).__name__},
            )
            report.unreconciled.append(state.operation_id)
    return _finish(report, services)


def reconcile_operation(operation_id: str, services: Services) -> dict[str, Any]:
    """An operation's watchdog fired: look at that operation alone, and keep a watchdog on it while it runs
    (a long stretch that is still moving gets another one)."""
    now, report = utcnow(), Report()
    state = services.store.get(operation_id)
    if state is not None and state.status in TERMINAL_STATUSES and state.outbox:
        _reconcile_state(state, now, services, report)  # its failure's events, still to be put on the bus
    elif state is not None and state.status not in TERMINAL_STATUSES:
        _reconcile_state(state, now, services, report)
        if state.status == "running" and operation_id not in report.redriven:
            moved = max(state.updated_at, state.claim.until if state.claim else state.updated_at)
            at = max(moved, now) + timedelta(seconds=services.settings.stall_seconds)
            wakeup.arm_watchdog(services.settings, operation_id, at)
    return _finish(report, services)


def _reconcile_state(state: OperationState, now: datetime, services: Services, report: Report) -> None:
    store = services.store
    # With wake-ups scheduled, a wait is overdue only once its wake-up is clearly late.
    settings = services.settings
    grace = timedelta(seconds=settings.wakeup_grace_seconds if settings.scheduler_role_arn else 0)
    writer = Writer(store, services.publisher)
    if state.outbox and now - state.updated_at > OUTBOX_GRACE:
        writer.flush_outbox(state)
        report.flushed.append(state.operation_id)
    elif not state.outbox:
        writer.purge_if_due(state)  # delete_state, when cleanup could not do it
    if _stalled(state, now, services):
        try:
            gave_up = redrive(state, services, now)
            (report.failed if gave_up else report.redriven).append(state.operation_id)
        except StaleWrite:
            logger.info("operation moved while being re-driven", extra={"op": state.operation_id})
        return
    waiting = state.waiting
    if state.status != "waiting" or waiting is None:
        return
    if now < waiting.next_check_at + grace:
        return  # its check (the wake-up, or the last look asked for below) is not late yet
    try:
        if waiting.next_check_at > waiting.deadline:
            # The last look asked for past the deadline never came (a check past the deadline ends the wait
            # either way: see transitions.overdue): fail the wait here.
            trigger = Trigger.internal(TriggerKind.RECONCILE, state.operation_id)
            record_failure(services, Step(waiting.step), state, trigger, timed_out(waiting), now)
            report.timed_out.append(state.operation_id)
        else:
            # A late check. Past the deadline it is the wait's last look: the copy or restore may well have
            # ended (its event lost) and the check moves the operation on; else the check fails the wait.
            # Its next_check_at then lies past the deadline, which marks the last look as asked for.
            due = now + recheck_interval(state)
            waiting.next_check_at = due if now >= waiting.deadline else min(due, waiting.deadline)
            store.save(state)
            services.publisher.publish([recheck_event(state)])
            report.rechecked.append(state.operation_id)
    except StaleWrite:
        logger.info(
            "operation moved while reconciling; it is looked at next time",
            extra={"op": state.operation_id},
        )


def _finish(report: Report, services: Services) -> dict[str, Any]:
    if any(asdict(report).values()):
        logger.info("reconciled", extra=asdict(report))
    record_metric(
        "RecheckDue", MetricUnit.Count, len(report.rechecked), step=RECONCILE, settings=services.settings
    )
    record_metric(
        "WaitTimedOut", MetricUnit.Count, len(report.timed_out), step=RECONCILE, settings=services.settings
    )
    return {"status": "success", **asdict(report)}


def _stalled(state: OperationState, now: datetime, services: Services) -> bool:
    """A running (not waiting) operation whose next step nobody is running: its claim expired (the
    invocation died), or it has no claim and has not moved for `stall_seconds` (its trigger was lost)."""
    if state.status != "running" or state.next_step is None or state.outbox:
        return False
    if state.claim is not None:
        return state.claim.until < now
    return now - state.updated_at > timedelta(seconds=services.settings.stall_seconds)


def redrive(state: OperationState, services: Services, now: datetime) -> bool:
    """Clear a dead claim and put the next step's trigger on the bus again (duplicates are harmless).

    Not for ever when the step fails: one that failed before each of MAX_REDRIVES re-drives is failed, with
    its last error, for the operator to fix and resume; else it held the target's lease while nobody was
    told. A try failed when it gave up its claim with a retryable error (a database that refuses every
    connection, a region that does not answer) or died holding it (a Lambda timeout, out of memory: its
    claim expired with nothing recorded). A re-drive with neither since the last one (the trigger was lost,
    or is still queued behind others) is not counted: it costs one event, and failing the operation for it
    would fail a refresh that was only slow. Those stop only when the operation has gone unmoved for
    STALLED_PERIODS stall periods (24 h with the default 900 s): a trigger that never reaches the step in a
    day is not queued, it is refused (the function throttled to nothing, disabled, or the bus no longer
    allowed to invoke it). True when it failed the operation instead of re-driving it."""
    step = Step(state.next_step) if state.next_step else Step.SNAPSHOT_CHECK
    died = state.claim is not None and state.claim.until < now
    state.claim = None
    failure = state.retry_error or (DIED if died else None)
    stalled_since = state.stalled_since or now
    unmoved_for = timedelta(seconds=services.settings.stall_seconds * STALLED_PERIODS)
    error: StepError | None = None
    if failure is not None and state.redriven >= MAX_REDRIVES:
        error = StepError(f"{step.value} did not complete after {state.redriven} re-drives: {failure}")
    elif now - stalled_since >= unmoved_for:
        error = StepError(
            f"{step.value} did not move in {spoken_duration(now - stalled_since)} of re-drives (the first at"
            f" {stalled_since:%Y-%m-%d %H:%M} UTC): if its function logged nothing, its trigger does not reach"
            " it (throttled to nothing, disabled, or the bus rule's target or permission gone?); see the"
            " function's throttles and the rule's dead-letter queue"
        )
    if error is not None:
        trigger = Trigger.internal(TriggerKind.RECONCILE, state.operation_id)
        record_failure(services, step, state, trigger, error, now)
        return True
    if failure is not None:
        # Counted once: the next re-drive counts only if the step fails again first.
        state.redriven, state.retry_error = state.redriven + 1, None
    state.stalled_since = stalled_since
    services.store.save(state)
    services.publisher.publish([restart_event(state, step, f"re-driven by the reconciler at {now:%H:%M:%S}")])
    # Keep watching it: the re-driven step's own trigger could be lost too.
    wakeup.arm_watchdog(
        services.settings, state.operation_id, now + timedelta(seconds=services.settings.stall_seconds)
    )
    return False


@invocation_keys
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The hourly schedule (scan everything) or an operation's watchdog (StallCheckDue: that operation)."""
    logger.thread_safe_append_keys(step=RECONCILE)
    services = process_services.current()
    if event.get("detail-type") == StallCheckDue.detail_type:
        try:
            due = StallCheckDue.model_validate(event.get("detail") or {})
        except ValidationError as exc:
            raise InvalidRequest(f"invalid StallCheckDue event: {exc.error_count()} error(s)") from exc
        logger.thread_safe_append_keys(operation_id=due.operation_id)
        return reconcile_operation(due.operation_id, services)
    return reconcile(services)
