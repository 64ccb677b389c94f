"""`aurora-restore plan`'s pure parts: the quota arithmetic, the read-only adapters, the collecting checks."""

from __future__ import annotations

import pytest

from aurora_restore import render
from aurora_restore.plan import (
    DOWNTIME_MODEL_S,
    NoPublisher,
    PlanChanged,
    ReadOnlyStore,
    quota_needs,
    quota_problems,
)
from functions.errors import ConfigError, NotFound
from functions.steps.preflight import Preflight

TARGET = {"DBClusterIdentifier": "t", "DBClusterMembers": [{"DBInstanceIdentifier": "t-1"}]}


def test_replace_needs_no_more_cluster_or_instance_when_the_target_exists() -> None:
    # The target and its writer are deleted before the restore: they make room for the restored ones
    assert quota_needs(TARGET, copy_exists=False, final_snapshot=False) == {
        "DBClusters": 0,
        "DBInstances": 0,
        "ManualClusterSnapshots": 1,
    }


def test_a_missing_target_needs_a_cluster_and_an_instance_and_a_shared_copy_none() -> None:
    assert quota_needs(None, copy_exists=True, final_snapshot=True) == {
        "DBClusters": 1,
        "DBInstances": 1,
        "ManualClusterSnapshots": 0,  # no target: no final snapshot of it
    }


def test_a_final_snapshot_is_one_more_manual_cluster_snapshot() -> None:
    assert quota_needs(TARGET, copy_exists=False, final_snapshot=True)["ManualClusterSnapshots"] == 2


def test_only_a_quota_the_refresh_would_exceed_is_a_problem() -> None:
    usage = {"DBClusters": (40, 40), "DBInstances": (39, 40), "ManualClusterSnapshots": (100, 100)}
    needs = {"DBClusters": 0, "DBInstances": 1, "ManualClusterSnapshots": 1}
    assert quota_problems(usage, needs) == [
        "ManualClusterSnapshots: 100 of 100 used, the refresh needs 1 more"
    ]
    # A quota RDS did not report is not held against the refresh
    assert quota_problems({}, needs) == []


def test_the_plan_writes_nothing_to_the_store_or_the_bus() -> None:
    reads: list[str] = []

    class Store:
        def lease_holder(self, cluster: str) -> str | None:
            reads.append(cluster)
            return None

        def acquire_lease(self, cluster: str, operation_id: str) -> None:
            raise AssertionError("reached the store")

    store = ReadOnlyStore(Store())
    assert store.lease_holder("t") is None and reads == ["t"]
    for write in ("acquire_lease", "create", "save", "release_lease", "join_copy", "index_resource"):
        with pytest.raises(PlanChanged, match=write):
            getattr(store, write)
    with pytest.raises(PlanChanged, match="1 event"):
        NoPublisher().publish([object()])


def test_collecting_checks_records_every_failure_and_strict_ones_raise_the_first() -> None:
    def missing() -> None:
        raise NotFound("no snapshot")

    collected = Preflight(collect=True)
    assert collected.run("snapshot", missing) is None
    assert collected.run("answer", lambda: 42) == 42
    collected.run("key", lambda: (_ for _ in ()).throw(ConfigError("bad key")))
    assert collected.reasons == ["snapshot: no snapshot", "key: bad key"]
    with pytest.raises(NotFound):
        Preflight().run("snapshot", missing)


def test_the_text_says_the_verdict_the_reasons_and_the_estimate() -> None:
    report = {
        "would_start": False,
        "reasons": ["snapshot: no snapshot of s"],
        "target_date": "2026-12-01",
        "snapshot": None,
        "copy": None,
        "target": None,
        "settings_carried": {},
        "users": [],
        "masking_rules": [],
        "expected_downtime_s": sum(DOWNTIME_MODEL_S.values()),
        "warnings": [],
        "checks": [{"name": "snapshot", "outcome": "failed", "message": "no snapshot of s"}],
    }
    text = render.plan_text(report)
    assert text.startswith("a refresh for 2026-12-01 would NOT start:\n  - snapshot: no snapshot of s\n")
    assert "  !! snapshot: no snapshot of s" in text
    assert "downtime  about 33 min (an estimate" in text
