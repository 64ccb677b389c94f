"""The unit tier's guard: a unit test that connects or binds a socket, or imports moto, fails.

Unit tests need neither AWS, moto, PostgreSQL nor the network (tests/unit/fakes.py and tests/fakes stand in);
a test that needs them belongs in tests/integration. The fixtures that start moto or PostgreSQL live in
tests/integration/conftest.py, out of this tier's reach.
"""

from __future__ import annotations

import importlib.abc
import socket
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import pytest

FORBIDDEN_MODULES = ("moto",)


class TierViolation(AssertionError):
    """A unit test reached for something only the integration tier may use."""


def _refuse_socket(self: socket.socket, address: Any, *args: Any) -> None:
    raise TierViolation(f"a unit test used a socket ({address!r}): move it to tests/integration")


class _RefuseImports(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> None:
        if fullname.partition(".")[0] in FORBIDDEN_MODULES:
            raise TierViolation(f"a unit test imported {fullname}: move it to tests/integration")


@pytest.fixture(autouse=True)
def unit_tier_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    for method in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, method, _refuse_socket)
    monkeypatch.setattr(sys, "meta_path", [_RefuseImports(), *sys.meta_path])


# -- the engine's surroundings (tests/unit/test_engine_runner.py, test_rejections.py) -----------------------
@pytest.fixture(autouse=True)
def no_step_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """No unit test writes the per-step S3 record (it would need a socket)."""
    from fakes.engine import NoStepLog

    from functions.engine import records

    monkeypatch.setattr(records, "StepLog", NoStepLog)


@pytest.fixture
def store() -> Any:
    from fakes.memory_store import MemoryStateStore

    return MemoryStateStore()


@pytest.fixture
def bus() -> Any:
    from fakes.engine import Bus

    return Bus()
