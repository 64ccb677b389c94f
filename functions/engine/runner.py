"""The step runner: one invocation, top to bottom: parse, admit, claim, run, transition, write once, arm timers."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from functions.engine import services as process_services
from functions.engine.admission import Run, admit, answer_of
from functions.engine.claims import MAX_ATTEMPTS, Claims
from functions.engine.configuration import resolve_for_step
from functions.engine.contract import Outcome, RejectionLogic, StepContext, StepLogic
from functions.engine.failures import as_step_error
from functions.engine.responses import Answer, error_response, ignored
from functions.engine.services import Services
from functions.engine.settle import record_failure, settle
from functions.engine.transitions import new_operation, overdue, succeed
from functions.engine.triggers import Trigger, TriggerKind, locate, parse_trigger
from functions.engine.writer import Writer
from functions.errors import ClaimHeld, InvalidRequest, StaleWrite, StepError, UnknownOperation
from functions.observability import logger, record_metric
from schemas.common import Step, utcnow
from schemas.state import OperationState


class StepRunner:
    """Runs one step's logic for each invocation of its function."""

    def __init__(
        self,
        step: Step,
        logic: StepLogic,
        services: Services | None = None,
        on_rejected: RejectionLogic | None = None,
    ) -> None:
        self.step = step
        self.logic = logic
        self._services = services
        self.on_rejected = on_rejected  # the step that notifies a RequestRejected (notify_completion)

    @property
    def services(self) -> Services:
        return self._services or process_services.current()

    def __call__(self, event: Any) -> dict[str, Any]:
        started, label = time.monotonic(), "error"
        logger.thread_safe_append_keys(step=self.step.value)
        try:
            answer = self.run(event)
            label = answer.label
            return answer.response
        finally:
            settings, step = self.services.settings, self.step.value
            elapsed_ms = (time.monotonic() - started) * 1000
            record_metric("StepDuration", MetricUnit.Milliseconds, elapsed_ms, step=step, settings=settings)
            record_metric(f"Outcome_{label}", MetricUnit.Count, 1, step=step, settings=settings)

    def run(self, event: Any) -> Answer:
        try:
            trigger = parse_trigger(event)
        except InvalidRequest as exc:
            logger.warning("rejected input", extra={"error": exc.message})
            from functions.engine.rejections import reject  # only for a request that did not parse

            return reject(self.step, event, exc, self.services)
        if trigger.kind is TriggerKind.REQUEST_REJECTED:
            if self.on_rejected is None:
                return Answer(ignored(f"{self.step.value} does not notify a RequestRejected"), "ignored")
            return Answer(self.on_rejected(trigger, self.services), "success")
        operation_id = locate(trigger, self.services.store)
        if operation_id is None:
            assert trigger.rds is not None
            logger.debug(
                "RDS event for a resource that is not ours", extra={"source": trigger.rds.identifier}
            )
            return Answer(ignored(f"{trigger.rds.identifier} belongs to no operation"), "ignored")
        logger.thread_safe_append_keys(operation_id=operation_id)
        invocation = Invocation(self, trigger, operation_id)
        for _ in range(MAX_ATTEMPTS):
            try:
                return invocation.attempt()
            except StaleWrite:
                logger.info("state changed under us; deciding again")
        raise StepError(f"state of {operation_id} kept changing; giving up this trigger", retryable=True)


class Invocation:
    """One trigger of one step, tried again from the top when the state moves under it."""

    def __init__(self, runner: StepRunner, trigger: Trigger, operation_id: str) -> None:
        self.step, self.logic, self.services = runner.step, runner.logic, runner.services
        self.trigger, self.operation_id = trigger, operation_id
        self.claims = Claims(self.step, self.services.store, self.services.settings)

    def attempt(self) -> Answer:
        state = self._load()
        if state is None:
            logger.warning("refused: no such operation")
            unknown = UnknownOperation(
                f"operation {self.operation_id} does not exist: start it with snapshot_check"
            )
            return Answer(error_response(self.operation_id, unknown), "error")
        state = Writer(self.services.store, self.services.publisher).flush_if_stale(state)
        admission = admit(self.step, state, self.trigger)
        if not isinstance(admission, Run):
            # An attempt the state moved under left this invocation's claim in it: drop it.
            self.claims.release(state)
            response, label = answer_of(admission)
            _log_not_run(label, self.trigger, response)
            return Answer(response, label)
        if not self.trigger.is_direct:
            try:
                state = self.claims.take(state)
            except ClaimHeld as held:
                deferred = self.claims.defer(state, held)
                if deferred is None:
                    raise
                return Answer(deferred, "deferred")
        return self._run(state)

    def _load(self) -> OperationState | None:
        store = self.services.store
        state = store.get(self.operation_id)
        if state is None and self.step is Step.SNAPSHOT_CHECK:
            state = store.create(
                new_operation(self.trigger, self.operation_id, self.services.settings, utcnow())
            )
        return state

    def _run(self, state: OperationState) -> Answer:
        started_at = utcnow()
        try:
            resolved = resolve_for_step(self.services.settings, self.step, state, self.trigger)
            context = StepContext(
                self.step,
                state,
                resolved.config,
                resolved.sources,
                self.trigger,
                self.services,
                warnings=list(resolved.warnings),
            )
            outcome = self._logic(context)
        except StaleWrite:
            raise  # decided again, on the state as it is now
        except Exception as raised:  # noqa: BLE001 - every failure is classified, recorded or raised again
            return self._failed(state, raised, started_at)
        late = overdue(self.step, state, outcome, utcnow())
        if late is not None:
            return self._record_failure(state, late, started_at)
        transition = succeed(self.step, state, self.trigger, outcome, resolved, started_at, utcnow())
        published = settle(
            self.services, self.step, transition, self.trigger, resolved.config, self.claims.token
        )
        if not published and not self.trigger.is_direct:  # tried again: its replay puts the outbox on the bus
            raise StepError(f"{self.step.value} is done; its events wait in the outbox", retryable=True)
        return Answer(transition.response, transition.label)

    def _logic(self, context: StepContext) -> Outcome:
        for warning in context.warnings:
            logger.warning(warning)
        known = len(context.warnings)
        outcome = self.logic(context)
        # Warnings the logic found (a literal password in a String parameter, ...) are logged too.
        for warning in context.warnings[known:]:
            logger.warning(warning)
        return outcome

    def _failed(self, state: OperationState, raised: Exception, started_at: Any) -> Answer:
        exc = as_step_error(raised, self.step)
        if not exc.retryable:
            return self._record_failure(state, exc, started_at)
        if self.trigger.is_direct:
            # The caller asks again; the operation goes on (the choreography may be running this very step).
            logger.warning("retryable failure answered to the caller", extra={"error": exc.message})
            return Answer(error_response(self.operation_id, exc), "error")
        logger.warning("retryable failure; the trigger will be delivered again", extra={"error": exc.message})
        self.claims.release(state, retry_error=exc.message)
        if exc is raised:
            raise exc
        raise exc from raised

    def _record_failure(self, state: OperationState, exc: StepError, started_at: Any) -> Answer:
        response = record_failure(
            self.services, self.step, state, self.trigger, exc, started_at, self.claims.token
        )
        return Answer(dict(response), "failed")


def _log_not_run(label: str, trigger: Trigger, response: dict[str, Any]) -> None:
    if label == "replayed":
        logger.info("step already done; replaying its result")
    elif label == "refused" and trigger.is_direct:
        logger.warning("direct call refused", extra={"reason": response.get("message")})
    else:
        logger.info("stale trigger ignored", extra={"reason": response.get("message")})
