"""`make package` (python -m infra.package): the Lambda artifact holds our handlers and nothing of ours else.

Builds once per session (the dependencies are cached under build/lambda/). Needs PyPI: set
AURORA_RESTORE_SKIP_PACKAGE=1 to skip it on a machine that cannot reach it.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from build_lock import build_lock

from functions.routes import FUNCTIONS
from infra.package import (
    ARTIFACT,
    DIRECT_UPLOAD_MAX_BYTES,
    MANIFEST,
    ROOT,
    find_interpreter,
    refuse_oversize,
    runtime_requirements,
)
from schemas.events import BUS_EVENTS

pytestmark = [
    pytest.mark.infra,
    pytest.mark.skipif(
        os.environ.get("AURORA_RESTORE_SKIP_PACKAGE") == "1",
        reason="AURORA_RESTORE_SKIP_PACKAGE=1: packaging needs PyPI",
    ),
]

# Nothing from the tests, the operator tooling, the Pulumi program or the dev tools may ship.
FORBIDDEN_TOP_LEVEL = {
    "aurora_restore",
    "tests",
    "infra",
    "pytest",
    "_pytest",
    "moto",
    "hypothesis",
    "pulumi",
    "pulumi_aws",
    "ruff",
    "mypy",
    "awscli",
    "boto3",
    "s3transfer",
}


@pytest.fixture(scope="session")
def artifact() -> zipfile.ZipFile:
    # Given the project, When `make package` runs (the Makefile's recipe is this command)
    with build_lock():  # the bench smoke test reads what this writes
        finished = subprocess.run(
            [sys.executable, "-m", "infra.package"], cwd=ROOT, capture_output=True, text=True, timeout=600
        )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "artifact:" in finished.stdout and "MiB" in finished.stdout  # progress and size
    return zipfile.ZipFile(ARTIFACT)


def top_level(names: list[str]) -> set[str]:
    return {name.split("/")[0].removesuffix(".py") for name in names}


def test_the_artifact_holds_every_handler_module(artifact: zipfile.ZipFile) -> None:
    names = set(artifact.namelist())
    for function in FUNCTIONS:
        assert f"functions/{function}.py" in names, function
    for module in (
        "functions/__init__.py",
        "functions/handler.py",
        "functions/engine/runner.py",
        "functions/engine/contract.py",
        "schemas/__init__.py",
    ):
        assert module in names
    # the packages the handlers import, module by module (the database adapter is one)
    database_modules = sorted((ROOT / "functions" / "database").glob("*.py"))
    assert database_modules
    for module_path in database_modules:
        assert module_path.relative_to(ROOT).as_posix() in names
    for model in BUS_EVENTS:
        assert f"schemas/jsonschema/{model.detail_type}.json" in names


def test_the_artifact_has_the_runtime_dependencies_for_the_lambda_platform(artifact: zipfile.ZipFile) -> None:
    names = artifact.namelist()
    packages = top_level(names)
    assert {"psycopg2", "pydantic", "pydantic_core", "aws_lambda_powertools"} <= packages
    native = [name for name in names if name.startswith("psycopg2/_psycopg") and name.endswith(".so")]
    assert native and all("aarch64" in name and "cpython-312" in name for name in native), native
    manifest = json.loads(MANIFEST.read_text())
    assert manifest["architecture"] == "arm64"
    assert manifest["python_version"] == "3.12"


def test_the_artifact_has_no_test_tooling_or_infra_packages(artifact: zipfile.ZipFile) -> None:
    names = artifact.namelist()
    assert not top_level(names) & FORBIDDEN_TOP_LEVEL
    assert not [name for name in names if name.startswith(("functions/tests", "schemas/tests"))]


def test_the_artifact_ships_bytecode_for_the_runtime_python_when_this_machine_has_it(
    artifact: zipfile.ZipFile,
) -> None:
    names = set(artifact.namelist())
    compiled = {name for name in names if name.endswith(".pyc")}
    tag = json.loads(MANIFEST.read_text())["bytecode"]
    if find_interpreter("3.12") is None:
        # Then, with no Python 3.12 to compile with, sources only, and the manifest says so
        assert tag is None and not compiled
        return
    # Then every module of ours has its Python 3.12 bytecode beside it, and no other Python's
    assert tag == "cpython-312"
    assert all(
        name.endswith(".cpython-312.pyc") and name.split("/")[-2] == "__pycache__" for name in compiled
    )
    for name in names:
        if name.startswith(("functions/", "schemas/")) and name.endswith(".py"):
            directory, _, module = name.rpartition("/")
            assert f"{directory}/__pycache__/{module[:-3]}.cpython-312.pyc" in compiled, name
    assert "pydantic/__pycache__/main.cpython-312.pyc" in compiled


def test_botocore_ships_and_boto3_does_not() -> None:
    requirements = runtime_requirements()
    assert not [item for item in requirements if item.startswith("boto3")]
    assert any(item.startswith("botocore") for item in requirements)
    assert any(item.startswith("psycopg2-binary") for item in requirements)


def test_the_artifacts_botocore_schedules_wake_ups_that_delete_themselves(artifact: zipfile.ZipFile) -> None:
    # Given the artifact, which ships its own botocore (Lambda imports /var/task's before the runtime's)
    (model,) = [
        name
        for name in artifact.namelist()
        if name.startswith("botocore/data/scheduler/") and name.endswith("/service-2.json.gz")
    ]
    shapes = json.loads(gzip.decompress(artifact.read(model)))["shapes"]
    # Then its Scheduler model takes the ActionAfterCompletion every wake-up is created with
    assert "ActionAfterCompletion" in shapes["CreateScheduleInput"]["members"]


def test_the_artifact_is_where_the_pulumi_program_looks(artifact: zipfile.ZipFile) -> None:
    assert Path(artifact.filename or "") == ARTIFACT
    assert ARTIFACT == ROOT / "build" / "lambda" / "aurora-restore-lambda.zip"


def test_the_artifact_fits_what_lambda_takes_uploaded_directly(artifact: zipfile.ZipFile) -> None:
    assert ARTIFACT.stat().st_size <= DIRECT_UPLOAD_MAX_BYTES
    refuse_oversize(ARTIFACT, DIRECT_UPLOAD_MAX_BYTES)
    with pytest.raises(SystemExit, match="over the 50 MiB Lambda takes uploaded directly"):
        refuse_oversize(ARTIFACT, DIRECT_UPLOAD_MAX_BYTES + 1)
