"""The one Logger, Metrics and Tracer of every function."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "aurora-restore"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="AuroraRestore", service=SERVICE)
# Tracing is off unless POWERTOOLS_TRACE_DISABLED=false and the X-Ray SDK is packaged.
tracer = Tracer(service=SERVICE)
