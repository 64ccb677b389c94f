"""The failure path end to end on the local runtime: StepFailed, the failure notification, resume, abort."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from aurora_restore import chaos, operations
from aurora_restore.local.runtime import TARGET_CLUSTER, LocalRuntime
from aurora_restore.operations import Target

pytestmark = pytest.mark.e2e

USER_SECRET = "dev/app-user-password"


def break_setup_db_users(runtime: LocalRuntime) -> None:
    """A DB user whose password secret exists at the start (snapshot_check checks) and goes away later."""
    users = [{"username": "app_user", "password_secret_id": USER_SECRET, "privileges": ["SELECT"]}]
    runtime.client("ssm").put_parameter(
        Name="/aurora-restore/dev/db_users", Value=json.dumps(users), Type="String", Overwrite=True
    )
    runtime.client("secretsmanager").create_secret(Name=USER_SECRET, SecretString="fixable-secret-value")


def _failure_notifications(runtime: LocalRuntime, operation_id: str) -> list[dict[str, Any]]:
    """The operation's failure notifications on the SQS queue, once notify_completion has sent one."""
    import time

    deadline = time.monotonic() + 30
    while True:
        bodies = [json.loads(body) for body in chaos.queue_messages(runtime, "dev-notifications")]
        found = [b for b in bodies if b.get("operation_id") == operation_id and b["outcome"] == "failed"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_failed_step_is_notified_and_resume_completes_once_the_cause_is_fixed(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given a running restore whose DB-user secret disappears once the snapshot was found
    runtime = start_runtime(log_path=None)
    break_setup_db_users(runtime)
    operation_id = "failure-path-resume"
    runtime.put_restore_requested(operation_id, date.today())
    runtime.wait_for_step(operation_id, "snapshot_check")
    secrets_manager = runtime.client("secretsmanager")
    secrets_manager.delete_secret(SecretId=USER_SECRET, ForceDeleteWithoutRecovery=True)

    # When the operation reaches setup_db_users
    state = runtime.wait_for(operation_id, timeout=90)

    # Then it is failed at setup_db_users, and a failure notification on SQS names step, error, leftovers
    assert state is not None and state.status == "failed", state
    assert state.failed_step == "setup_db_users"
    assert state.error is not None and USER_SECRET in state.error.message
    notices = _failure_notifications(runtime, operation_id)
    assert len(notices) == 1, notices
    notice = notices[0]
    assert notice["failed_step"] == "setup_db_users"
    assert notice["error"]["type"] == "ConfigError"
    assert notice["left_in_place"]["lease"] == TARGET_CLUSTER
    assert notice["left_in_place"]["target_cluster_id"] == TARGET_CLUSTER
    assert notice["resume"] == f"aurora-restore resume {operation_id}"
    mutations_at_failure = sum(runtime.simulator.mutating_calls().values())  # type: ignore[union-attr]

    # When the cause is fixed and the operator resumes it
    secrets_manager.create_secret(Name=USER_SECRET, SecretString="fixable-secret-value")
    _, step = operations.resume(Target("dev", runtime.options.target_region), operation_id)

    # Then it continues from setup_db_users, without any RDS step running again, and completes
    assert step == "setup_db_users"
    state = runtime.wait_for(operation_id, timeout=60)
    assert state is not None and state.status == "completed", state
    assert sum(runtime.simulator.mutating_calls().values()) == mutations_at_failure  # type: ignore[union-attr]
    assert runtime.state(operation_id).results["cleanup"]["status"] == "success"
    assert StoreView(runtime).lease_holder(TARGET_CLUSTER) is None


def test_abort_releases_the_lease_and_leaves_the_target_as_it_is(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given an operation failed at setup_db_users: its freshly restored target is there, its lease held
    runtime = start_runtime(log_path=None)
    break_setup_db_users(runtime)
    operation_id = "failure-path-abort"
    runtime.put_restore_requested(operation_id, date.today())
    runtime.wait_for_step(operation_id, "snapshot_check")
    runtime.client("secretsmanager").delete_secret(SecretId=USER_SECRET, ForceDeleteWithoutRecovery=True)
    state = runtime.wait_for(operation_id, timeout=90)
    assert state is not None and state.status == "failed", state
    assert StoreView(runtime).lease_holder(TARGET_CLUSTER) == operation_id
    rds = runtime.client("rds")
    before = rds.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]
    mutations = dict(runtime.simulator.mutating_calls())  # type: ignore[union-attr]

    # When the operator aborts it
    outcome = operations.abort_operation(Target("dev", runtime.options.target_region), operation_id)
    aborted = outcome.state

    # Then the lease item is gone, the state says aborted, and the target cluster is exactly as it was
    assert aborted.status == "aborted"
    assert StoreView(runtime).lease_holder(TARGET_CLUSTER) is None
    assert runtime.state(operation_id).status == "aborted"
    after = rds.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]
    assert (after["Status"], after["DBClusterArn"], after["DBClusterMembers"]) == (
        before["Status"],
        before["DBClusterArn"],
        before["DBClusterMembers"],
    )
    assert dict(runtime.simulator.mutating_calls()) == mutations  # type: ignore[union-attr]
    # And the subscribers, told of the failure, are told of the abort too (no function runs for it): once,
    # saying where it stopped and what it left
    assert outcome.notified and outcome.notice_error is None
    bodies = [json.loads(body) for body in chaos.queue_messages(runtime, "dev-notifications")]
    (notice,) = [b for b in bodies if b.get("operation_id") == operation_id and b["outcome"] == "aborted"]
    assert notice["stopped_at"] == "setup_db_users"
    assert notice["left_in_place"]["target_cluster_id"] == TARGET_CLUSTER
    assert notice["left_in_place"]["lease"] is None
    assert "fixable-secret-value" not in json.dumps(bodies)


def test_a_second_restore_of_a_held_target_fails_naming_the_holder(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given a restore of the target under way (it holds the lease)
    runtime = start_runtime(log_path=None)
    runtime.put_restore_requested("lease-first", date.today())
    runtime.wait_for_step("lease-first", "snapshot_check")

    # When a second restore of the same target is requested
    runtime.put_restore_requested("lease-second", date.today())
    second = runtime.wait_for("lease-second", timeout=30)

    # Then it fails at snapshot_check with LeaseHeld naming the first, and the first completes untouched
    assert second is not None and second.status == "failed"
    assert second.failed_step == "snapshot_check"
    assert second.error is not None and second.error.type == "LeaseHeld"
    assert "lease-first" in second.error.message
    first = runtime.wait_for("lease-first", timeout=90)
    assert first is not None and first.status == "completed", first
    calls = runtime.simulator.mutating_calls()  # type: ignore[union-attr]
    assert calls["RestoreDBClusterFromSnapshot"] == 1 and calls["DeleteDBCluster"] == 1


class StoreView:
    """The state table as the functions see it (the lease items included)."""

    def __init__(self, runtime: LocalRuntime) -> None:
        from functions.state import DynamoStateStore

        self.store = DynamoStateStore(
            f"aurora-restore-state-{runtime.options.environment}", runtime.options.target_region
        )

    def lease_holder(self, cluster_id: str) -> str | None:
        return self.store.lease_holder(cluster_id)
