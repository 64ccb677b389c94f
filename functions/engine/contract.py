"""What a step's logic sees and hands back: StepContext in; Done, Waiting or Finished out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from functions.engine.triggers import Trigger, TriggerKind
from schemas.common import Step
from schemas.outputs import StepOutputs

if TYPE_CHECKING:
    from functions.engine.services import Services
    from functions.rds import RdsAdapter
    from functions.settings import Settings
    from schemas.config import RestoreConfig
    from schemas.state import OperationState


@dataclass(frozen=True)
class Wait:
    """What a waiting step waits for, and for how long at most."""

    waiting_for: str
    timeout_minutes: float
    # When the next check is worth it; None: the configured recheck_interval_seconds.
    recheck_after_seconds: float | None = None


@dataclass(frozen=True)
class Done:
    """The step's work is done: the operation moves on to `next_step`."""

    message: str
    next_step: Step
    fields: dict[str, Any] = field(default_factory=dict)
    outputs: StepOutputs = field(default_factory=StepOutputs)


@dataclass(frozen=True)
class Waiting:
    """The step waits on AWS: it is looked at again when an RDS event or its wake-up comes."""

    message: str
    wait: Wait
    fields: dict[str, Any] = field(default_factory=dict)
    outputs: StepOutputs = field(default_factory=StepOutputs)


@dataclass(frozen=True)
class Finished:
    """The operation ends here: `completed` (its last step ran), or `failed` (a failed operation's failure
    was notified; it stays failed, nothing routes on, and no result is recorded: a later failure after a
    resume is notified again)."""

    message: str
    status: Literal["completed", "failed"]
    fields: dict[str, Any] = field(default_factory=dict)
    outputs: StepOutputs = field(default_factory=StepOutputs)


Outcome = Done | Waiting | Finished


@dataclass
class StepContext:
    """One run of one step: the operation as recorded, its configuration, the trigger and the adapters."""

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
# A step's answer to a RequestRejected (a request with no usable operation): no operation to read or record.
RejectionLogic = Callable[[Trigger, "Services"], dict[str, Any]]


__all__ = [
    "Done",
    "Finished",
    "Outcome",
    "StepContext",
    "StepLogic",
    "Trigger",
    "TriggerKind",
    "Wait",
    "Waiting",
]
