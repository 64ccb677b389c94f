"""A refresh keeps the target's own settings: its parameter groups, windows, retention, tags and more."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from aurora_restore.local.runtime import TARGET_CLUSTER, LocalRuntime

pytestmark = pytest.mark.e2e

CLUSTER_SETTINGS = (
    "DBClusterParameterGroup",
    "BackupRetentionPeriod",
    "PreferredBackupWindow",
    "PreferredMaintenanceWindow",
    "EnabledCloudwatchLogsExports",
    "IAMDatabaseAuthenticationEnabled",
    "CopyTagsToSnapshot",
    "DeletionProtection",
)
WRITER_SETTINGS = (
    "DBInstanceClass",
    "AutoMinorVersionUpgrade",
    "CACertificateIdentifier",
    "PreferredMaintenanceWindow",
)


def _settings(runtime: LocalRuntime) -> dict[str, Any]:
    rds = runtime.client("rds")
    cluster = rds.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]
    writer_id = next(m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"] if m["IsClusterWriter"])
    writer = rds.describe_db_instances(DBInstanceIdentifier=writer_id)["DBInstances"][0]
    tags = rds.list_tags_for_resource(ResourceName=cluster["DBClusterArn"])["TagList"]
    return {
        **{key: cluster.get(key) for key in CLUSTER_SETTINGS},
        **{f"writer.{key}": writer.get(key) for key in WRITER_SETTINGS},
        "writer.DBParameterGroups": [group["DBParameterGroupName"] for group in writer["DBParameterGroups"]],
        "tags": {t["Key"]: t["Value"] for t in tags if not t["Key"].startswith("aurora-restore:")},
    }


def test_a_refresh_puts_the_targets_own_settings_back(start_runtime: Callable[..., LocalRuntime]) -> None:
    # Given the local target with settings of its own (aurora_restore/local/world.py), not the source's
    runtime = start_runtime()
    before = _settings(runtime)
    assert before["DBClusterParameterGroup"] == "dev-target-cluster-params"
    assert before["writer.DBParameterGroups"] == ["dev-target-writer-params"]
    assert before["tags"] == {"team": "data-platform", "cost-center": "4711"}

    # When it is refreshed
    runtime.put_restore_requested("e2e-settings", date.today())
    state = runtime.wait_for("e2e-settings", timeout=90)
    assert state is not None and state.status == "completed", state and (state.error, state.history[-3:])

    # Then the new cluster and its writer have what the old ones had
    assert _settings(runtime) == before
    # And what was recorded is in the operation's state, for status and the notices
    recorded = state.outputs["target_settings"]
    assert recorded["cluster_parameter_group"] == "dev-target-cluster-params"
    assert recorded["writer"]["db_parameter_group"] == "dev-target-writer-params"


def test_a_swap_keeps_the_targets_own_settings_too(start_runtime: Callable[..., LocalRuntime]) -> None:
    # Given the local target with settings of its own
    runtime = start_runtime()
    before = _settings(runtime)

    # When it is refreshed by restoring beside it and switching by rename
    runtime.put_restore_requested("e2e-settings-swap", date.today(), {"strategy": "swap"})
    state = runtime.wait_for("e2e-settings-swap", timeout=90)
    assert state is not None and state.status == "completed", state and (state.error, state.history[-3:])

    # Then the cluster now under the target's name (another one) and its writer have what the old ones had
    assert state.outputs["switched"] is True
    assert _settings(runtime) == before
