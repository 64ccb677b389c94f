"""The one Logger and Tracer of every function, and how a step records its metrics (EMF)."""

from __future__ import annotations

import os
from functools import lru_cache

from aws_lambda_powertools import Logger, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from functions.settings import Settings

SERVICE = "aurora-restore"
NAMESPACE = "AuroraRestore"

logger = Logger(service=SERVICE)


@lru_cache(maxsize=1)
def tracer() -> Tracer | None:
    """X-Ray tracing, only when switched on (POWERTOOLS_TRACE_DISABLED=false, the X-Ray SDK packaged).

    Off by default: merely constructing a Tracer imports the X-Ray SDK, some 300 ms of cold start.
    """
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").lower() != "false":
        return None
    return Tracer(service=SERVICE)


def record_metric(name: str, unit: MetricUnit, value: float, *, step: str, settings: Settings) -> None:
    """One EMF record with environment and step as dimensions; keeps no state between invocations or threads."""
    if not settings.metrics_enabled:
        return
    dimensions = {"service": SERVICE, "environment": settings.environment, "step": step}
    with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE, default_dimensions=dimensions):
        pass
