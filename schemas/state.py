"""The state item of one operation (DynamoDB), and the lease item per target cluster."""

# No `from __future__ import annotations`: pydantic would compile and evaluate each field's annotation
# text when it builds the models, at every cold start (docs/performance.md, "Cold start").

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import OperationId, Step, TargetDate, empty_list
from schemas.events import ErrorInfo

OperationStatus = Literal["running", "waiting", "completed", "failed", "aborted"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "aborted"})


class HistoryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    step: Step
    outcome: Literal["success", "waiting", "failed", "ignored"]
    message: str
    trigger: str = Field(
        description="What started this run: direct, StepCompleted, RecheckDue, an RDS EventID, ..."
    )
    started_at: datetime
    finished_at: datetime


class Waiting(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    step: Step
    waiting_for: str
    next_check_at: datetime
    deadline: datetime
    since: datetime


class Claim(BaseModel):
    """One invocation of a step at work: duplicates of its trigger wait until it is done or expired."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    step: Step
    token: str
    until: datetime


class OperationState(BaseModel):
    """One operation. Every write is conditional on `version`; no secret value is ever stored here."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    operation_id: OperationId
    status: OperationStatus = "running"
    current_step: Step | None = None
    next_step: Step | None = None
    target_date: TargetDate
    latest_snapshot: bool = Field(
        default=False,
        description="The request asked for target_date `latest`: snapshot_check restores the newest available"
        " snapshot of the source cluster and records its day in target_date (until then, the day the request"
        " came)",
    )
    target_cluster_id: str | None = None
    config: dict[str, Any] = Field(
        default_factory=dict, description="Resolved configuration, no secret values"
    )
    config_sources: dict[str, str] = Field(default_factory=dict)
    overrides: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    results: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Each finished step's direct response, replayed to late or repeated calls",
    )
    history: list[HistoryEntry] = Field(default_factory=empty_list)
    waiting: Waiting | None = None
    error: ErrorInfo | None = None
    failed_step: Step | None = None
    claim: Claim | None = None
    redriven: int = Field(
        default=0,
        description="Re-drives of the next step that followed a retryable failure of it, since the operation"
        " last moved",
    )
    retry_error: str | None = Field(
        default=None,
        description="The next step's last retryable failure since the operation last moved and the last"
        " counted re-drive",
    )
    stalled_since: datetime | None = Field(
        default=None,
        description="When the reconciler first re-drove the next step since the operation last moved",
    )
    outbox: list[dict[str, Any]] = Field(
        default_factory=empty_list,
        description="Events written with the transition and not yet confirmed on the bus",
    )
    version: int = 0
    created_at: datetime
    updated_at: datetime
    expires_at: int | None = Field(default=None, description="Epoch seconds; DynamoDB TTL")

    @property
    def strategy(self) -> str | None:
        """How the operation refreshes its target (RestoreConfig.strategy: `replace`, its default, or `swap`),
        from its recorded configuration; None when none was recorded (refused before it resolved)."""
        return str(self.config.get("strategy") or "replace") if self.config else None

    @property
    def request_refused(self) -> bool:
        """Whether the operation failed on its request itself (InvalidRequest at snapshot_check: a payload
        that did not validate, a bad date, an unknown override or field). Not resumable: a resume would run
        what was kept of that request (today's date for a bad one, the configured target for a misspelt
        override), not what was asked for."""
        return (
            self.status == "failed"
            and self.failed_step == Step.SNAPSHOT_CHECK
            and self.error is not None
            and self.error.type == "InvalidRequest"
        )


class Lease(BaseModel):
    """Held by one operation on one target cluster: two operations on the same target never interleave."""

    model_config = ConfigDict(extra="forbid")

    target_cluster_id: str
    holder: OperationId
    acquired_at: datetime
