"""After a transition is decided: commit it through the writer, change its wake-ups, write its S3 record."""

from __future__ import annotations

from datetime import datetime

from functions.engine import timers
from functions.engine.records import write_record
from functions.engine.services import Services
from functions.engine.transitions import Transition, fail
from functions.engine.triggers import Trigger
from functions.engine.writer import Writer
from functions.errors import StepError
from functions.observability import logger
from schemas.common import Step, utcnow
from schemas.config import RestoreConfig
from schemas.state import OperationState


def settle(
    services: Services,
    step: Step,
    transition: Transition,
    trigger: Trigger,
    config: RestoreConfig | None = None,
    claim_token: str | None = None,
) -> bool:
    """Commit, then wake-ups, then the record. False when the events wait in the outbox."""
    state, writer = transition.state, Writer(services.store, services.publisher, claim_token)
    published = writer.commit(state, transition.events, step)
    timers.apply(services.settings, state, transition.timers, utcnow())
    if transition.label == "failed":
        error = transition.response["error"]
        logger.error("step failed", extra={"error_type": error["type"], "error": error["message"]})
        write_record(step, state, {"error": error}, trigger, config)
    else:
        logger.info(transition.response["message"], extra={"outcome": transition.label})
        write_record(step, state, transition.response, trigger, config)
    if published:
        writer.purge_if_due(state)
    return published


def record_failure(
    services: Services,
    step: Step,
    state: OperationState,
    trigger: Trigger,
    exc: StepError,
    started_at: datetime,
    claim_token: str | None = None,
) -> dict[str, object]:
    """A non-retryable failure at `step`, recorded and announced (StepFailed, OperationFinished). Raises,
    retryable, when its events could not be put on the bus for an event-driven trigger: the operation
    ended, so no watchdog would put them."""
    transition = fail(step, state, trigger, exc, started_at, utcnow())
    if not settle(services, step, transition, trigger, claim_token=claim_token) and not trigger.is_direct:
        raise StepError(
            f"the failure at {step.value} is recorded; its events wait in the outbox", retryable=True
        )
    return transition.response
