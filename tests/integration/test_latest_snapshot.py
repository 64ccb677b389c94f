"""snapshot_check with target_date `latest` against moto: the newest available snapshot, its day recorded."""

from __future__ import annotations

import pytest

from integration.world import SNAPSHOT_NAME, SOURCE_CLUSTER, SOURCE_REGION, TARGET_DATE, World

pytestmark = pytest.mark.integration


def test_latest_finds_the_newest_available_snapshot_and_records_its_day(world: World) -> None:
    # Given the runbook's dated snapshot of 2023-06-01, and a manual snapshot of the source taken now
    rds = world.client("rds", SOURCE_REGION)
    taken = rds.create_db_cluster_snapshot(
        DBClusterIdentifier=SOURCE_CLUSTER, DBClusterSnapshotIdentifier="dev-source-cluster-before-release"
    )["DBClusterSnapshot"]

    # When snapshot_check is asked for the latest snapshot
    response = world.invoke("snapshot_check", {"operation_id": "dev-refresh-latest", "target_date": "latest"})

    # Then it found the newest one, and the operation's day is that snapshot's, not 2023-06-01
    assert response["status"] == "success", response
    assert response["snapshot_name"] == "dev-source-cluster-before-release" != SNAPSHOT_NAME
    state = world.state("dev-refresh-latest")
    assert state is not None and state["latest_snapshot"] is True
    assert state["target_date"] == taken["SnapshotCreateTime"].date().isoformat() != TARGET_DATE
    assert state["outputs"]["snapshot_name"] == "dev-source-cluster-before-release"
    # And the choreography goes on to copy it
    completed = world.published_of("StepCompleted")
    assert [(event["step"], event["next_step"]) for event in completed] == [
        ("snapshot_check", "copy_snapshot")
    ]


def test_latest_with_no_available_snapshot_fails_naming_the_cluster(world: World) -> None:
    # Given no snapshot of the source cluster at all
    rds = world.client("rds", SOURCE_REGION)
    for listed in rds.describe_db_cluster_snapshots(DBClusterIdentifier=SOURCE_CLUSTER)["DBClusterSnapshots"]:
        rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=listed["DBClusterSnapshotIdentifier"])
    world.rds_calls.clear()  # what the test did: snapshot_check's own calls are counted from here

    # When snapshot_check is asked for the latest snapshot
    response = world.invoke("snapshot_check", {"operation_id": "dev-refresh-none", "target_date": "latest"})

    # Then it fails before anything changes, saying there is none
    assert response["status"] == "error"
    assert (
        response["message"]
        == f"no available snapshot of {SOURCE_CLUSTER} in {SOURCE_REGION} (target_date latest)"
    )
    assert world.rds_calls.calls == []
