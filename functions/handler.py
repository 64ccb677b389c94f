"""Builds a step's Lambda handler: the Powertools decorators around the step runner, nothing else."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel

from functions.engine.contract import RejectionLogic, StepLogic
from functions.engine.runner import StepRunner
from functions.observability import invocation_keys, tracer
from schemas.common import Step

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def make_handler(
    step: Step,
    logic: StepLogic,
    on_rejected: RejectionLogic | None = None,
    models: Iterable[type[BaseModel]] = (),
) -> Handler:
    """The handler of `step`. `models`: the deferred models (built on first use, as most steps never use
    them) that this step's runs validate: built now, at the handler's import, so that its cold start and
    not its first run pays for them."""
    for model in models:
        model.model_rebuild()
    runner = StepRunner(step, logic, on_rejected=on_rejected)

    def run(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return runner(event)

    traced = tracer()
    if traced is not None:
        run = traced.capture_lambda_handler(run, capture_response=False)

    @invocation_keys
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return run(event, context)

    handler.runner = runner  # type: ignore[attr-defined]
    return handler
