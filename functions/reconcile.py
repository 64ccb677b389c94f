"""The reconciler, on a schedule: re-check overdue waits, fail waits past their deadline, flush stuck outboxes.

This is how the cluster-snapshot copy completes (Aurora sends no copy event) and how lost RDS events
are survived.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from functions.errors import StaleWrite, WaitTimedOut
from functions.observability import logger, record_metric
from functions.runner import OUTBOX_GRACE, Services, StepRunner, Trigger, recheck_event
from functions.settings import get_settings
from schemas.common import Step, utcnow
from schemas.config import RestoreConfig


def reconcile(services: Services) -> dict[str, Any]:
    now = utcnow()
    rechecked: list[str] = []
    timed_out: list[str] = []
    flushed: list[str] = []
    store = services.store
    for state in store.scan_operations():
        if state.outbox and now - state.updated_at > OUTBOX_GRACE:
            StepRunner(Step(state.current_step or Step.SNAPSHOT_CHECK), _no_logic, services).flush_outbox(
                state
            )
            flushed.append(state.operation_id)
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
            elif now >= waiting.next_check_at:
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
    if rechecked or timed_out or flushed:
        logger.info("reconciled", extra={"rechecked": rechecked, "timed_out": timed_out, "flushed": flushed})
    record_metric(
        "RecheckDue", MetricUnit.Count, len(rechecked), step="reconcile", settings=services.settings
    )
    record_metric(
        "WaitTimedOut", MetricUnit.Count, len(timed_out), step="reconcile", settings=services.settings
    )
    return {"status": "success", "rechecked": rechecked, "timed_out": timed_out, "flushed": flushed}


def _no_logic(context: Any) -> Any:
    raise AssertionError("the reconciler never runs a step's logic")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.append_keys(step="reconcile")
    return reconcile(Services(get_settings()))
