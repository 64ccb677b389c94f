"""The outcome notice subscribers get on the notification topic and queue: completed, failed or aborted."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import IsoDateTime, OperationId, Step, TargetDate
from schemas.events import ErrorInfo

# A failure notice whose StepFailed carried no error (none is known) says `{}`.
NoError = Annotated[dict[str, Any], Field(max_length=0)]


class LeftInPlace(BaseModel):
    """What a failed or aborted operation leaves behind; each key only when the operation got that far.
    Passed on as the StepFailed event carries it, so a key this model does not name is kept."""

    model_config = ConfigDict(extra="allow")

    target_snapshot: str | None = Field(
        default=None, description="The copy, still held by this operation (until cleanup or an abort)"
    )
    snapshot_name: str | None = Field(default=None, description="The source snapshot")
    target_cluster_id: str | None = Field(default=None, description="The target cluster")
    cluster_endpoint: str | None = Field(default=None, description="The restored cluster's endpoint")
    deletion_started: bool | None = Field(default=None, description="The old target's deletion was asked for")
    restored_cluster_id: str | None = Field(
        default=None,
        description="Under swap, before the switch: the cluster restored beside the target, kept for a resume",
    )
    switch_started: bool | None = Field(default=None, description="Under swap: the switch began")
    switch_rolled_back: bool | None = Field(
        default=None, description="Under swap: the failed switch renamed the old target back under its name"
    )
    old_cluster_id: str | None = Field(
        default=None, description="Under swap, after the switch: the old target's new name, to be deleted"
    )
    lease: str | None = Field(
        default=None, description="The target whose lease the operation still holds (null: none, or aborted)"
    )


class OutcomeNotice(BaseModel):
    """One operation's outcome, whoever sends it (notify_completion, or the operator's abort); sent as JSON
    with sorted keys. A key is in the notice when its sender set it, even to null."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    operation_id: OperationId
    outcome: Literal["completed", "failed", "aborted"]
    target_cluster_id: str | None
    target_date: TargetDate
    source_snapshot: str | None = Field(description="The source snapshot (null: none found)")
    strategy: Literal["replace", "swap"] | None = Field(
        default=None, description="How the target was refreshed (null: no configuration was resolved)"
    )
    final_snapshot: str | None = Field(
        default=None, description="Only when the deletion kept one: the old target's final snapshot"
    )
    started_at: IsoDateTime = Field(description="When the operation started")
    took_s: int = Field(description="Seconds from the start to this notice")
    target_down_since: IsoDateTime | None = Field(
        default=None,
        description="Since when the target is out of use: the old target's deletion (replace), the switch (swap)",
    )
    target_downtime_s: int | None = Field(
        default=None,
        description="Seconds out of use, once back: until the users are set up on the restored cluster"
        " (replace), until the restored cluster answers under the target's name (swap)",
    )
    # notify_completion, completed and failed
    cluster_endpoint: str | None = Field(default=None, description="The restored cluster's endpoint")
    cluster_port: int | None = Field(default=None, description="The restored cluster's port")
    users: list[str] | None = Field(default=None, description="The application users set up")
    # failed
    failed_step: Step | None = Field(default=None, description="The step that failed")
    error: ErrorInfo | NoError | None = Field(default=None, description="Why it failed")
    resume: str | None = Field(default=None, description="The command that resumes the operation there")
    # failed and aborted
    left_in_place: LeftInPlace | None = Field(default=None, description="What the operation leaves behind")
    # aborted
    stopped_at: Step | None = Field(default=None, description="The step the operator aborted at")

    @property
    def subject(self) -> str:
        """The SNS subject (SNS takes fewer than 100 characters: the sender cuts it)."""
        return f"aurora-restore {self.outcome}: {self.target_cluster_id} ({self.operation_id})"

    def body(self) -> str:
        """The message as sent to SNS and SQS: the keys set, sorted."""
        return json.dumps(self.model_dump(exclude_unset=True), default=str, sort_keys=True)


class RejectedNotice(BaseModel):
    """A request refused before any operation could be recorded for it (its operation_id missing or not
    one), from its RequestRejected: what was received, cut short and without secrets, and why. Sent by
    notify_completion to the same topic and queue as the outcome notices, as JSON with sorted keys."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    operation_id: None = Field(default=None, description="Always null: the request named no usable one")
    outcome: Literal["rejected"] = "rejected"
    request: str = Field(description="What the request was: its detail-type (RestoreRequested)")
    step: Step = Field(description="The function the request reached")
    reason: str = Field(description="Why it was refused")
    received: str = Field(description="The request's detail as received, cut short, secrets hidden")
    received_chars: int = Field(description="The length of the request's detail, as JSON")
    rejected_at: IsoDateTime = Field(description="When it was refused")

    @property
    def subject(self) -> str:
        """The SNS subject (SNS takes fewer than 100 characters: the sender cuts it)."""
        return f"aurora-restore rejected: a {self.request} without a usable operation_id"

    def body(self) -> str:
        """The message as sent to SNS and SQS, keys sorted."""
        return json.dumps(self.model_dump(), default=str, sort_keys=True)
