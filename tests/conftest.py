"""Fixtures every tier may use: a Lambda context and the logs our functions write. Nothing here needs
AWS, moto or PostgreSQL (those are tests/integration/conftest.py's)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fakes.lambda_context import LambdaContext


# -- plain helpers ------------------------------------------------------------------------------------
@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


# -- logs ------------------------------------------------------------------------------------------------------------
@dataclass
class CapturedLogs:
    stream: io.StringIO
    caplog: pytest.LogCaptureFixture

    @property
    def text(self) -> str:
        """Our lines as Powertools formats them (extra keys included), then every record's message."""
        return self.stream.getvalue() + "\n" + "\n".join(self.caplog.messages)

    def lines(self) -> list[str]:
        return [line for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> Iterator[CapturedLogs]:
    """Every line our functions log (at DEBUG, formatted) plus every other logger's records at INFO."""
    from functions.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    inner = logging.getLogger(logger.name)
    previous = inner.level
    inner.addHandler(handler)
    inner.setLevel(logging.DEBUG)
    caplog.set_level(logging.INFO)
    try:
        yield CapturedLogs(stream, caplog)
    finally:
        inner.removeHandler(handler)
        inner.setLevel(previous)
