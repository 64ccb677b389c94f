"""The local runtime's DSN (as `local serve --env-file` exports it) follows the target's name through a swap
of clusters by renames: it reaches the data of whichever cluster holds that name."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from aurora_restore.local.runtime import TARGET_CLUSTER, LocalRuntime
from functions.database.connection import EndpointOverride

pytestmark = pytest.mark.e2e

RESTORED = "target-restored"
OLD = "target-old"


def _owner(runtime: LocalRuntime, dbname: str) -> str:
    assert runtime.postgres is not None
    conn = runtime.postgres.connect(dbname)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT owner FROM public.whose")
            return str(cursor.fetchone()[0])
    finally:
        conn.close()


def _mark(runtime: LocalRuntime, cluster_id: str, owner: str) -> None:
    assert runtime.postgres is not None
    conn = runtime.postgres.connect(runtime.database_for(cluster_id))
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE public.whose (owner text)")
        cursor.execute("INSERT INTO public.whose VALUES (%s)", (owner,))
    conn.close()


def _until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def _status(rds: Any, cluster_id: str) -> str:
    return str(rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]["Status"])


def test_the_exported_dsn_follows_the_targets_name_through_a_swap(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given the runtime's target with data of its own, and a cluster restored beside it with other data
    runtime = start_runtime()
    assert runtime.simulator is not None and runtime.simulator.stand_in is not None
    runtime.simulator.stand_in.load(TARGET_CLUSTER)
    _mark(runtime, TARGET_CLUSTER, "old")
    rds = runtime.client("rds")
    rds.create_db_cluster_snapshot(
        DBClusterIdentifier=TARGET_CLUSTER, DBClusterSnapshotIdentifier="swap-snap"
    )
    rds.restore_db_cluster_from_snapshot(
        DBClusterIdentifier=RESTORED, SnapshotIdentifier="swap-snap", Engine="aurora-postgresql"
    )
    _until(lambda: _status(rds, RESTORED) == "available")
    _mark(runtime, RESTORED, "new")
    dsn = runtime.environment()["AURORA_RESTORE_PG_DSN"]
    dbname = dict(item.split("=", 1) for item in dsn.split())["dbname"]
    assert EndpointOverride.parse(dsn).port == runtime.postgres.port  # type: ignore[union-attr]
    assert _owner(runtime, dbname) == "old"

    # When the old target is renamed away and the restored cluster into the target's name
    rds.modify_db_cluster(
        DBClusterIdentifier=TARGET_CLUSTER, NewDBClusterIdentifier=OLD, ApplyImmediately=True
    )
    rds.modify_db_cluster(
        DBClusterIdentifier=RESTORED, NewDBClusterIdentifier=TARGET_CLUSTER, ApplyImmediately=True
    )
    _until(lambda: _status(rds, TARGET_CLUSTER) == "available" and _status(rds, OLD) == "available")

    # Then the same DSN reaches the restored data, and the old target's data is behind its new name
    assert runtime.environment()["AURORA_RESTORE_PG_DSN"] == dsn
    assert _owner(runtime, dbname) == "new"
    assert _owner(runtime, runtime.database_for(OLD)) == "old"
