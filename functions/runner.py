"""The step runner: what every handler does around its step's logic.

Parse the trigger (a direct runbook payload or an EventBridge event), find the operation, decide whether
this step may run, resolve the configuration, run the logic, then record the transition with a
conditional write and put the resulting events on the bus through an outbox kept in the state item.
A duplicate or late trigger replays the step's recorded result and changes nothing.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError
from pydantic import BaseModel, TypeAdapter, ValidationError

from functions import aws, wakeup
from functions import config as config_resolver
from functions.bus import EventPublisher, Publisher
from functions.errors import (
    AwsError,
    ClaimHeld,
    ConfigError,
    InternalError,
    InvalidRequest,
    PublishError,
    StaleWrite,
    StepError,
    UnknownOperation,
    WaitTimedOut,
)
from functions.notify import StepLog
from functions.observability import logger, record_metric
from functions.rds import RdsAdapter
from functions.settings import Settings, get_settings
from functions.state import StateStore, expiry
from schemas.common import WAITING_STEPS, OperationId, Step, utcnow
from schemas.config import CONFIG_FIELDS, RestoreConfig
from schemas.events import (
    BUS_EVENT_BY_TYPE,
    EVENT_SOURCE,
    BusEvent,
    ErrorInfo,
    OperationFinished,
    RecheckDue,
    RestoreRequested,
    StepCompleted,
    StepFailed,
    StepWaiting,
)
from schemas.rds_event_ids import RESOURCE_KIND
from schemas.state import TERMINAL_STATUSES, Claim, HistoryEntry, OperationState, Waiting

if TYPE_CHECKING:
    from schemas.rds_events import RdsEventDetail

MAX_ATTEMPTS = 4
MAX_EVENT_RESULT_CHARS = 8_000
# A runbook payload or one of our events is a few hundred characters; EventBridge allows 256 KB.
MAX_PAYLOAD_CHARS = 64_000
# A transition's events normally leave the outbox within milliseconds; older ones were left by a crash.
OUTBOX_GRACE = timedelta(seconds=5)
# A duplicate at a step that does not wait arms the watchdog this long after the claim it met expires (the
# reconciler re-drives a claim strictly past its time).
CLAIM_EXPIRY_MARGIN = timedelta(seconds=1)


_OPERATION_ID: TypeAdapter[str] = TypeAdapter(OperationId)


class DirectPayload(BaseModel):
    """The runbook's direct invocation payload: operation_id plus the step's own optional fields."""

    model_config = {"extra": "allow"}
    operation_id: str


@dataclass
class Trigger:
    kind: str  # direct | RestoreRequested | StepCompleted | StepFailed | RecheckDue | rds
    label: str  # what the history records: "direct", "StepCompleted", "RDS-EVENT-0171", ...
    operation_id: str | None
    payload: dict[str, Any]
    rds: RdsEventDetail | None = None
    rds_kind: str | None = None  # what the RDS event is about (schemas.rds_event_ids.RESOURCE_KIND)

    @property
    def is_direct(self) -> bool:
        return self.kind == "direct"


@dataclass
class Wait:
    waiting_for: str
    timeout_minutes: float
    # When the next check is worth it; None: the configured recheck_interval_seconds.
    recheck_after_seconds: float | None = None


@dataclass
class Outcome:
    """What a step's logic hands back."""

    message: str
    fields: dict[str, Any] = field(default_factory=dict)
    next_step: Step | None = None
    waiting: Wait | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    direct_next_step: Step | None | str = "same"  # "same" means: as next_step (or this step while waiting)
    events: list[BusEvent] = field(default_factory=list)
    final_status: str | None = None
    record_result: bool = True
    suppress_completed: bool = False  # a failure notification routes nowhere


class Services:
    """The adapters a step uses, created on first use (and replaceable in tests)."""

    def __init__(self, settings: Settings, publisher: Publisher | None = None) -> None:
        self.settings = settings
        self._publisher = publisher

    @cached_property
    def store(self) -> StateStore:
        return StateStore(self.settings.state_table, self.settings.region)

    @property
    def publisher(self) -> Publisher:
        if self._publisher is None:
            self._publisher = EventPublisher(self.settings.event_bus, self.settings.region)
        return self._publisher

    def rds(self, region: str) -> RdsAdapter:
        return RdsAdapter(region)


@dataclass
class StepContext:
    step: Step
    state: OperationState
    config: RestoreConfig
    config_sources: dict[str, str]
    trigger: Trigger
    services: Services
    warnings: list[str] = field(default_factory=list)

    @property
    def operation_id(self) -> str:
        return self.state.operation_id

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def outputs(self) -> dict[str, Any]:
        return self.state.outputs

    def value(self, name: str) -> Any:
        """A step input: the direct payload's field first, then what earlier steps recorded."""
        found = self.trigger.payload.get(name) if self.trigger.is_direct else None
        return found if found not in (None, "") else self.state.outputs.get(name)

    @property
    def target_rds(self) -> RdsAdapter:
        return self.services.rds(self.config.target_region)

    @property
    def source_rds(self) -> RdsAdapter:
        return self.services.rds(self.config.source_region)

    def tags(self) -> list[dict[str, str]]:
        return [
            {"Key": "aurora-restore:operation-id", "Value": self.operation_id},
            {"Key": "aurora-restore:environment", "Value": self.settings.environment},
            {"Key": "aurora-restore:source-cluster", "Value": self.config.source_cluster_id},
        ]


StepLogic = Callable[[StepContext], Outcome]


# What an operation acts on, fixed once it is recorded: a later step's direct payload may change the rest of
# the configuration for that step (event > state), never these. Else restore_snapshot would restore into a
# cluster the operation holds no lease on, while the one it deleted stayed gone.
FIXED_FIELDS = ("source_region", "target_region", "source_cluster_id", "target_cluster_id")


# -- triggers ---------------------------------------------------------------------------------------------
def parse_trigger(event: Any) -> Trigger:
    if not isinstance(event, dict):
        raise InvalidRequest("the payload must be a JSON object")
    size = len(json.dumps(event.get("detail", event), default=str))
    if size > MAX_PAYLOAD_CHARS:
        # Steps echo what they were given into messages, and messages into the state item (400 KB).
        raise InvalidRequest(f"the payload is {size:,} characters: at most {MAX_PAYLOAD_CHARS:,}")
    if "detail-type" in event and "detail" in event:
        detail_type = event["detail-type"]
        if event.get("source") == "aws.rds":
            # Imported here: only the waiting steps receive RDS events, so the others' cold start skips
            # these models and Powertools' EventBridgeModel.
            from schemas.rds_events import RdsEvent

            try:
                rds_event = RdsEvent.model_validate(event)
            except ValidationError as exc:
                raise InvalidRequest(f"not an RDS event we understand: {_first_error(exc)}") from exc
            kind = RESOURCE_KIND[rds_event.detail_type]
            return Trigger("rds", rds_event.detail.event_id, None, {}, rds_event.detail, kind)
        model = BUS_EVENT_BY_TYPE.get(detail_type)
        if event.get("source") != EVENT_SOURCE or model is None:
            raise InvalidRequest(f"unexpected event {event.get('source')}/{detail_type}")
        try:
            detail = model.model_validate(event["detail"])
        except ValidationError as exc:
            raise InvalidRequest(f"invalid {detail_type} event: {_first_error(exc)}") from exc
        return Trigger(detail_type, detail_type, detail.operation_id, detail.model_dump(mode="json"))
    try:
        direct = DirectPayload.model_validate(event)
    except ValidationError as exc:
        raise InvalidRequest(f"invalid payload: {_first_error(exc)}") from exc
    try:
        _OPERATION_ID.validate_python(direct.operation_id)
    except ValidationError as exc:
        raise InvalidRequest(f"invalid operation_id: {_first_error(exc)}") from exc
    return Trigger("direct", "direct", direct.operation_id, dict(event))


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(item) for item in error["loc"])
    return f"{location}: {error['msg']}" if location else str(error["msg"])


# -- the runner ---------------------------------------------------------------------------------------------
_handler_runners: list[StepRunner] = []


def reset_services() -> None:
    """Forget the adapters every handler cached (when the AWS endpoint changes: tests, the local runtime)."""
    for runner in _handler_runners:
        runner._services = None


class StepRunner:
    def __init__(self, step: Step, logic: StepLogic, services: Services | None = None) -> None:
        self.step = step
        self.logic = logic
        self._services = services
        # One token per invocation. Lambda runs one invocation per process at a time, but the local runtime
        # runs one runner on several threads: a shared attribute let two concurrent duplicates both see
        # their own token in the claim and both go ahead, so the token is kept per thread.
        self._invocation = threading.local()
        if services is None:
            _handler_runners.append(self)

    @property
    def services(self) -> Services:
        if self._services is None:
            self._services = Services(get_settings())
        return self._services

    @property
    def _token(self) -> str:
        token = getattr(self._invocation, "token", None)
        if token is None:
            token = self._invocation.token = uuid.uuid4().hex
        return str(token)

    def __call__(self, event: Any) -> dict[str, Any]:
        self._invocation.token = uuid.uuid4().hex
        started = time.monotonic()
        logger.thread_safe_append_keys(step=self.step.value)
        outcome_label = "error"
        try:
            response = self._run(event)
            outcome_label = str(response.get("_outcome", response.get("status")))
            response.pop("_outcome", None)
            return response
        finally:
            elapsed_ms = (time.monotonic() - started) * 1000
            settings = self.services.settings
            record_metric(
                "StepDuration", MetricUnit.Milliseconds, elapsed_ms, step=self.step.value, settings=settings
            )
            record_metric(
                f"Outcome_{outcome_label}", MetricUnit.Count, 1, step=self.step.value, settings=settings
            )

    def _run(self, event: Any) -> dict[str, Any]:
        try:
            trigger = parse_trigger(event)
        except InvalidRequest as exc:
            logger.warning("rejected input", extra={"error": exc.message})
            return _error_response(None, exc)
        operation_id = trigger.operation_id
        if trigger.rds is not None:
            operation_id = self.services.store.lookup_resource(str(trigger.rds_kind), trigger.rds.identifier)
            if operation_id is None:
                logger.debug(
                    "RDS event for a resource that is not ours", extra={"source": trigger.rds.identifier}
                )
                return {"status": "ignored", "message": f"{trigger.rds.identifier} belongs to no operation"}
            trigger.operation_id = operation_id
        assert operation_id is not None
        logger.thread_safe_append_keys(operation_id=operation_id)
        for _ in range(MAX_ATTEMPTS):
            try:
                return self._attempt(trigger, operation_id)
            except StaleWrite:
                logger.info("state changed under us; deciding again")
        raise StepError(f"state of {operation_id} kept changing; giving up this trigger", retryable=True)

    def _attempt(self, trigger: Trigger, operation_id: str) -> dict[str, Any]:
        store = self.services.store
        state = store.get(operation_id)
        if state is None:
            if self.step is not Step.SNAPSHOT_CHECK:
                logger.warning("refused: no such operation")
                return _error_response(
                    operation_id,
                    UnknownOperation(
                        f"operation {operation_id} does not exist: start it with snapshot_check"
                    ),
                )
            state = store.create(self._new_state(trigger, operation_id))
        if state.outbox and utcnow() - state.updated_at > OUTBOX_GRACE:
            state = self.flush_outbox(state) or state

        recorded = state.results.get(self.step.value)
        if recorded is not None and not self._notifies_failure(state, trigger):
            logger.info("step already done; replaying its result")
            self._release_claim(state)
            return {**recorded, "_outcome": "replayed"}
        refusal = self._refusal(state, trigger)
        if refusal is not None:
            # An attempt the state moved under (the reconciler failed the wait meanwhile, say) left this
            # invocation's claim in it: drop it, or the failure notification waits for it to expire.
            self._release_claim(state)
            return refusal
        if not trigger.is_direct:
            try:
                state = self._claim(state)
            except ClaimHeld as held:
                deferred = self._defer(state, held)
                if deferred is None:
                    raise
                return deferred

        started_at = utcnow()
        try:
            resolved = self._resolve_config(state, trigger)
            context = StepContext(
                step=self.step,
                state=state,
                config=resolved.config,
                config_sources=resolved.sources,
                trigger=trigger,
                services=self.services,
                warnings=list(resolved.warnings),
            )
            for warning in resolved.warnings:
                logger.warning(warning)
            outcome = self.logic(context)
            # Warnings the logic found (a literal password in a String parameter, ...) are logged too.
            for warning in context.warnings[len(resolved.warnings) :]:
                logger.warning(warning)
        except StaleWrite:
            raise  # decided again by _run, on the state as it is now
        except Exception as raised:
            exc = _as_step_error(raised, self.step)
            if exc.retryable:
                if trigger.is_direct:
                    # The caller asks again; the operation goes on (the choreography may be running this
                    # very step), so a throttled direct call does not fail it.
                    logger.warning("retryable failure answered to the caller", extra={"error": exc.message})
                    return _error_response(operation_id, exc, outcome="error")
                logger.warning(
                    "retryable failure; the trigger will be delivered again", extra={"error": exc.message}
                )
                self._release_claim(state, retry_error=exc.message)
                if exc is raised:
                    raise
                raise exc from raised
            return self.record_failure(state, trigger, exc, started_at)
        overdue = self._overdue(state, outcome)
        if overdue is not None:
            return self.record_failure(state, trigger, overdue, started_at)
        return self._record_success(state, trigger, outcome, started_at, resolved)

    def _overdue(self, state: OperationState, outcome: Outcome) -> WaitTimedOut | None:
        """A check that finds its wait still not over at or past the deadline fails it there and then:
        this check was the last look. Waiting on would schedule the next check in the past, again and
        again, until the reconciler's scan came by."""
        waiting = state.waiting
        if outcome.waiting is None or waiting is None or waiting.step != self.step.value:
            return None
        return timed_out(waiting) if utcnow() >= waiting.deadline else None

    # -- decisions ----------------------------------------------------------------------------------------
    def _claim(self, state: OperationState) -> OperationState:
        """Take this step for this invocation, so a duplicate trigger never makes the same AWS calls.

        A duplicate finding a live claim stands aside (`_defer`), or raises the retryable ClaimHeld when
        nothing could be set to look again. A claim left by a crashed invocation expires.
        """
        now = utcnow()
        claim = state.claim
        if claim is not None and claim.token != self._token and claim.until > now:
            raise ClaimHeld(f"{claim.step} is being run by another invocation until {claim.until:%H:%M:%S}")
        state.claim = Claim(step=self.step, token=self._token, until=now + self._claim_ttl())
        return self.services.store.save(state)

    def _defer(self, state: OperationState, held: ClaimHeld) -> dict[str, Any] | None:
        """Stand aside from a step another invocation is running, without raising (None: raise after all).

        Lambda counts a raised error against the function's errors alarm (1 in 5 minutes), and an async
        trigger that raised at its two retries as well lands in the function's DLQ, whose alarm fires too.
        Meeting a live claim is no error: it is routine at a wait, and elsewhere nothing is lost by it. So
        the trigger is answered `deferred`, once something is set to look again:

        - At a wait's step an RDS event races the wait's wake-up or the reconciler's check, or comes twice.
          The trigger may be news the holder's check read too early, so a RecheckDue is scheduled
          `recheck_interval_seconds` from now (the wait's shortest gap between checks). That check finds the
          wait moved on (and is ignored), looks again, or, should the holder have died, runs the step once
          its claim has expired (before that, it stands aside again).
        - Elsewhere the trigger is a duplicate of the one being run (EventBridge delivers at least once; a
          Lambda retry of an invocation that timed out). The holder records the result, or, should it die,
          the operation's watchdog re-drives the step. The watchdog is armed to fire as the claim expires
          (it fired up to `stall_seconds` after that before): retrying here could not help, a retry at 1 or
          3 minutes finds the claim (the function's timeout) still live, and a long `setup_db_users` then
          sent its duplicate to the DLQ although nothing was lost.

        No wake-up scheduled (none configured, or Scheduler refused): it raises `ClaimHeld`, and Lambda
        delivers the trigger again; a dropped one could be news nobody looks at for an hour.
        """
        settings = self.services.settings
        if self.step in WAITING_STEPS:
            at = utcnow() + recheck_interval(state)
            scheduled = wakeup.schedule_recheck(settings, state.operation_id, self.step, at)
            then = f"looked at again at {at:%H:%M:%S}"
        else:
            assert state.claim is not None  # what ClaimHeld met
            at = state.claim.until + CLAIM_EXPIRY_MARGIN
            scheduled = wakeup.arm_watchdog(settings, state.operation_id, at)
            then = f"the watchdog looks at it at {at:%H:%M:%S}, should the holder die"
        if not scheduled:
            return None
        message = f"{held.message}; {then}"
        logger.info("step claimed by another invocation; deferred", extra={"reason": message})
        return {"operation_id": state.operation_id, "status": "deferred", "message": message}

    def _release_claim(self, state: OperationState, retry_error: str | None = None) -> None:
        """Drop this invocation's claim, re-reading when the state moved meanwhile (the outbox cleared
        after a commit, say): a claim left behind holds every next trigger off until it expires. With the
        retryable failure that ends this try, for the reconciler to name if the step never completes."""
        for _ in range(MAX_ATTEMPTS):
            if state.claim is None or state.claim.token != self._token:
                return
            state.claim = None
            if retry_error is not None:
                state.retry_error = retry_error
            try:
                self.services.store.save(state)
                return
            except StaleWrite:
                fresh = self.services.store.get(state.operation_id)
                if fresh is None:
                    return
                state = fresh
            except StepError:
                break
        logger.info("claim not released; it expires by itself")

    def _claim_ttl(self) -> timedelta:
        return timedelta(seconds=self.services.settings.claim_seconds)

    def _notifies_failure(self, state: OperationState, trigger: Trigger) -> bool:
        """A StepFailed at notify_completion, while the operation is still failed: the one run an ended
        operation allows, and the one recorded step that runs again instead of replaying. Once the
        operator aborted or resumed it, a StepFailed arriving late (or again, its first attempt's write
        having met the operator's) must not set it back to failed."""
        return (
            self.step is Step.NOTIFY_COMPLETION and trigger.kind == "StepFailed" and state.status == "failed"
        )

    def _refusal(self, state: OperationState, trigger: Trigger) -> dict[str, Any] | None:
        """Why this step may not run now (None: it may). Refusals change nothing."""
        if self._notifies_failure(state, trigger):
            return None
        if state.status in TERMINAL_STATUSES:
            error = state.error.message if state.error else f"operation is {state.status}"
            return _error_response(
                state.operation_id,
                StepError(f"operation {state.operation_id} is {state.status}: {error}"),
                outcome="refused",
            )
        expected = state.next_step
        if trigger.kind == "StepFailed" and state.status in ("running", "waiting"):
            # A failure resumed since, delivered again or late: had the operation reached
            # notify_completion meanwhile, it would send a failure notice and set it failed.
            message = f"operation {state.operation_id} is {state.status} again; that failure was resumed"
            logger.info("stale trigger ignored", extra={"reason": message})
            return {"status": "ignored", "message": message}
        if expected == self.step.value:
            return None
        message = (
            f"operation {state.operation_id} is at step {expected or 'none'} "
            f"({state.status}); {self.step.value} does not run now"
        )
        if trigger.is_direct:
            logger.warning("direct call refused", extra={"reason": message})
            return _error_response(state.operation_id, InvalidRequest(message), outcome="refused")
        logger.info("stale trigger ignored", extra={"reason": message})
        return {"status": "ignored", "message": message}

    def _new_state(self, trigger: Trigger, operation_id: str) -> OperationState:
        now = utcnow()
        raw_date = trigger.payload.get("target_date")
        try:
            target_date = date.fromisoformat(str(raw_date)) if raw_date else now.date()
        except ValueError:
            target_date = now.date()
        overrides = trigger.payload.get("overrides") or {}
        if trigger.is_direct and isinstance(overrides, dict):
            # A direct payload's own configuration fields are overrides too (they win, as in
            # _resolve_config): kept, so that a resume at snapshot_check resolves what this run did.
            overrides = {**overrides, **{k: v for k, v in trigger.payload.items() if k in CONFIG_FIELDS}}
        return OperationState(
            operation_id=operation_id,
            status="running",
            next_step=Step.SNAPSHOT_CHECK,
            target_date=target_date,
            # Only configuration fields are kept: an unknown key (refused by snapshot_check) could hold
            # anything, and the state item must never hold a secret.
            overrides={k: v for k, v in overrides.items() if k in CONFIG_FIELDS}
            if isinstance(overrides, dict)
            else {},
            created_at=now,
            updated_at=now,
            expires_at=expiry(self.services.settings.state_ttl_days, now),
        )

    def _resolve_config(self, state: OperationState, trigger: Trigger) -> config_resolver.ResolvedConfig:
        event_values = dict(state.overrides)
        if trigger.is_direct:
            event_values.update(trigger.payload)
        if state.config:
            resolved = config_resolver.resolve(
                self.services.settings,
                event_values=event_values,
                state_values=state.config,
                lower_layers=False,
            )
            for name, source in state.config_sources.items():
                if resolved.sources.get(name) == "state":
                    resolved.sources[name] = f"state ({source})"
            for name in FIXED_FIELDS:
                recorded = state.config.get(name)
                if recorded is not None and getattr(resolved.config, name) != recorded:
                    raise InvalidRequest(
                        f"{name} is {recorded} for this operation, fixed when it started:"
                        f" {self.step.value} does not act on another (start a new operation for that)"
                    )
            return resolved
        try:
            return config_resolver.resolve(self.services.settings, event_values=event_values)
        except ConfigError:
            if not self._notifies_failure(state, trigger) or not event_values:
                raise
            # The failure being notified can be this very configuration (a bad override refused at the
            # first step): people are still told, with the configuration the environment and SSM give.
            logger.warning("notifying the failure with the configuration from the environment and SSM")
            return config_resolver.resolve(self.services.settings)

    # -- recording ------------------------------------------------------------------------------------------
    def _record_success(
        self,
        state: OperationState,
        trigger: Trigger,
        outcome: Outcome,
        started_at: datetime,
        resolved: config_resolver.ResolvedConfig,
    ) -> dict[str, Any]:
        config = resolved.config
        now = utcnow()
        waiting = outcome.waiting is not None
        was = state.status
        resumed = self._reruns_failed_step(state)
        state.outputs.update(outcome.outputs)
        if not state.config:
            # The configuration the operation keeps, and where each value came from (`status` shows it).
            state.config = config.model_dump(mode="json")
            state.config_sources = dict(resolved.sources)
            state.target_cluster_id = config.target_cluster_id
        state.redriven, state.retry_error, state.stalled_since = 0, None, None  # it moved
        state.history.append(
            HistoryEntry(
                step=self.step,
                outcome="waiting" if waiting else "success",
                message=outcome.message,
                trigger=trigger.label,
                started_at=started_at,
                finished_at=now,
            )
        )
        state.current_step = self.step
        events: list[BusEvent] = []
        previous: Waiting | None = None
        ended: Waiting | None = None
        if outcome.waiting is not None:
            previous = state.waiting if state.waiting and state.waiting.step == self.step.value else None
            recheck = outcome.waiting.recheck_after_seconds or config.recheck_interval_seconds
            if trigger.rds is not None and previous and previous.waiting_for == outcome.waiting.waiting_for:
                # The RDS event that ends this wait came before RDS describes the resource so (an instance
                # created, then configuring its monitoring): the event will not come again, so look again
                # soon rather than at the safety re-check.
                recheck = min(recheck, config.recheck_interval_seconds)
            deadline = (
                previous.deadline if previous else now + timedelta(minutes=outcome.waiting.timeout_minutes)
            )
            state.waiting = Waiting(
                step=self.step,
                waiting_for=outcome.waiting.waiting_for,
                next_check_at=min(now + timedelta(seconds=recheck), deadline),
                deadline=deadline,
                since=previous.since if previous else now,
            )
            state.status = "waiting"
            state.next_step = self.step
            if previous is None or previous.waiting_for != outcome.waiting.waiting_for:
                events.append(
                    StepWaiting(
                        operation_id=state.operation_id,
                        step=self.step,
                        waiting_for=outcome.waiting.waiting_for,
                        next_check_at=state.waiting.next_check_at,
                    )
                )
            direct_next: Any = self.step.value
        else:
            if state.waiting is not None and state.waiting.step == self.step.value:
                ended = state.waiting  # its pending wake-up is dropped once this is committed
            state.waiting = None
            state.status = outcome.final_status or "running"  # type: ignore[assignment]
            state.next_step = outcome.next_step
            direct_next = outcome.next_step.value if outcome.next_step else None
            if not outcome.suppress_completed:
                events.append(
                    StepCompleted(
                        operation_id=state.operation_id,
                        step=self.step,
                        next_step=outcome.next_step,
                        message=outcome.message,
                        result=_compact(outcome.fields),
                    )
                )
        if outcome.direct_next_step != "same":
            direct_next = (
                outcome.direct_next_step.value if isinstance(outcome.direct_next_step, Step) else None
            )
        response = {
            "operation_id": state.operation_id,
            "status": "success",
            "message": outcome.message,
            **outcome.fields,
            "next_step": direct_next,
        }
        if not waiting and outcome.record_result:
            state.results[self.step.value] = _compact(response, limit=60_000)
        events.extend(outcome.events)
        if outcome.final_status in TERMINAL_STATUSES:
            state.expires_at = expiry(config.state_retention_days, now)
        published = self._commit(state, events)
        if state.waiting is not None:
            wakeup.reschedule(
                self.services.settings,
                state.operation_id,
                self.step,
                state.waiting.next_check_at,
                previous.next_check_at if previous is not None else None,
                now,
            )
        elif ended is not None:
            wakeup.cancel(self.services.settings, state.operation_id, self.step, ended.next_check_at, now)
        self._watch(state, was, now, resumed=resumed)
        self._write_record(state, config, response, trigger)
        logger.info(outcome.message, extra={"outcome": "waiting" if waiting else "success"})
        if not published:
            if not trigger.is_direct:  # tried again in a minute: its replay puts the outbox on the bus
                raise StepError(f"{self.step.value} is done; its events wait in the outbox", retryable=True)
            return {**response, "_outcome": "waiting" if waiting else "success"}
        purge_if_due(self.services.store, state)
        return {**response, "_outcome": "waiting" if waiting else "success"}

    def record_failure(
        self, state: OperationState, trigger: Trigger, exc: StepError, started_at: datetime
    ) -> dict[str, Any]:
        now = utcnow()
        error = ErrorInfo(type=exc.error_type, message=exc.message, retryable=exc.retryable)
        state.redriven, state.retry_error, state.stalled_since = 0, None, None
        state.history.append(
            HistoryEntry(
                step=self.step,
                outcome="failed",
                message=exc.message,
                trigger=trigger.label,
                started_at=started_at,
                finished_at=now,
            )
        )
        events: list[BusEvent] = []
        ended, was = state.waiting, state.status
        if state.status not in TERMINAL_STATUSES:
            state.status = "failed"
            state.error = error
            state.failed_step = self.step
            state.waiting = None
            events.append(
                StepFailed(
                    operation_id=state.operation_id,
                    step=self.step,
                    error=error,
                    left_in_place=left_in_place(state),
                )
            )
            events.append(OperationFinished(operation_id=state.operation_id, outcome="failed"))
        published = self._commit(state, events)
        if ended is not None and state.waiting is None:
            wakeup.cancel(
                self.services.settings, state.operation_id, Step(ended.step), ended.next_check_at, now
            )
        self._watch(state, was, now)
        logger.error("step failed", extra={"error_type": exc.error_type, "error": exc.message})
        if state.config:
            try:
                config = RestoreConfig.model_validate(state.config)
            except ValidationError:
                logger.warning("could not write the step record: the recorded configuration is invalid")
            else:
                self._write_record(state, config, {"error": error.model_dump()}, trigger)
        if not published and not trigger.is_direct:  # the operation ended: no watchdog would put them
            raise StepError(
                f"the failure at {self.step.value} is recorded; its events wait in the outbox", retryable=True
            )
        return {**_error_response(state.operation_id, exc), "_outcome": "failed"}

    def _reruns_failed_step(self, state: OperationState) -> bool:
        """Whether this run re-runs the step the operation failed at (the operator resumed it there): the
        history's last entry for this step, before this run's, is that failure."""
        last = next((entry for entry in reversed(state.history) if entry.step == self.step.value), None)
        return last is not None and last.outcome == "failed"

    def _watch(self, state: OperationState, was: str, now: datetime, *, resumed: bool = False) -> None:
        """Arm the operation's watchdog when a stretch of steps between two waits begins (the operation
        starts, a wait ends, or a resumed step hands over: resume saved the operation as running, so `was`
        does not tell); disarm it when a wait begins (the wait has its own wake-up) or the operation ends."""
        settings = self.services.settings
        begins = was != "running" or resumed or self.step is Step.SNAPSHOT_CHECK
        if state.status == "running" and begins:
            wakeup.arm_watchdog(settings, state.operation_id, now + timedelta(seconds=settings.stall_seconds))
        elif was == "running" and state.status != "running":
            wakeup.disarm_watchdog(settings, state.operation_id)

    def _commit(self, state: OperationState, events: list[BusEvent]) -> bool:
        """Write the transition with its events in the outbox, put them on the bus, then clear the outbox.
        False when the events could not be put: they wait in the outbox, for the operation's next trigger
        or the reconciler to put (after OUTBOX_GRACE); the transition stands."""
        if state.claim is not None and state.claim.token == self._token:
            state.claim = None
        state.outbox = [{"detail_type": e.detail_type, "detail": e.model_dump(mode="json")} for e in events]
        self._write_transition(state)
        if not events:
            return True
        try:
            self.services.publisher.publish(events)
        except (PublishError, BotoCoreError) as exc:
            logger.warning(
                "events not put on the bus; they wait in the outbox",
                extra={"error_type": type(exc).__name__, "events": [e.detail_type for e in events]},
            )
            return False
        state.outbox = []
        try:
            self.services.store.save(state)
        except StaleWrite:
            logger.info("outbox already cleared by a newer writer")
        except StepError:
            logger.warning("outbox not cleared: its events may be put on the bus again (harmless)")
        return True

    def _write_transition(self, state: OperationState) -> None:
        """The transition's one conditional write, with two of DynamoDB's answers handled here:
        - "condition failed" for a write it applied (a 500 or a timeout, then botocore's retry meeting its
          own write): the item holds this very transition, so this invocation carries on from it (deciding
          again would replay the result and leave the outbox for later);
        - refused for now (throttled): this invocation's claim is dropped before the error goes up, or every
          retry of the trigger would find the step held until the claim expired."""
        expected, last = state.version, (state.history[-1] if state.history else None)
        try:
            self.services.store.save(state)
        except StaleWrite:
            written = self.services.store.get(state.operation_id)
            if written is None or written.version != expected + 1 or not written.history:
                raise
            if written.history[-1] != last or written.outbox != state.outbox:
                raise
            logger.info("the transition was written; its answer was lost")
            state.version, state.updated_at = written.version, written.updated_at
        except StepError:
            try:
                held = self.services.store.get(state.operation_id)
            except StepError:
                held = None
            if held is not None:
                self._release_claim(held)
            raise

    def _write_record(
        self, state: OperationState, config: RestoreConfig, response: dict[str, Any], trigger: Trigger
    ) -> None:
        """The step's record in S3, after the transition is committed: a failure to write it is logged and
        changes nothing else (raising here would fail a step that is done, or skip what follows)."""
        try:
            self._log_step(state, config, response, trigger)
        except StepError as exc:
            logger.warning("could not write the step record", extra={"error": exc.message})

    def flush_outbox(self, state: OperationState) -> OperationState | None:
        """Events a crashed run wrote but may not have put on the bus: put them now (duplicates are harmless)."""
        if not state.outbox:
            return None
        events = [
            BUS_EVENT_BY_TYPE[item["detail_type"]].model_validate(item["detail"]) for item in state.outbox
        ]
        self.services.publisher.publish(events)
        state.outbox = []
        saved = self.services.store.save(state)
        purge_if_due(self.services.store, saved)
        return saved

    def _log_step(
        self, state: OperationState, config: RestoreConfig, response: dict[str, Any], trigger: Trigger
    ) -> None:
        if config.delete_logs and state.status == "completed":
            return
        index = list(Step).index(self.step) + 1
        record = {
            "operation_id": state.operation_id,
            "step": self.step.value,
            "trigger": trigger.label,
            "status": state.status,
            "response": response,
            "recorded_at": utcnow().isoformat(),
        }
        StepLog(config.log_bucket, config.log_prefix, config.target_region).write(
            state.operation_id, f"{index:02d}-{self.step.value}", record
        )


def purge_if_due(store: StateStore, state: OperationState) -> None:
    """`delete_state`: a completed operation keeps only its results, once its events are on the bus (the
    outbox goes with the rest). Done after cleanup's commit, or by whoever puts its outbox on the bus."""
    if state.status != "completed" or not state.config or state.outbox:
        return
    if not state.config.get("delete_state"):
        return
    try:
        store.keep_results_only(state)
    except StaleWrite:
        logger.info("state moved before it was reduced to its results; the reconciler's scan does it")
    except StepError as exc:
        logger.warning("state not reduced to its results", extra={"error": exc.message})


def left_in_place(state: OperationState) -> dict[str, Any]:
    """What a failed operation leaves behind, for the failure notification. The lease only when it holds
    one: snapshot_check records the target among its outputs once it has taken the lease, so an operation
    that failed before (no snapshot, LeaseHeld: another operation holds it) names none."""
    keep: tuple[str, ...] = (
        "target_snapshot",
        "snapshot_name",
        "target_cluster_id",
        "cluster_endpoint",
        "deletion_started",
    )
    if state.outputs.get("copy_released"):  # given up once the restore was done (check_restore_status)
        keep = tuple(key for key in keep if key != "target_snapshot")
    return {key: state.outputs[key] for key in keep if key in state.outputs} | {
        "lease": state.outputs.get("target_cluster_id") if state.status != "aborted" else None,
    }


def _as_step_error(raised: Exception, step: Step) -> StepError:
    """What a step's failure is recorded as. Our own errors as they are; botocore's connection errors and
    timeouts (its retries exhausted) as retryable; anything else, a fault no input check caught, as a
    non-retryable InternalError named by its type only: its text could hold a value from the input, and
    the state, the events and the notification must not. The log gets the type and the traceback's
    frames, not the message."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(raised, StepError):
        return raised
    kind = type(raised).__name__
    if isinstance(raised, ConnectionError | HTTPClientError):
        return AwsError(f"AWS could not be reached ({kind})", retryable=True)
    if isinstance(raised, ClientError):
        # An AWS answer no adapter turned into our own error: throttling and AWS's own faults pass.
        return AwsError(
            f"{raised.operation_name} was refused: {aws.error_code(raised)}",
            retryable=aws.is_transient(raised),
        )
    logger.error(
        "unexpected error",
        extra={"error_type": kind, "where": "".join(traceback.format_tb(raised.__traceback__))},
    )
    return InternalError(f"{step.value} failed on an unexpected {kind}; the function's log has where")


def _error_response(operation_id: str | None, exc: StepError, outcome: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "operation_id": operation_id,
        "status": "error",
        "message": exc.message,
        "error": {"type": exc.error_type, "message": exc.message, "retryable": exc.retryable},
        "next_step": None,
    }
    if outcome:
        response["_outcome"] = outcome
    return response


def _compact(value: dict[str, Any], limit: int = MAX_EVENT_RESULT_CHARS) -> dict[str, Any]:
    """Keep events and state items small: long lists are cut, with a note of how many were left out."""
    if len(json.dumps(value, default=str)) <= limit:
        return value
    compacted: dict[str, Any] = {}
    for key, inner in value.items():
        if isinstance(inner, list) and len(inner) > 20:
            compacted[key] = inner[:20]
            compacted[f"{key}_omitted"] = len(inner) - 20
        elif isinstance(inner, dict):
            compacted[key] = _compact(inner, limit // 2)
        else:
            compacted[key] = inner
    return compacted


def timed_out(waiting: Waiting) -> WaitTimedOut:
    """The failure of a wait past its deadline, found by its own check or by the reconciler."""
    minutes = int((waiting.deadline - waiting.since).total_seconds() // 60)
    return WaitTimedOut(
        f"{Step(waiting.step).value} waited for {waiting.waiting_for} past its deadline ({minutes} min)"
    )


def recheck_interval(state: OperationState) -> timedelta:
    """The operation's `recheck_interval_seconds`: the shortest gap between two checks of a wait."""
    return timedelta(seconds=RestoreConfig.model_validate(state.config).recheck_interval_seconds)


def recheck_event(state: OperationState) -> RecheckDue:
    assert state.waiting is not None
    return RecheckDue(operation_id=state.operation_id, step=Step(state.waiting.step))


def restart_event(state: OperationState, step: Step, reason: str) -> BusEvent:
    """The event whose route starts `step` again for this operation: the operator's resume, or the
    reconciler re-driving a step whose trigger was lost or whose invocation died."""
    if step is Step.SNAPSHOT_CHECK:
        return RestoreRequested(
            operation_id=state.operation_id, target_date=state.target_date, overrides=state.overrides or None
        )
    if step in WAITING_STEPS:
        return RecheckDue(operation_id=state.operation_id, step=step)
    order = list(Step)
    previous = order[order.index(step) - 1]
    return StepCompleted(
        operation_id=state.operation_id, step=previous, next_step=step, message=reason, result={}
    )


__all__ = [
    "Outcome",
    "StepContext",
    "StepRunner",
    "Wait",
    "WAITING_STEPS",
    "recheck_event",
    "recheck_interval",
    "restart_event",
]
