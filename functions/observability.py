"""The one Logger and Tracer of every function, and how a step records its metrics (EMF)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from functions.settings import Settings

SERVICE = "aurora-restore"
NAMESPACE = "AuroraRestore"

logger = Logger(service=SERVICE)
# Tracing is off unless POWERTOOLS_TRACE_DISABLED=false and the X-Ray SDK is packaged.
tracer = Tracer(service=SERVICE)


def record_metric(name: str, unit: MetricUnit, value: float, *, step: str, settings: Settings) -> None:
    """One EMF record with environment and step as dimensions; keeps no state between invocations or threads."""
    if not settings.metrics_enabled:
        return
    dimensions = {"service": SERVICE, "environment": settings.environment, "step": step}
    with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE, default_dimensions=dimensions):
        pass
