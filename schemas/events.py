"""The events aurora-restore puts on its EventBridge bus (the `detail` of each), and their envelope."""

# No `from __future__ import annotations`: pydantic would compile and evaluate each field's annotation
# text when it builds the models, at every cold start (docs/performance.md, "Cold start").

import re
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from schemas.common import SCHEMA_VERSION, OperationId, Step, TargetDate

EVENT_SOURCE = "aurora-restore"
# A request's target_date may name no day: the newest available snapshot of the source cluster is restored,
# and snapshot_check records its day as the operation's target_date (functions/steps/latest.py).
LATEST = "latest"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _requested_day(value: Any) -> Any:
    """A requested day as the runbook writes it (YYYY-MM-DD), or a date: pydantic alone takes a number as
    seconds since 1970 (0 was 1970-01-01) and a timestamp as its day. `latest` asks for the newest snapshot."""
    if value == LATEST:
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DAY.fullmatch(value):
        # Parsed here, not by the union below: its refusal is then the field's own, as it was before
        # `latest` (no `target_date.date` in the error's location).
        return date.fromisoformat(value)
    raise ValueError("not a date (YYYY-MM-DD)")


RequestedDate = Annotated[
    TargetDate | Literal["latest"],
    BeforeValidator(_requested_day),
    Field(
        description="The day whose snapshot is restored (YYYY-MM-DD), or `latest`: the newest available one"
    ),
]


class BusEvent(BaseModel):
    """Base of every `detail` we publish: each carries operation_id and schema_version."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    detail_type: ClassVar[str] = ""

    operation_id: OperationId
    schema_version: str = SCHEMA_VERSION


class RestoreRequested(BusEvent):
    """Starts an operation. `overrides` are configuration values with the highest priority."""

    # Built on first use: snapshot_check receives it, and builds it at import (functions/snapshot_check.py).
    model_config = ConfigDict(defer_build=True)
    detail_type: ClassVar[str] = "RestoreRequested"
    target_date: RequestedDate
    overrides: dict[str, Any] | None = None


class StepCompleted(BusEvent):
    """A step finished; rules route on `next_step`."""

    detail_type: ClassVar[str] = "StepCompleted"
    step: Step
    next_step: Step | None
    status: Literal["success"] = "success"
    message: str
    result: dict[str, Any] = Field(default_factory=dict)


class StepWaiting(BusEvent):
    """Informational: a step is waiting for AWS and will be re-checked."""

    detail_type: ClassVar[str] = "StepWaiting"
    step: Step
    waiting_for: str
    next_check_at: datetime


class ErrorInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    message: str
    retryable: bool = False


class StepFailed(BusEvent):
    """A step failed; routed to notification."""

    detail_type: ClassVar[str] = "StepFailed"
    step: Step
    error: ErrorInfo
    left_in_place: dict[str, Any] = Field(default_factory=dict)


class RecheckDue(BusEvent):
    """From the reconciler: re-check a waiting step."""

    detail_type: ClassVar[str] = "RecheckDue"
    step: Step


class StallCheckDue(BusEvent):
    """From an operation's watchdog schedule: its current stretch of steps has not finished in time;
    routed to the reconciler, which re-drives the operation if nothing is moving it."""

    detail_type: ClassVar[str] = "StallCheckDue"


class OperationFinished(BusEvent):
    detail_type: ClassVar[str] = "OperationFinished"
    outcome: Literal["completed", "failed", "aborted"]


class RequestRejected(BusEvent):
    """A request refused before any operation could be recorded for it: its operation_id is missing or
    cannot name one (a usable one records that operation as failed instead). Routed to notify_completion,
    which tells the subscribers."""

    # Built on first use: only a refused request makes one, and only notify_completion receives one.
    model_config = ConfigDict(defer_build=True)
    detail_type: ClassVar[str] = "RequestRejected"
    operation_id: None = Field(  # type: ignore[assignment]
        description="Always null: the request named no usable operation id"
    )
    step: Step = Field(description="The function the request reached")
    request: str = Field(description="What the request was: its detail-type (RestoreRequested)")
    reason: str = Field(description="Why it was refused")
    received: str = Field(
        description="The request's detail as received, as JSON, cut to 500 characters; the values of keys"
        " that look like secrets (password, secret, token, ...) and passwords in URLs hidden"
    )
    received_chars: int = Field(description="The length of that JSON before it was cut")
    rejected_at: datetime


BUS_EVENTS: tuple[type[BusEvent], ...] = (
    RestoreRequested,
    RequestRejected,
    StepCompleted,
    StepWaiting,
    StepFailed,
    RecheckDue,
    StallCheckDue,
    OperationFinished,
)
BUS_EVENT_BY_TYPE: dict[str, type[BusEvent]] = {model.detail_type: model for model in BUS_EVENTS}
