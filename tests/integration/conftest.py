"""Integration fixtures: moto in-process with the runbook's world, and a real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any

import pytest

from integration.world import (
    RDS_MUTATIONS,
    SEED_SQL,
    TARGET_REGION,
    RdsCalls,
    World,
    create_world,
    reset_function_caches,
)


# -- speed ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def shared_botocore_loader() -> Iterator[None]:
    """One botocore data loader for every session the tests create.

    Each botocore session (functions.aws makes one per reset, the tests' boto3 clients one each) re-reads
    botocore's JSON models. In Lambda that happens once per cold start; here every test starts cold, so
    sharing the loader (read-only model data) keeps the suite fast without changing behaviour.
    """
    import botocore.loaders
    import botocore.session

    original = botocore.session.create_loader
    loaders: dict[Any, Any] = {}

    def shared(search_path_string: Any = None) -> Any:
        if search_path_string not in loaders:
            loaders[search_path_string] = original(search_path_string)
        return loaders[search_path_string]

    botocore.session.create_loader = shared
    try:
        yield
    finally:
        botocore.session.create_loader = original


# -- AWS (moto) ------------------------------------------------------------------------------------------
@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and the dev environment's variables; nothing from the caller's shell leaks in."""
    for name in list(os.environ):
        if name.startswith(("AURORA_RESTORE_", "AWS_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", TARGET_REGION)
    monkeypatch.setenv("AURORA_RESTORE_ENV", "dev")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "AuroraRestore")


@pytest.fixture
def mocked_aws(aws_env: None, shared_botocore_loader: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        reset_function_caches()
        yield
    reset_function_caches()


@pytest.fixture
def rds_calls(monkeypatch: pytest.MonkeyPatch) -> RdsCalls:
    from moto.rds.models import RDSBackend

    recorder = RdsCalls()
    depth = {"now": 0}

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(original)
        def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
            # Only the API call itself: moto's backend calls itself (restore -> create_db_cluster).
            if depth["now"] == 0:
                first = args[0] if args else next(iter(kwargs.values()), "")
                ident = first.get("db_cluster_identifier", "") if isinstance(first, dict) else first
                recorder.calls.append((name, self.region_name, str(ident)))
            depth["now"] += 1
            try:
                return original(self, *args, **kwargs)
            finally:
                depth["now"] -= 1

        return recording

    for name in RDS_MUTATIONS:
        monkeypatch.setattr(RDSBackend, name, wrap(name, getattr(RDSBackend, name)))
    return recorder


# -- PostgreSQL -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """One real server per session, with the seed schema in the database `restore_template`."""
    from aurora_restore.local.postgres import PostgresServer

    server = PostgresServer().start()
    try:
        conn = server.connect()
        with conn.cursor() as cursor:
            cursor.execute("CREATE DATABASE restore_template")
        conn.close()
        seeded = server.connect("restore_template")
        with seeded.cursor() as cursor:
            cursor.execute(SEED_SQL.read_text())
        seeded.close()
        yield server
    finally:
        server.stop()


@pytest.fixture
def database(postgres: Any) -> Iterator[str]:
    """A fresh copy of the seeded database for one test; every role a test made is dropped after it."""
    name = f"restored_{uuid.uuid4().hex[:10]}"
    admin = postgres.connect()
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE restore_template')
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> 'postgres'")
            for (role,) in cursor.fetchall():
                # With its privileges: those on shared objects (a parameter's SET) outlive the database.
                cursor.execute(f'DROP OWNED BY "{role}"')
                cursor.execute(f'DROP ROLE "{role}"')
        admin.close()


@pytest.fixture
def world_config() -> dict[str, Any]:
    """Extra configuration values for the SSM config parameter (override in a module or test)."""
    return {}


@pytest.fixture
def world(
    mocked_aws: None,
    rds_calls: RdsCalls,
    postgres: Any,
    database: str,
    world_config: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    """The runbook's world: SSM values, secret, SNS/SQS, bucket, state table, bus, source and target."""
    monkeypatch.setenv("AURORA_RESTORE_PG_DSN", f"host={postgres.host} port={postgres.port}")
    return create_world(world_config, database, postgres.password.get_secret_value(), rds_calls)
