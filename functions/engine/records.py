"""The per-step JSON record in S3 (`<log_prefix>/<operation_id>/NN-<step>.json`), written after the commit."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from functions import sequence
from functions.engine.triggers import Trigger
from functions.errors import StepError
from functions.notify import StepLog
from functions.observability import logger
from schemas.common import Step, utcnow
from schemas.config import RestoreConfig
from schemas.state import OperationState


def write_record(
    step: Step,
    state: OperationState,
    response: dict[str, Any],
    trigger: Trigger,
    config: RestoreConfig | None = None,
) -> None:
    """Best effort: a refused write is logged and changes nothing else (the step is done). `config`: the
    run's resolved configuration; else the operation's recorded one (none recorded: no record)."""
    if config is None:
        config = _recorded_config(state)
    if config is None:
        return
    if config.delete_logs and state.status == "completed":
        return
    record = {
        "operation_id": state.operation_id,
        "step": step.value,
        "trigger": trigger.label,
        "status": state.status,
        "response": response,
        "recorded_at": utcnow().isoformat(),
    }
    index = sequence.position(step, config)
    try:
        StepLog(config.log_bucket, config.log_prefix, config.target_region).write(
            state.operation_id, f"{index:02d}-{step.value}", record
        )
    except StepError as exc:
        logger.warning("could not write the step record", extra={"error": exc.message})


def _recorded_config(state: OperationState) -> RestoreConfig | None:
    if not state.config:
        return None
    try:
        return RestoreConfig.model_validate(state.config)
    except ValidationError:
        logger.warning("could not write the step record: the recorded configuration is invalid")
        return None
