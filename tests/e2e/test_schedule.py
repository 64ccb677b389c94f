"""The refresh schedule on the local runtime: a firing starts a refresh of the newest snapshot; a firing
during it is refused by the lease, with its notice, and never becomes a second refresh."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from aurora_restore import chaos
from aurora_restore.local import refresh
from aurora_restore.local.runtime import TARGET_CLUSTER, LocalRuntime
from aurora_restore.local.world import SOURCE_CLUSTER
from schemas.schedule import RefreshSchedule

pytestmark = pytest.mark.e2e


def newest_source_snapshot(runtime: LocalRuntime) -> str:
    """The source cluster's newest available snapshot, automated or manual: moto's automated one from when the
    world was seeded, or the dated one of today (created at 03:00 UTC), whichever is newer."""
    rds = runtime.client("rds", runtime.options.source_region)
    listed = rds.describe_db_cluster_snapshots(DBClusterIdentifier=SOURCE_CLUSTER)["DBClusterSnapshots"]
    available = [snapshot for snapshot in listed if snapshot["Status"] == "available"]
    return str(
        max(available, key=lambda snapshot: snapshot["SnapshotCreateTime"])["DBClusterSnapshotIdentifier"]
    )


def notices_about(runtime: LocalRuntime, operation_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    """The notices about one operation, once there is one (or the timeout ran out)."""
    deadline = time.monotonic() + timeout
    while True:
        bodies = [json.loads(body) for body in chaos.queue_messages(runtime, "dev-notifications")]
        found = [body for body in bodies if body.get("operation_id") == operation_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_firing_refreshes_from_the_newest_snapshot_and_a_firing_during_it_is_refused(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given the local runtime with the stack's refresh schedule
    runtime = start_runtime(log_path=None)
    refresh.create(runtime, RefreshSchedule(expression="cron(0 3 ? * MON-FRI *)", timezone="Europe/Berlin"))
    newest = newest_source_snapshot(runtime)

    # When the schedule fires
    first = refresh.fire(runtime)
    running = runtime.wait_for_step(first, "snapshot_check", timeout=30)

    # Then a refresh of the newest snapshot is under way, under the firing's own operation id, its day the
    # snapshot's
    assert first.startswith("scheduled-") and first != "scheduled-<aws.scheduler.execution-id>"
    assert running.latest_snapshot and running.target_date == date.today()
    assert running.outputs["snapshot_name"] == newest

    # When it fires again while that refresh runs
    second = refresh.fire(runtime)
    refused = runtime.wait_for(second, timeout=30)

    # Then the second firing ends with the lease refusal, naming the running refresh, and a notice
    assert second != first
    assert refused is not None and (refused.status, refused.failed_step) == ("failed", "snapshot_check")
    assert refused.error is not None and refused.error.type == "LeaseHeld" and first in refused.error.message
    (notice,) = notices_about(runtime, second)
    assert notice["outcome"] == "failed" and notice["error"]["type"] == "LeaseHeld"
    # And the first refresh completes, the only one: one deletion, one restore of the target
    done = runtime.wait_for(first, timeout=120)
    assert done is not None and done.status == "completed", done
    assert done.target_date == date.today()
    # And its notice names the day and the snapshot it restored
    (completed,) = [n for n in notices_about(runtime, first) if n["outcome"] == "completed"]
    assert (completed["target_date"], completed["source_snapshot"]) == (date.today().isoformat(), newest)
    calls = runtime.simulator.mutating_calls()  # type: ignore[union-attr]
    assert calls["RestoreDBClusterFromSnapshot"] == 1 and calls["DeleteDBCluster"] == 1
    assert runtime.client("rds").describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"]
