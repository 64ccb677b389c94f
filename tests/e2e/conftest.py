"""End-to-end fixtures: the embedded local runtime, started and stopped by the tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from aurora_restore.local.runtime import LocalRuntime, RuntimeOptions
from aurora_restore.local.simulator import Durations

# Short simulated AWS durations: the waits are real waits, just brief.
FAST = Durations(copy=1.5, delete_instance=0.8, delete_cluster=0.8, restore=1.2, create_instance=1.0)


@pytest.fixture
def start_runtime() -> Iterator[Callable[..., LocalRuntime]]:
    started: list[LocalRuntime] = []

    def start(**options: object) -> LocalRuntime:
        options.setdefault("durations", FAST)
        options.setdefault("recheck_interval_seconds", 0.5)
        options.setdefault("reconcile_interval_seconds", 0.25)
        runtime = LocalRuntime(RuntimeOptions(**options))  # type: ignore[arg-type]
        started.append(runtime)
        return runtime.start()

    yield start
    for runtime in started:
        runtime.stop()


@pytest.fixture
def runtime(start_runtime: Callable[..., LocalRuntime]) -> LocalRuntime:
    return start_runtime()
