"""target_date `latest`: the newest available snapshot of the source cluster, and the day it names."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from functions.errors import NotFound
from schemas.rds_event_ids import COPY_SUFFIX

if TYPE_CHECKING:
    from functions.rds import RdsAdapter


def newest_snapshot(rds: RdsAdapter, cluster_id: str, region: str) -> dict[str, Any]:
    """The source cluster's newest `available` cluster snapshot, automated or manual (what
    DescribeDBClusterSnapshots lists for the cluster without SnapshotType), by SnapshotCreateTime.

    snapshot_name_pattern is not used: it names one day's snapshot, and `latest` asks for whatever is
    newest. A copy this tool made (`*-copy`, in the source region when both regions are one) is never
    counted: restoring from a copy would copy it again."""
    candidates = [
        snapshot
        for snapshot in rds.snapshots_of_cluster(cluster_id)
        if snapshot.get("Status") == "available"
        and isinstance(snapshot.get("SnapshotCreateTime"), datetime)
        and not str(snapshot.get("DBClusterSnapshotIdentifier", "")).endswith(COPY_SUFFIX)
    ]
    if not candidates:
        raise NotFound(f"no available snapshot of {cluster_id} in {region} (target_date latest)")
    return max(candidates, key=lambda snapshot: _created(snapshot))


def snapshot_day(snapshot: dict[str, Any]) -> date:
    """The day (UTC) the snapshot was created: the operation's target_date from then on."""
    return _created(snapshot).date()


def _created(snapshot: dict[str, Any]) -> datetime:
    created: datetime = snapshot["SnapshotCreateTime"]
    return created.astimezone(UTC) if created.tzinfo else created.replace(tzinfo=UTC)
