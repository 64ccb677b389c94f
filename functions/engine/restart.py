"""The events that start a step again: the operator's resume, the reconciler's re-drive and re-check."""

from __future__ import annotations

from functions import sequence
from schemas.common import EVENT_WAITING_STEPS, Step
from schemas.config import RestoreConfig
from schemas.events import BusEvent, RecheckDue, RestoreRequested, StepCompleted
from schemas.state import OperationState


def recheck_event(state: OperationState) -> RecheckDue:
    """The waiting step's next check."""
    assert state.waiting is not None
    return RecheckDue(operation_id=state.operation_id, step=Step(state.waiting.step))


def restart_event(state: OperationState, step: Step, reason: str) -> BusEvent:
    """The event whose route starts `step` again for this operation: the operator's resume, or the
    reconciler re-driving a step whose trigger was lost or whose invocation died."""
    if step is Step.SNAPSHOT_CHECK:
        return RestoreRequested(
            operation_id=state.operation_id, target_date=state.target_date, overrides=state.overrides or None
        )
    if step in EVENT_WAITING_STEPS:
        return RecheckDue(operation_id=state.operation_id, step=step)
    previous = sequence.preceding(step, recorded_config(state))
    assert previous is not None  # only snapshot_check, answered above, has none
    return StepCompleted(
        operation_id=state.operation_id, step=previous, next_step=step, message=reason, result={}
    )


def recorded_config(state: OperationState) -> RestoreConfig | None:
    """The operation's recorded configuration (None: none recorded, or no longer valid)."""
    if not state.config:
        return None
    try:
        return RestoreConfig.model_validate(state.config)
    except ValueError:
        return None
