"""The one Logger and Tracer of every function, and how a step records its metrics (EMF)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from functions.settings import Settings

SERVICE = "aurora-restore"
NAMESPACE = "AuroraRestore"

logger = Logger(service=SERVICE)
_cold = [True]
Handler = TypeVar("Handler", bound=Callable[..., Any])


def invocation_keys(handler: Handler) -> Handler:
    """What Powertools' inject_lambda_context adds to every log line (the function, the request, cold start,
    the EventBridge event's id as correlation id), kept per thread: the local runtime runs several
    handlers at once in one process, and the shared keys inject_lambda_context sets labelled one
    invocation's lines with another's function and step. On Lambda (one invocation at a time) the lines
    are the same."""

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        logger.thread_safe_clear_keys()
        logger.thread_safe_append_keys(
            cold_start=_cold[0],
            function_name=getattr(context, "function_name", None),
            function_memory_size=getattr(context, "memory_limit_in_mb", None),
            function_arn=getattr(context, "invoked_function_arn", None),
            function_request_id=getattr(context, "aws_request_id", None),
            correlation_id=event.get("id") if isinstance(event, dict) else None,
        )
        _cold[0] = False
        return handler(event, context)

    return run  # type: ignore[return-value]


@lru_cache(maxsize=1)
def tracer() -> Tracer | None:
    """X-Ray tracing, only when switched on (POWERTOOLS_TRACE_DISABLED=false, the X-Ray SDK packaged).

    Off by default: merely constructing a Tracer imports the X-Ray SDK, some 300 ms of cold start.
    """
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").lower() != "false":
        return None
    return Tracer(service=SERVICE)


def metric_dimensions(environment: str, step: str) -> dict[str, str]:
    """The dimensions every metric of ours carries. CloudWatch keeps each combination apart, so an alarm
    or a dashboard (infra.monitoring) must name all three to see the figures."""
    return {"service": SERVICE, "environment": environment, "step": step}


def record_metric(name: str, unit: MetricUnit, value: float, *, step: str, settings: Settings) -> None:
    """One EMF record with environment and step as dimensions; keeps no state between invocations or threads."""
    if not settings.metrics_enabled:
        return
    dimensions = metric_dimensions(settings.environment, step)
    with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE, default_dimensions=dimensions):
        pass
