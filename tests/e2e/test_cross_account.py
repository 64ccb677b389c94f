"""A refresh from a source cluster in another account, on the two-account local runtime."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest

from aurora_restore.local.faults import PLUMBING_ACCESS_KEY
from aurora_restore.local.runtime import TARGET_CLUSTER, LocalRuntime
from aurora_restore.local.source_account import SourceAccountSeeder, source_backend
from aurora_restore.local.world import snapshot_name
from functions.sequence import RUNBOOK
from schemas.common import Step

pytestmark = pytest.mark.e2e

SOURCE_ACCOUNT = "111111111111"


def test_put_events_refreshes_from_the_source_account(start_runtime: Callable[..., LocalRuntime]) -> None:
    # Given the local runtime with the source cluster and its snapshots in account 111111111111
    runtime = start_runtime(source_account=SOURCE_ACCOUNT)
    source = source_backend(SOURCE_ACCOUNT, runtime.options.source_region)
    name = snapshot_name(date.today())
    assert name in source.cluster_snapshots
    assert runtime.client("rds", runtime.options.source_region).describe_db_clusters()["DBClusters"] == []

    # When a refresh is started with one put-events
    runtime.put_restore_requested("e2e-cross-account", date.today())
    state = runtime.wait_for("e2e-cross-account", timeout=90)

    # Then it completes through every step, from the source account's snapshot
    assert state is not None and state.status == "completed", state and (state.error, state.history[-3:])
    assert [entry.step for entry in state.history if entry.outcome == "success"] == [
        step.value for step in RUNBOOK
    ]
    arn = f"arn:aws:rds:{runtime.options.source_region}:{SOURCE_ACCOUNT}:cluster-snapshot:{name}"
    assert state.outputs["snapshot_arn"] == arn
    assert state.config["source_account_id"] == SOURCE_ACCOUNT
    # And the snapshot was shared with the target account for the copy only: cleanup stopped sharing it
    assert state.outputs["source_shared_with"] == "123456789012"
    assert list(source.cluster_snapshots[name].attributes["restore"]) == []
    # And the copy, in the target account, was re-encrypted under the target's key
    assert state.outputs["snapshot_encrypted"] is True
    restored = runtime.client("rds").describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]
    assert restored["Status"] == "available"


def test_an_aws_rds_encrypted_source_snapshot_is_refused_before_anything_changes(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given the two-account runtime, and a snapshot of ten days ago under the source account's aws/rds key
    runtime = start_runtime(source_account=SOURCE_ACCOUNT)
    day = date.today() - timedelta(days=10)
    seeder = SourceAccountSeeder(runtime.client, runtime.names, SOURCE_ACCOUNT, runtime.moto.url)
    name = seeder.aws_managed_snapshot(day)
    rds = runtime.client("rds")
    before = rds.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]

    # When a refresh of that day is started with put-events
    runtime.put_restore_requested("e2e-aws-rds-key", day)
    state = runtime.wait_for("e2e-aws-rds-key", timeout=60)

    # Then snapshot_check refuses it, saying what to do
    assert state is not None and state.status == "failed"
    assert state.history[0].step == Step.SNAPSHOT_CHECK.value and state.history[0].outcome == "failed"
    assert "aws/rds" in state.error.message and "customer managed key" in state.error.message
    # And nothing changed: no copy, the snapshot not shared, the target untouched, the lease free
    # (the failure notice may or may not have gone out by now: it is the one step allowed to succeed)
    done = {entry.step for entry in state.history if entry.outcome == "success"}
    assert done <= {Step.NOTIFY_COMPLETION.value}
    assert not [
        s
        for s in rds.describe_db_cluster_snapshots()["DBClusterSnapshots"]
        if s["DBClusterSnapshotIdentifier"].endswith("-copy")
    ]
    assert (
        list(
            source_backend(SOURCE_ACCOUNT, runtime.options.source_region)
            .cluster_snapshots[name]
            .attributes["restore"]
        )
        == []
    )
    after = rds.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]
    assert (after["DBClusterArn"], after["Status"]) == (before["DBClusterArn"], "available")
    made = runtime.moto.app.rds_calls.tally(
        [TARGET_CLUSTER, f"{name}-copy", name], exclude_key=PLUMBING_ACCESS_KEY
    )
    assert made == {}  # no RDS change by the functions, in either account
