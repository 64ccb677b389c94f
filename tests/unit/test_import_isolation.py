"""Handlers that do not touch the database never import psycopg2 (it stays out of their cold start)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATABASE_STEPS = ("mask_data", "setup_db_users", "verify_restore")
OTHER_HANDLERS = (
    "snapshot_check",
    "copy_snapshot",
    "check_copy_status",
    "delete_rds",
    "restore_snapshot",
    "check_restore_status",
    "notify_completion",
    "cleanup",
    "reconcile",
)


# A fresh interpreter preloads the heavy third-party libraries (never psycopg2, checked), then forks one
# child per module: the child imports functions.<module> and reports whether psycopg2 came along.
PROBE = """
import json, os, sys
import boto3, botocore.session, pydantic
import aws_lambda_powertools, aws_lambda_powertools.utilities.parameters, aws_lambda_powertools.utilities.parser
assert "psycopg2" not in sys.modules and not any(name.startswith("functions") for name in sys.modules)
found = {}
for name in sys.argv[1:]:
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read)
        __import__(f"functions.{name}")
        os.write(write, b"1" if "psycopg2" in sys.modules else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    _, status = os.waitpid(child, 0)
    found[name] = None if status != 0 or not answer else answer == b"1"
print(json.dumps(found))
"""


def imports_psycopg2(modules: tuple[str, ...]) -> dict[str, bool | None]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_only_the_database_steps_import_psycopg2() -> None:
    # Given every handler module, each imported in a fresh interpreter
    # When we look for psycopg2 in sys.modules after the import
    found = imports_psycopg2(OTHER_HANDLERS + DATABASE_STEPS)

    # Then every import worked, and no handler but the two database steps pulled it in (those do: the
    # probe can see it)
    assert None not in found.values(), found
    assert {name for name, loaded in found.items() if loaded} == set(DATABASE_STEPS)
