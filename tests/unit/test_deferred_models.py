"""The models built on first use (defer_build) are built at import by the handlers whose runs use them, and
by no other: their cold start pays for them, the others' does not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from functions.routes import FUNCTIONS
from schemas import export

ROOT = Path(__file__).resolve().parents[2]
USERS = {"DbUser", "DbUsers"}
# The deferred models each handler's runs validate: the users (read by the steps that check, set up or
# verify them) and the RestoreRequested that starts an operation at snapshot_check.
BUILT_AT_IMPORT: dict[str, set[str]] = {
    "snapshot_check": USERS | {"RestoreRequested"},
    "setup_db_users": USERS,
    "verify_restore": USERS,
}
PROBE = """
import json, sys
import functions.{module}
from schemas import config, events
models = [getattr(config, name, None) or getattr(events, name) for name in {names!r}]
print(json.dumps(sorted(model.__name__ for model in models if model.__pydantic_complete__)))
"""


def _deferred() -> list[type[BaseModel]]:
    """Every exported model whose config defers its build."""
    return [model for model in export.MODELS if model.model_config.get("defer_build")]


def test_the_users_and_the_rare_events_are_deferred() -> None:
    # the models most handlers never validate are the deferred ones
    assert {model.__name__ for model in _deferred()} == USERS | {"RestoreRequested", "RequestRejected"}


@pytest.mark.parametrize("module", FUNCTIONS)
def test_a_handler_builds_the_deferred_models_its_runs_use_and_no_other(module: str) -> None:
    # Given a fresh interpreter
    names = sorted(model.__name__ for model in _deferred())

    # When it imports the handler module, as Lambda does at cold start
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, names=names)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )

    # Then exactly the deferred models this handler's runs validate are built
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout.strip().splitlines()[-1])) == BUILT_AT_IMPORT.get(module, set())
