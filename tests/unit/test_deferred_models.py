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


# Threads validating the deferred models at once, in a fresh interpreter where none is built yet: the local
# runtime runs handlers in threads, and a model built on first use is built while the others wait
# (pydantic's rebuild lock), never validated meanwhile by its parent's validator (BusEvent's).
CONCURRENT_PROBE = """
import sys, threading
sys.setswitchinterval(1e-6)
from schemas.config import DbUsers
from schemas.events import RequestRejected, RestoreRequested
REJECTED = {"operation_id": None, "step": "snapshot_check", "request": "RestoreRequested", "reason": "no id",
            "received": "{}", "received_chars": 2, "rejected_at": "2026-12-07T00:00:00+00:00"}
USERS = {"users": [{"username": "app", "privileges": ["SELECT"], "password_secret_id": "app-secret"}]}
errors, start = [], threading.Barrier(16)
def first_use():
    start.wait()
    try:
        assert type(RequestRejected.model_validate(REJECTED)) is RequestRejected
        requested = RestoreRequested.model_validate({"operation_id": "op-1", "target_date": "2026-12-06"})
        assert type(requested) is RestoreRequested and str(requested.target_date) == "2026-12-06"
        assert DbUsers.model_validate(USERS).users[0].username == "app"
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=first_use) for _ in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(len(errors), errors[:1])
"""


def test_threads_using_the_deferred_models_first_all_get_them_built() -> None:
    # Given a fresh interpreter, where no deferred model is built yet
    # When 16 threads validate them at the same moment
    result = subprocess.run(
        [sys.executable, "-c", CONCURRENT_PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120
    )

    # Then each thread validated with the model's own validator, none failed
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0 []"
