"""Cold start: each handler module imported in a fresh interpreter, and the deployment artifact's size."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from functions.routes import FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "build" / "lambda" / "aurora-restore-lambda.zip"
_PROBE = (
    "import time; began = time.perf_counter(); import functions.{module}; "
    "print((time.perf_counter() - began) * 1000)"
)


# What the deployed functions have in their environment that changes import work (infra/function.py):
# pydantic skips its plugin discovery, an entry-point scan of every installed distribution.
DEPLOYED_ENVIRONMENT = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}


def import_ms(module: str) -> float:
    """Milliseconds to import functions.<module> in a fresh interpreter, in the deployed functions'
    environment (DEPLOYED_ENVIRONMENT), since that is the cold start the probe stands for."""
    answer = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, **DEPLOYED_ENVIRONMENT},
    )
    return float(answer.stdout.strip().splitlines()[-1])


def measure_cold_start(repeats: int) -> dict[str, Any]:
    """The best of `repeats` fresh imports per module (the machine is shared, so the best is the signal)."""
    modules = {name: round(min(import_ms(name) for _ in range(repeats)), 1) for name in FUNCTIONS}
    slowest = max(modules, key=modules.__getitem__)
    artifact: dict[str, Any] = {"path": str(ARTIFACT.relative_to(ROOT)), "bytes": None, "mb": None}
    if ARTIFACT.exists():
        size = ARTIFACT.stat().st_size
        artifact.update(bytes=size, mb=round(size / 1_000_000, 2))
    else:
        artifact["note"] = "not built: run `make package` (python -m infra.package) first"
    return {
        "import_ms": modules,
        "max_import_ms": modules[slowest],
        "slowest_module": f"functions.{slowest}",
        "repeats": repeats,
        "artifact": artifact,
    }
