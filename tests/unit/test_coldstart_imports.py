"""No handler imports boto3 (or s3transfer, which boto3 drags in): botocore alone makes our clients, and
boto3 would only add import time to every cold start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from functions.routes import FUNCTIONS

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
