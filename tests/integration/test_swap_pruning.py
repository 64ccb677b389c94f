"""Under swap, cleanup's pruning finds the final snapshots of the old targets a switch renamed away."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integration.world import OPERATION_ID, TARGET_CLUSTER, TARGET_REGION, World, rds_backend


@pytest.mark.parametrize(
    "world_config", [{"strategy": "swap", "final_snapshot": True, "final_snapshots_kept": 2}]
)
def test_cleanup_under_swap_prunes_the_final_snapshots_of_renamed_old_targets(world: World) -> None:
    # Given final snapshots from earlier refreshes: two by swap (of old targets renamed `<target>-old-<hash>`
    # before their deletion) and one by replace (of the target itself), and a stranger's look-alike
    rds = world.client("rds")
    made = {
        f"{TARGET_CLUSTER}-final-swap-1": f"{TARGET_CLUSTER}-old-aaaaaa",
        f"{TARGET_CLUSTER}-final-replace-2": TARGET_CLUSTER,
        f"{TARGET_CLUSTER}-final-swap-3": f"{TARGET_CLUSTER}-old-bbbbbb",
        f"{TARGET_CLUSTER}-final-foreign": "other-cluster",
    }
    for cluster in {c for c in made.values() if c != TARGET_CLUSTER}:
        rds.create_db_cluster(
            DBClusterIdentifier=cluster,
            Engine="aurora-postgresql",
            MasterUsername="x",
            MasterUserPassword="password-1",
        )
    backend = rds_backend(TARGET_REGION)
    for day, (name, cluster) in enumerate(made.items(), start=1):
        rds.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=name)
        backend.cluster_snapshots[name].created = datetime(2026, 1, day, tzinfo=UTC)
    world.seed_operation(OPERATION_ID, "cleanup")

    # When this refresh's cleanup runs
    answer = world.run("cleanup")

    # Then the two newest final snapshots are kept, whichever cluster name they carry, the oldest deleted,
    # and the stranger's left alone
    assert answer["status"] == "success", answer
    assert answer["cleanup_results"]["final_snapshots_deleted"] == [f"{TARGET_CLUSTER}-final-swap-1"]
    left = {
        s["DBClusterSnapshotIdentifier"] for s in rds.describe_db_cluster_snapshots()["DBClusterSnapshots"]
    }
    assert f"{TARGET_CLUSTER}-final-swap-1" not in left
    assert {
        f"{TARGET_CLUSTER}-final-replace-2",
        f"{TARGET_CLUSTER}-final-swap-3",
        f"{TARGET_CLUSTER}-final-foreign",
    } <= left
