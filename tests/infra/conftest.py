"""Fixtures of the infra tests: the program under mocks, once per stack file per session."""

from __future__ import annotations

import pytest
from pulumi_harness import ROOT, SECRET_DB_USERS, ProgramRun, run_program, stack_config


@pytest.fixture(scope="session")
def dev() -> ProgramRun:
    """The dev stack file, with literal passwords given as the dbUsers secret."""
    config, secret_keys = stack_config(ROOT / "Pulumi.dev.yaml", SECRET_DB_USERS)
    return run_program("dev", config, secret_keys)


@pytest.fixture(scope="session")
def staging() -> ProgramRun:
    """The documented second environment as its example file stands (plus the dbUsers secret)."""
    config, secret_keys = stack_config(ROOT / "Pulumi.staging.yaml.example", SECRET_DB_USERS)
    return run_program("staging", config, secret_keys)
