"""No handler imports boto3 (or s3transfer, which boto3 drags in): botocore alone makes our clients, and
boto3 would only add import time to every cold start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from functions.routes import FUNCTIONS, build_routes

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("boto3", "s3transfer")
PROBE = "import json, sys; import functions.{module}; print(json.dumps({{n: n in sys.modules for n in {heavy!r}}}))"


@pytest.mark.parametrize("module", FUNCTIONS)
def test_a_fresh_import_of_the_handler_leaves_boto3_out(module: str) -> None:
    # Given a fresh interpreter (nothing imported beforehand that the handler would not import itself)
    # When it imports the handler module, as Lambda does at cold start
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, heavy=HEAVY)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )

    # Then the import worked and neither boto3 nor s3transfer came along
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == dict.fromkeys(HEAVY, False)


def _receives_rds_events(module: str) -> bool:
    return any(
        route.function == module and route.pattern.get("source") == ["aws.rds"] for route in build_routes()
    )


RDS_FREE = [module for module in FUNCTIONS if not _receives_rds_events(module)]


def test_the_route_table_sends_rds_events_to_some_handlers_only() -> None:
    # the waits receive RDS events and the others do not: the parametrized test below checks the others
    assert RDS_FREE and len(RDS_FREE) < len(FUNCTIONS)


@pytest.mark.parametrize("module", RDS_FREE)
def test_a_handler_no_rule_sends_rds_events_leaves_their_models_out(module: str) -> None:
    # Given a handler no rule of the route table sends an RDS event to (only the waits receive them)
    probe = "import sys; import functions.{module}; print('schemas.rds_events' in sys.modules)"

    # When a fresh interpreter imports it
    result = subprocess.run(
        [sys.executable, "-c", probe.format(module=module)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )

    # Then the RDS event models (and Powertools' EventBridgeModel) were not built at its cold start
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
