"""Whether a step runs for a trigger: run, replay its recorded result, refuse, or ignore (a pure decision)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from functions.engine.responses import error_response, ignored
from functions.engine.triggers import Trigger, TriggerKind
from functions.errors import InvalidRequest, StepError
from schemas.common import Step
from schemas.state import TERMINAL_STATUSES, OperationState


@dataclass(frozen=True)
class Run:
    """The step runs."""


@dataclass(frozen=True)
class Replay:
    """The step has a recorded result: a late or repeated call gets it and changes nothing."""

    response: dict[str, Any]


@dataclass(frozen=True)
class Refuse:
    """The call is answered with an error and changes nothing (an ended operation, a direct call out of turn)."""

    response: dict[str, Any]


@dataclass(frozen=True)
class Ignore:
    """A stale event for a step the operation is not at: answered, nothing done."""

    message: str


Admission = Run | Replay | Refuse | Ignore


def notifies_failure(step: Step, state: OperationState, trigger: Trigger) -> bool:
    """A StepFailed at notify_completion, while the operation is still failed: the one run an ended
    operation allows, and the one recorded step that runs again instead of replaying. Once the operator
    aborted or resumed it, a StepFailed arriving late (or again) must not set it back to failed."""
    return (
        step is Step.NOTIFY_COMPLETION
        and trigger.kind is TriggerKind.STEP_FAILED
        and state.status == "failed"
    )


def admit(step: Step, state: OperationState, trigger: Trigger) -> Admission:
    """Decide from the recorded state alone; nothing here reads or writes anything."""
    if notifies_failure(step, state, trigger):
        return Run()
    recorded = state.results.get(step.value)
    if recorded is not None:
        return Replay(recorded)
    if state.status in TERMINAL_STATUSES:
        error = state.error.message if state.error else f"operation is {state.status}"
        refused = StepError(f"operation {state.operation_id} is {state.status}: {error}")
        return Refuse(error_response(state.operation_id, refused))
    if trigger.kind is TriggerKind.STEP_FAILED:
        # A failure resumed since, delivered again or late: had the operation reached notify_completion
        # meanwhile, it would send a failure notice and set it failed.
        return Ignore(f"operation {state.operation_id} is {state.status} again; that failure was resumed")
    if state.next_step == step.value:
        return Run()
    message = (
        f"operation {state.operation_id} is at step {state.next_step or 'none'} "
        f"({state.status}); {step.value} does not run now"
    )
    if trigger.is_direct:
        return Refuse(error_response(state.operation_id, InvalidRequest(message)))
    return Ignore(message)


def answer_of(admission: Replay | Refuse | Ignore) -> tuple[dict[str, Any], str]:
    """The response and outcome label of a decision not to run."""
    if isinstance(admission, Replay):
        return dict(admission.response), "replayed"
    if isinstance(admission, Refuse):
        return admission.response, "refused"
    return ignored(admission.message), "ignored"
