"""The answers a step invocation gives: the runbook's direct-invocation shapes, and the metric label of each."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from functions.errors import StepError

MAX_EVENT_RESULT_CHARS = 8_000


@dataclass(frozen=True)
class Answer:
    """What the handler returns, and the outcome it is counted as (success, waiting, replayed, ...)."""

    response: dict[str, Any]
    label: str


def error_response(operation_id: str | None, exc: StepError) -> dict[str, Any]:
    """The runbook's error shape, for a refused or failed invocation."""
    return {
        "operation_id": operation_id,
        "status": "error",
        "message": exc.message,
        "error": {"type": exc.error_type, "message": exc.message, "retryable": exc.retryable},
        "next_step": None,
    }


def ignored(message: str) -> dict[str, Any]:
    return {"status": "ignored", "message": message}


def compact(value: dict[str, Any], limit: int = MAX_EVENT_RESULT_CHARS) -> dict[str, Any]:
    """Keep events and state items small: long lists are cut, with a note of how many were left out."""
    if len(json.dumps(value, default=str)) <= limit:
        return value
    compacted: dict[str, Any] = {}
    for key, inner in value.items():
        if isinstance(inner, list) and len(inner) > 20:
            compacted[key] = inner[:20]
            compacted[f"{key}_omitted"] = len(inner) - 20
        elif isinstance(inner, dict):
            compacted[key] = compact(inner, limit // 2)
        else:
            compacted[key] = inner
    return compacted
