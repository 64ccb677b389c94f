"""`aurora-restore plan` against moto and the runbook's world: every check, the report, and no change."""

from __future__ import annotations

import json
from typing import Any

import pytest
from unit.test_cli_offline import run

from integration.world import (
    RUNBOOK_USERS,
    SNAPSHOT_NAME,
    STATE_TABLE,
    TARGET_CLUSTER,
    TARGET_DATE,
    TARGET_REGION,
    World,
    rds_backend,
)

pytestmark = pytest.mark.integration

NO_SNAPSHOT_DATE = "2023-05-01"
PLAN = ("plan", "--env", "dev", "--region", TARGET_REGION)


def everything(world: World) -> dict[str, Any]:
    """What a plan must leave as it was: the state table, the target cluster, the snapshots in the target
    region; and what it must not make: events on the bus, RDS changes."""
    items = world.client("dynamodb").scan(TableName=STATE_TABLE, ConsistentRead=True)["Items"]
    rds = world.client("rds")
    cluster = rds.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]
    cluster.pop("LatestRestorableTime")  # moto says "now"
    return {
        "items": sorted(json.dumps(item, sort_keys=True) for item in items),
        "cluster": json.dumps(cluster, sort_keys=True, default=str),
        "snapshots": sorted(
            s["DBClusterSnapshotIdentifier"]
            for s in rds.describe_db_cluster_snapshots()["DBClusterSnapshots"]
        ),
    }


def test_plan_names_the_snapshot_and_the_target_and_changes_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the runbook's world, with its snapshot for TARGET_DATE
    before = everything(world)
    # When the operator plans a refresh for that date
    code, out, err = run(capsys, *PLAN, "--date", TARGET_DATE)
    # Then it would start: the snapshot, its copy and the target are named
    assert code == 0, out + err
    assert f"a refresh for {TARGET_DATE} would start" in out
    assert SNAPSHOT_NAME in out and f"{SNAPSHOT_NAME}-copy" in out
    assert f"target    {TARGET_CLUSTER} in {TARGET_REGION}: deleted then restored" in out
    assert "app_user" in out and "downtime  about 33 min (an estimate" in out
    # And nothing changed: no state item, no lease, no event, no RDS change
    assert everything(world) == before
    assert world.published() == []
    assert world.rds_calls.names() == []
    # And no secret value was shown, in text or in JSON
    _, as_json, _ = run(capsys, *PLAN, "--date", TARGET_DATE, "--json")
    for secret in (world.master_password, *(user["password"] for user in RUNBOOK_USERS)):
        assert secret not in out + err + as_json


def test_a_date_without_snapshot_exits_1_with_the_reason(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    before = everything(world)
    code, out, _ = run(capsys, *PLAN, "--date", NO_SNAPSHOT_DATE)
    assert code == 1
    assert (
        f"would NOT start:\n  - snapshot: no snapshot of dev-source-cluster in us-east-1 for {NO_SNAPSHOT_DATE}"
        in out
    )
    # The checks that need the snapshot are skipped, the others made
    assert "-- instance class: needs the snapshot" in out
    assert "ok subnet group and security groups" in out
    assert everything(world) == before and world.published() == []


def test_plan_json_has_its_stable_keys(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *PLAN, "--date", TARGET_DATE, "--json")
    assert code == 0
    report = json.loads(out)
    assert set(report) >= {
        "would_start",
        "reasons",
        "snapshot",
        "copy",
        "target",
        "settings_carried",
        "users",
        "masking_rules",
        "expected_downtime_s",
        "checks",
    }
    assert report["would_start"] is True and report["reasons"] == []
    assert set(report["snapshot"]) >= {"name", "arn", "size_gb", "created"}
    assert report["snapshot"]["name"] == SNAPSHOT_NAME
    assert report["copy"] == {
        "name": f"{SNAPSHOT_NAME}-copy",
        "region": TARGET_REGION,
        "kms_key": None,
        "deleted_after_restore": True,
    }
    assert report["target"]["cluster"] == TARGET_CLUSTER
    assert report["target"]["action"] == "deleted then restored"
    assert report["expected_downtime_s"] == 1980
    assert report["masking_rules"] == []
    assert {user["username"] for user in report["users"]} >= {"app_user"}
    assert all(
        "password" not in u or u["password"].startswith(("secret ", "literal")) for u in report["users"]
    )
    names = [check["name"] for check in report["checks"]]
    assert names[:3] == ["configuration", "request", "users and secrets"]
    assert {
        "snapshot",
        "lease",
        "deletion guard",
        "quotas",
        "identifiers",
        "KMS key",
        "instance class",
    } <= set(names)
    # moto has no DescribeAccountAttributes: the quotas are said to be unchecked, not failed
    quotas = next(check for check in report["checks"] if check["name"] == "quotas")
    assert quotas["outcome"] in ("unknown", "passed"), quotas


def test_an_override_is_planned_as_start_would_take_it(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, *PLAN, "--date", TARGET_DATE, "--json", "--override", "target_cluster_id=dev-other-target"
    )
    assert code == 0, out
    target = json.loads(out)["target"]
    assert target["cluster"] == "dev-other-target"
    assert target["exists"] is False and target["action"] == "restored (it does not exist now)"


def test_every_failing_check_is_listed(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an unknown security group, and a date with no snapshot
    code, out, _ = run(
        capsys,
        *PLAN,
        "--date",
        NO_SNAPSHOT_DATE,
        "--json",
        "--override",
        'target_security_groups=["sg-0123456789abcdef0"]',
    )
    # Then both reasons are given
    assert code == 1
    reasons = json.loads(out)["reasons"]
    assert len(reasons) == 2, reasons
    assert reasons[0].startswith(
        "subnet group and security groups: target_security_groups: no security group sg-0123456789abcdef0"
    )
    assert reasons[1].startswith("snapshot: no snapshot of dev-source-cluster")


def test_a_configuration_that_does_not_resolve_is_the_reason(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.put_config(source_region="not-a-region")
    code, out, _ = run(capsys, *PLAN, "--date", TARGET_DATE)
    assert code == 1
    assert "would NOT start:\n  - configuration: " in out and "source_region" in out


def test_a_held_lease_is_a_reason_and_stays_held(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a running operation holding the target's lease
    from functions.state import DynamoStateStore

    world.seed_operation("dev-restore-running", "copy_snapshot")
    store = DynamoStateStore(STATE_TABLE, TARGET_REGION)
    store.acquire_lease(TARGET_CLUSTER, "dev-restore-running")
    before = everything(world)
    # When a refresh is planned
    code, out, _ = run(capsys, *PLAN, "--date", TARGET_DATE)
    # Then it would not start, saying who holds the target, and the lease is as it was
    assert code == 1
    assert f"lease: target cluster {TARGET_CLUSTER} is held by operation dev-restore-running" in out
    assert everything(world) == before
    assert store.lease_holder(TARGET_CLUSTER) == "dev-restore-running"


def test_a_quota_the_refresh_would_exceed_is_a_reason(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an account whose manual cluster snapshots are at their maximum (the local runtime's answer to
    # DescribeAccountAttributes, which moto lacks, with the maximum lowered)
    from aurora_restore.local import account_quotas

    used = account_quotas.usage(rds_backend(TARGET_REGION))["ManualClusterSnapshots"]
    uninstall = account_quotas.install(
        lambda: {**account_quotas.DEFAULT_MAXIMA, "ManualClusterSnapshots": used}
    )
    try:
        # When a refresh is planned (its copy is one more manual cluster snapshot)
        code, out, _ = run(capsys, *PLAN, "--date", TARGET_DATE)
    finally:
        uninstall()
    # Then it would not start, for that quota
    assert code == 1
    assert f"quotas: ManualClusterSnapshots: {used} of {used} used, the refresh needs 1 more" in out
    # And the clusters and instances are fine: the target is deleted first
    assert "DBClusters" not in out and "DBInstances" not in out


def test_a_target_the_deletion_guard_refuses_is_a_reason(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the target with deletion protection on, not allowed (delete_rds would refuse it, after the copy)
    world.client("rds").modify_db_cluster(DBClusterIdentifier=TARGET_CLUSTER, DeletionProtection=True)
    code, out, _ = run(capsys, *PLAN, "--date", TARGET_DATE)
    assert code == 1
    assert f"deletion guard: refusing to delete {TARGET_CLUSTER}: deletion protection is on" in out
    # And the guard's own lease check read the lease as the operation would hold it, taking nothing
    assert "does not hold its lease" not in out
    assert world.published() == []


def test_latest_plans_the_newest_snapshot(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *PLAN, "--date", "latest", "--json")
    assert code == 0, out
    report = json.loads(out)
    # The source's newest available snapshot (moto made an automated one when it created the source), and
    # the day planned is that snapshot's
    snapshots = world.client("rds", "us-east-1").describe_db_cluster_snapshots(
        DBClusterIdentifier="dev-source-cluster"
    )["DBClusterSnapshots"]
    newest = max(snapshots, key=lambda snapshot: snapshot["SnapshotCreateTime"])
    assert report["snapshot"]["name"] == newest["DBClusterSnapshotIdentifier"]
    assert report["target_date"] == newest["SnapshotCreateTime"].date().isoformat()
    assert world.published() == []
