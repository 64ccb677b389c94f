"""The one Logger and Tracer of every function, and how a step records its metrics (EMF)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "aurora-restore"
NAMESPACE = "AuroraRestore"

logger = Logger(service=SERVICE)
# Tracing is off unless POWERTOOLS_TRACE_DISABLED=false and the X-Ray SDK is packaged.
tracer = Tracer(service=SERVICE)


def record_metric(name: str, unit: MetricUnit, value: float, step: str) -> None:
    """One EMF record with the step as its dimension; keeps no state between invocations or threads."""
    with single_metric(
        name=name,
        unit=unit,
        value=value,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE, "step": step},
    ):
        pass
