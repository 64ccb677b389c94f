"""The events aurora-restore puts on its EventBridge bus (the `detail` of each), and their envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import SCHEMA_VERSION, OperationId, Step, TargetDate

EVENT_SOURCE = "aurora-restore"


class BusEvent(BaseModel):
    """Base of every `detail` we publish: each carries operation_id and schema_version."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    detail_type: ClassVar[str] = ""

    operation_id: OperationId
    schema_version: str = SCHEMA_VERSION


class RestoreRequested(BusEvent):
    """Starts an operation. `overrides` are configuration values with the highest priority."""

    detail_type: ClassVar[str] = "RestoreRequested"
    target_date: TargetDate
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


BUS_EVENTS: tuple[type[BusEvent], ...] = (
    RestoreRequested,
    StepCompleted,
    StepWaiting,
    StepFailed,
    RecheckDue,
    StallCheckDue,
    OperationFinished,
)
BUS_EVENT_BY_TYPE: dict[str, type[BusEvent]] = {model.detail_type: model for model in BUS_EVENTS}
