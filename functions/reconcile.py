"""The reconciler, on a schedule: re-check overdue waits, fail waits past their deadline, flush stuck outboxes,
and re-drive a step whose trigger was lost or whose invocation died holding its claim.

This is how the cluster-snapshot copy completes (Aurora sends no copy event) and how lost RDS events,
lost step events and crashed invocations are survived.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from functions.errors import StaleWrite, WaitTimedOut
from functions.observability import logger, record_metric
from functions.runner import OUTBOX_GRACE, Services, StepRunner, Trigger, recheck_event, restart_event
from functions.settings import get_settings
from schemas.common import Step, utcnow
from schemas.config import RestoreConfig
from schemas.state import OperationState


def reconcile(services: Services) -> dict[str, Any]:
    now = utcnow()
    rechecked: list[str] = []
    timed_out: list[str] = []
    flushed: list[str] = []
    redriven: list[str] = []
    store = services.store
    settings = services.settings
    # With wake-ups scheduled, a wait is overdue only once its wake-up is clearly late.
    grace = timedelta(seconds=settings.wakeup_grace_seconds if settings.scheduler_role_arn else 0)
    for state in store.scan_operations():
        if state.outbox and now - state.updated_at > OUTBOX_GRACE:
            StepRunner(Step(state.current_step or Step.SNAPSHOT_CHECK), _no_logic, services).flush_outbox(
                state
            )
            flushed.append(state.operation_id)
        if _stalled(state, now, services):
            try:
                redrive(state, services, now)
                redriven.append(state.operation_id)
            except StaleWrite:
                logger.info("operation moved while being re-driven", extra={"op": state.operation_id})
            continue
        waiting = state.waiting
        if state.status != "waiting" or waiting is None:
            continue
        step = Step(waiting.step)
        try:
            if now >= waiting.deadline:
                runner = StepRunner(step, _no_logic, services)
                trigger = Trigger("reconcile", "reconcile", state.operation_id, {})
                minutes = int((waiting.deadline - waiting.since).total_seconds() // 60)
                runner.record_failure(
                    state,
                    trigger,
                    WaitTimedOut(
                        f"{step.value} waited for {waiting.waiting_for} past its deadline ({minutes} min)"
                    ),
                    now,
                )
                timed_out.append(state.operation_id)
            elif now >= waiting.next_check_at + grace:
                interval = timedelta(
                    seconds=RestoreConfig.model_validate(state.config).recheck_interval_seconds
                )
                waiting.next_check_at = now + interval
                store.save(state)
                services.publisher.publish([recheck_event(state)])
                rechecked.append(state.operation_id)
        except StaleWrite:
            logger.info(
                "operation moved while reconciling; it is looked at next time",
                extra={"op": state.operation_id},
            )
    if rechecked or timed_out or flushed or redriven:
        logger.info(
            "reconciled",
            extra={"rechecked": rechecked, "timed_out": timed_out, "flushed": flushed, "redriven": redriven},
        )
    record_metric(
        "RecheckDue", MetricUnit.Count, len(rechecked), step="reconcile", settings=services.settings
    )
    record_metric(
        "WaitTimedOut", MetricUnit.Count, len(timed_out), step="reconcile", settings=services.settings
    )
    return {
        "status": "success",
        "rechecked": rechecked,
        "timed_out": timed_out,
        "flushed": flushed,
        "redriven": redriven,
    }


def _stalled(state: OperationState, now: datetime, services: Services) -> bool:
    """A running (not waiting) operation whose next step nobody is running: its claim expired (the
    invocation died), or it has no claim and has not moved for `stall_seconds` (its trigger was lost)."""
    if state.status != "running" or state.next_step is None or state.outbox:
        return False
    if state.claim is not None:
        return state.claim.until < now
    return now - state.updated_at > timedelta(seconds=services.settings.stall_seconds)


def redrive(state: OperationState, services: Services, now: datetime) -> None:
    """Clear a dead claim and put the next step's trigger on the bus again (duplicates are harmless)."""
    step = Step(state.next_step) if state.next_step else Step.SNAPSHOT_CHECK
    state.claim = None
    services.store.save(state)
    services.publisher.publish([restart_event(state, step, f"re-driven by the reconciler at {now:%H:%M:%S}")])


def _no_logic(context: Any) -> Any:
    raise AssertionError("the reconciler never runs a step's logic")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.append_keys(step="reconcile")
    return reconcile(Services(get_settings()))
