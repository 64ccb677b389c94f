"""What started an invocation: a direct runbook payload, one of our bus events, or an RDS event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from functions.errors import InvalidRequest, shown
from schemas.common import OperationId
from schemas.events import BUS_EVENT_BY_TYPE, EVENT_SOURCE
from schemas.rds_event_ids import RESOURCE_KIND

if TYPE_CHECKING:
    from functions.store import StateStore
    from schemas.rds_events import RdsEventDetail

# A runbook payload or one of our events is a few hundred characters; EventBridge allows 256 KB.
MAX_PAYLOAD_CHARS = 64_000


@cache
def _operation_id() -> TypeAdapter[str]:
    """Built on first use: only direct payloads and refused requests check an id this way (a bus event's
    model checks its own), so most cold starts skip building it."""
    return TypeAdapter(OperationId)


class TriggerKind(StrEnum):
    """The kinds of trigger; the bus events' values are their detail-types."""

    DIRECT = "direct"
    RESTORE_REQUESTED = "RestoreRequested"
    REQUEST_REJECTED = "RequestRejected"
    STEP_COMPLETED = "StepCompleted"
    STEP_FAILED = "StepFailed"
    RECHECK_DUE = "RecheckDue"
    STEP_WAITING = "StepWaiting"
    STALL_CHECK_DUE = "StallCheckDue"
    OPERATION_FINISHED = "OperationFinished"
    RDS = "rds"
    RECONCILE = "reconcile"
    OPERATOR = "operator"


class DirectPayload(BaseModel):
    """The runbook's direct invocation payload: operation_id plus the step's own optional fields."""

    model_config = {"extra": "allow"}
    operation_id: str


@dataclass
class Trigger:
    """One invocation's trigger: its kind, the operation it names, and its payload."""

    kind: TriggerKind
    label: str  # what the history records: "direct", "StepCompleted", "RDS-EVENT-0171", ...
    operation_id: str | None
    payload: dict[str, Any]
    rds: RdsEventDetail | None = None
    rds_kind: str | None = None  # what the RDS event is about (schemas.rds_event_ids.RESOURCE_KIND)

    @property
    def is_direct(self) -> bool:
        return self.kind is TriggerKind.DIRECT

    @classmethod
    def internal(cls, kind: TriggerKind, operation_id: str) -> Trigger:
        """A transition made by the reconciler or the operator, not by a step's own trigger."""
        return cls(kind, kind.value, operation_id, {})


def parse_trigger(event: Any) -> Trigger:
    """The trigger in an invocation's payload; InvalidRequest, saying why, for anything else."""
    if not isinstance(event, dict):
        raise InvalidRequest("the payload must be a JSON object")
    size = len(json.dumps(event.get("detail", event), default=str))
    if size > MAX_PAYLOAD_CHARS:
        # Steps echo what they were given into messages, and messages into the state item (400 KB).
        raise InvalidRequest(f"the payload is {size:,} characters: at most {MAX_PAYLOAD_CHARS:,}")
    if "detail-type" in event and "detail" in event:
        if event.get("source") == "aws.rds":
            return _rds_trigger(event)
        return _bus_trigger(event)
    return _direct_trigger(event)


def _rds_trigger(event: dict[str, Any]) -> Trigger:
    # Imported here: only the waiting steps receive RDS events, so the others' cold start skips these
    # models and Powertools' EventBridgeModel.
    from schemas.rds_events import RdsEvent

    try:
        rds_event = RdsEvent.model_validate(event)
    except ValidationError as exc:
        raise InvalidRequest(f"not an RDS event we understand: {first_error(exc)}") from exc
    kind = RESOURCE_KIND[rds_event.detail_type]
    return Trigger(TriggerKind.RDS, rds_event.detail.event_id, None, {}, rds_event.detail, kind)


def _bus_trigger(event: dict[str, Any]) -> Trigger:
    detail_type = event["detail-type"]
    model = BUS_EVENT_BY_TYPE.get(detail_type)
    if event.get("source") != EVENT_SOURCE or model is None:
        raise InvalidRequest(f"unexpected event {event.get('source')}/{detail_type}")
    try:
        detail = model.model_validate(event["detail"])
    except ValidationError as exc:
        raise InvalidRequest(f"invalid {detail_type} event: {_problem(exc, event['detail'])}") from exc
    return Trigger(TriggerKind(detail_type), detail_type, detail.operation_id, detail.model_dump(mode="json"))


def _problem(exc: ValidationError, detail: Any) -> str:
    """The first problem, the requested day's in the words a direct snapshot_check uses for it."""
    error = exc.errors()[0]
    if error["loc"] == ("target_date",) and error["type"] != "missing" and isinstance(detail, dict):
        return f"target_date {shown(detail.get('target_date'))} is not a date (YYYY-MM-DD)"
    return first_error(exc)


def _direct_trigger(event: dict[str, Any]) -> Trigger:
    try:
        direct = DirectPayload.model_validate(event)
    except ValidationError as exc:
        raise InvalidRequest(f"invalid payload: {first_error(exc)}") from exc
    try:
        _operation_id().validate_python(direct.operation_id)
    except ValidationError as exc:
        raise InvalidRequest(f"invalid operation_id: {first_error(exc)}") from exc
    return Trigger(TriggerKind.DIRECT, "direct", direct.operation_id, dict(event))


def usable_operation_id(value: Any) -> str | None:
    """`value` when it can name an operation (schemas.common.OperationId), else None."""
    try:
        return _operation_id().validate_python(value, strict=True)
    except ValidationError:
        return None


def request_of(event: Any) -> Trigger | None:
    """What a payload parse_trigger refused still says: a RestoreRequested of ours, or a direct payload (a
    JSON object that is no event), with its operation id when that one is usable (else None). None for
    anything else: an RDS event, another of our events, a value that is no JSON object."""
    if not isinstance(event, dict):
        return None
    kind, detail = TriggerKind.DIRECT, event
    if "detail-type" in event and "detail" in event:
        if event.get("source") != EVENT_SOURCE or event["detail-type"] != TriggerKind.RESTORE_REQUESTED:
            return None
        kind, detail = TriggerKind.RESTORE_REQUESTED, event["detail"]
    payload = detail if isinstance(detail, dict) else {}
    return Trigger(kind, kind.value, usable_operation_id(payload.get("operation_id")), payload)


def first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(item) for item in error["loc"])
    return f"{location}: {error['msg']}" if location else str(error["msg"])


def locate(trigger: Trigger, store: StateStore) -> str | None:
    """The operation the trigger is for: its own id, or for an RDS event the operation that indexed the
    resource (None: the resource is not ours)."""
    if trigger.rds is None:
        return trigger.operation_id
    trigger.operation_id = store.lookup_resource(str(trigger.rds_kind), trigger.rds.identifier)
    return trigger.operation_id
