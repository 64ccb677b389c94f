"""The deletion guard and the lease: a refused step is recorded as failed and the cluster is untouched."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from aurora_restore import operations
from aurora_restore.operations import Target
from functions import notify
from functions.errors import AwsError
from functions.state import DynamoStateStore
from integration.test_idempotency import bus_event
from integration.world import (
    COPY_NAME,
    OPERATION_ID,
    RUNBOOK_PAYLOADS,
    SOURCE_CLUSTER,
    SOURCE_REGION,
    STATE_TABLE,
    TARGET_CLUSTER,
    TARGET_REGION,
    TARGET_WRITER,
    World,
    rds_backend,
)

pytestmark = pytest.mark.integration


def assert_recorded_failure(
    world: World, response: dict[str, Any], step: str, error_type: str
) -> dict[str, Any]:
    assert response["status"] == "error", response
    assert response["error"]["type"] == error_type
    assert response["next_step"] is None
    state = world.state(response["operation_id"])
    assert state is not None
    assert state["status"] == "failed"
    assert state["failed_step"] == step
    assert state["error"]["message"] == response["message"]
    [failed] = world.published_of("StepFailed")
    assert failed["step"] == step and failed["error"]["message"] == response["message"]
    return state


def assert_target_untouched(world: World) -> None:
    assert world.rds_calls.calls == []
    assert world.cluster_exists()
    assert TARGET_WRITER in world.target_rds.databases


def test_deletion_protection_without_permission_is_refused(world: World) -> None:
    # Given the target cluster has deletion protection and the configuration does not allow deleting it
    world.target_rds.clusters[TARGET_CLUSTER].deletion_protection = True
    world.advance("delete_rds")

    # When delete_rds runs
    response = world.run("delete_rds")

    # Then it is refused, recorded as failed, and the cluster and its writer are untouched
    assert_recorded_failure(world, response, "delete_rds", "GuardRefused")
    assert "deletion protection is on" in response["message"]
    assert "allow_deletion_protected" in response["message"]
    assert_target_untouched(world)


@pytest.mark.parametrize("world_config", [{"allow_deletion_protected": True}])
def test_deletion_protection_with_permission_is_turned_off_then_the_cluster_deleted(world: World) -> None:
    # Given a protected target cluster and allow_deletion_protected
    world.target_rds.clusters[TARGET_CLUSTER].deletion_protection = True
    world.advance("delete_rds")

    # When delete_rds runs until the cluster is gone
    responses = [world.run("delete_rds") for _ in range(3)]

    # Then the writer, then the protection, then the cluster went, in that order, in the first run (RDS takes
    # the cluster's deletion once every instance is deleting); the next run finds it gone
    assert [r["deletion_status"] for r in responses] == ["in-progress", "completed", "completed"]
    assert world.rds_calls.names() == ["delete_db_instance", "modify_db_cluster", "delete_db_cluster"]
    assert not world.cluster_exists()


def test_a_protected_target_named_in_the_payload_is_refused(world: World) -> None:
    # Given the operation is at delete_rds
    world.advance("delete_rds")

    # When a direct call adds the target to the protected list
    response = world.invoke(
        "delete_rds", {"operation_id": OPERATION_ID, "protected_cluster_ids": [TARGET_CLUSTER]}
    )

    # Then the configuration is refused, the failure recorded, and the target untouched
    assert_recorded_failure(world, response, "delete_rds", "ConfigError")
    assert f"target cluster '{TARGET_CLUSTER}' is on the protected list" in response["message"]
    assert_target_untouched(world)


def test_a_direct_starts_configuration_is_what_a_resume_starts_again_with(world: World) -> None:
    # Given a direct start naming its own copy timeout, refused at once (no snapshot for that day)
    payload = {"operation_id": OPERATION_ID, "target_date": "2020-01-01", "copy_timeout_minutes": 42}
    assert world.invoke("snapshot_check", payload)["status"] == "error"

    # When the operator resumes it
    resumed, step = operations.resume(Target("dev", TARGET_REGION), OPERATION_ID)

    # Then the restart carries that configuration, as a RestoreRequested would have
    assert step == "snapshot_check" and resumed.overrides == {"copy_timeout_minutes": 42}
    [restart] = world.published_of("RestoreRequested")
    assert restart["overrides"] == {"copy_timeout_minutes": 42}


@pytest.mark.parametrize("world_config", [{"protected_cluster_ids": [TARGET_CLUSTER]}])
def test_a_protected_target_in_ssm_refuses_the_operation_at_the_start(world: World) -> None:
    # Given the SSM configuration protects the target cluster
    # When snapshot_check runs
    response = world.run("snapshot_check")

    # Then the operation fails at once, takes no lease, and touches nothing
    assert_recorded_failure(world, response, "snapshot_check", "ConfigError")
    assert "protected list" in response["message"]
    assert world.state(f"lease#{TARGET_CLUSTER}") is None
    assert_target_untouched(world)


@pytest.mark.parametrize("step", ["snapshot_check", "delete_rds"])
def test_the_source_cluster_as_target_is_refused(world: World, step: str) -> None:
    # Given an operation at `step`
    world.advance(step)

    # When a direct call names the source cluster, in its region, as the target
    source_as_target = {"target_cluster_id": SOURCE_CLUSTER, "target_region": SOURCE_REGION}
    response = world.invoke(
        step, {"operation_id": OPERATION_ID, "target_date": "2023-06-01", **source_as_target}
    )

    # Then it is refused as restoring over the source, and neither cluster is touched
    assert_recorded_failure(world, response, step, "ConfigError")
    assert "refusing to restore over the source" in response["message"]
    assert_target_untouched(world)
    assert world.cluster_exists(SOURCE_CLUSTER, SOURCE_REGION)


def test_delete_rds_refuses_a_cluster_this_operation_restored(world: World) -> None:
    # Given an operation at delete_rds whose target cluster carries this operation's tag (it restored it)
    world.client("rds").add_tags_to_resource(
        ResourceName=world.target_rds.clusters[TARGET_CLUSTER].db_cluster_arn,
        Tags=[{"Key": "aurora-restore:operation-id", "Value": "dev-restore-guarded"}],
    )
    world.seed_operation("dev-restore-guarded", "delete_rds", target_snapshot="whatever-copy")
    world.rds_calls.clear()

    # When delete_rds runs
    response = world.invoke("delete_rds", {"operation_id": "dev-restore-guarded"})

    # Then the guard refuses and the cluster stays
    assert_recorded_failure(world, response, "delete_rds", "GuardRefused")
    assert "this operation restored it" in response["message"]
    assert_target_untouched(world)


def test_a_second_operation_on_the_same_target_is_refused_naming_the_holder(world: World) -> None:
    # Given one operation holds the lease on the target cluster
    assert world.run("snapshot_check")["status"] == "success"

    # When a second operation starts on the same target
    response = world.invoke(
        "snapshot_check", {"operation_id": "dev-restore-second", "target_date": "2023-06-01"}
    )

    # Then it fails with LeaseHeld naming the holder, and the first operation is unaffected
    assert_recorded_failure(world, response, "snapshot_check", "LeaseHeld")
    assert f"held by operation {OPERATION_ID}" in response["message"]
    first = world.state()
    assert first is not None and first["status"] == "running" and first["next_step"] == "copy_snapshot"
    assert world.state(f"lease#{TARGET_CLUSTER}")["holder"] == OPERATION_ID  # type: ignore[index]


def test_the_lease_is_free_again_after_cleanup(world: World) -> None:
    # Given one operation ran to the end
    world.advance("cleanup")
    world.run("cleanup")

    # When another operation starts on the same target
    response = world.invoke(
        "snapshot_check", {"operation_id": "dev-restore-next", "target_date": "2023-06-01"}
    )

    # Then it may take the lease
    assert response["status"] == "success", response
    assert world.state(f"lease#{TARGET_CLUSTER}")["holder"] == "dev-restore-next"  # type: ignore[index]


@pytest.mark.parametrize("world_config", [{"delete_logs": True}])
def test_a_cleanup_that_fails_keeps_the_lease_its_failure_names(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operation at cleanup whose step logs cannot be deleted
    world.advance("cleanup")

    def refused(*_: object) -> None:
        raise AwsError("AccessDenied on s3:DeleteObject", retryable=False)

    monkeypatch.setattr(notify.StepLog, "delete_all", refused)

    # When cleanup runs
    response = world.run("cleanup")

    # Then the failure names the lease as left in place, and it is: no other operation takes the target
    # until the cleanup is resumed
    assert response["status"] == "error", response
    failed = world.published_of("StepFailed")[-1]
    assert failed["left_in_place"]["lease"] == TARGET_CLUSTER
    assert world.state(f"lease#{TARGET_CLUSTER}")["holder"] == OPERATION_ID  # type: ignore[index]


def test_delete_rds_refuses_a_cluster_whose_lease_it_does_not_hold(world: World) -> None:
    # Given an operation at delete_rds, holding the lease on dev-target-cluster, and another cluster
    world.client("rds").create_db_cluster(
        DBClusterIdentifier="dev-other-cluster",
        Engine="aurora-postgresql",
        MasterUsername="postgres",
        MasterUserPassword="other-cluster-password",
    )
    world.advance("delete_rds")

    # When a direct call names that other cluster as the target
    response = world.invoke(
        "delete_rds", {"operation_id": OPERATION_ID, "target_cluster_id": "dev-other-cluster"}
    )

    # Then it is refused: an operation's target is fixed when it starts; neither cluster is touched
    assert_recorded_failure(world, response, "delete_rds", "InvalidRequest")
    assert "target_cluster_id is dev-target-cluster for this operation" in response["message"]
    assert world.cluster_exists("dev-other-cluster")
    assert_target_untouched(world)


def test_delete_rds_refuses_a_target_whose_lease_another_operation_took(world: World) -> None:
    # Given an operation at delete_rds whose lease another operation has taken meanwhile
    world.advance("delete_rds")
    store = DynamoStateStore(STATE_TABLE, TARGET_REGION)
    store.release_lease(TARGET_CLUSTER, OPERATION_ID)
    store.acquire_lease(TARGET_CLUSTER, "dev-restore-other")

    # When the step runs
    response = world.run("delete_rds")

    # Then the guard refuses, and the target is not touched, nor indexed as this operation's
    assert_recorded_failure(world, response, "delete_rds", "GuardRefused")
    assert "does not hold its lease" in response["message"]
    assert_target_untouched(world)
    assert world.state(f"resource#cluster#{TARGET_CLUSTER}") is None


def _delete_rds_refused(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    """delete_rds refused by deletion protection: its response, and its StepFailed as the bus delivers it."""
    world.target_rds.clusters[TARGET_CLUSTER].deletion_protection = True
    world.advance("delete_rds")
    refused = world.run("delete_rds")
    [failed] = world.published_of("StepFailed")
    return refused, bus_event("StepFailed", failed)


def test_a_failure_notification_delivered_after_an_abort_leaves_the_operation_aborted(world: World) -> None:
    # Given a failed operation the operator aborted before its StepFailed reached notify_completion
    # (or while it was being notified: that attempt's write met the abort's, and its trigger came again)
    _, event = _delete_rds_refused(world)
    assert operations.abort(Target("dev", TARGET_REGION), OPERATION_ID).status == "aborted"

    # When the StepFailed reaches notify_completion
    response = world.invoke("notify_completion", event)

    # Then it is refused: the operation stays aborted and no failure notification goes out (the abort's own
    # notice is the only one)
    assert response["status"] == "error", response
    assert "aborted" in response["message"]
    state = world.state()
    assert state is not None and state["status"] == "aborted"
    assert [json.loads(body)["outcome"] for body in world.notifications()] == ["aborted"]


def test_an_operation_aborted_after_a_resume_still_expires(world: World) -> None:
    # Given a failed operation the operator resumed (a running operation has no expiry of its own)
    _delete_rds_refused(world)
    operations.resume(Target("dev", TARGET_REGION), OPERATION_ID)

    # When the operator aborts it
    operations.abort(Target("dev", TARGET_REGION), OPERATION_ID)

    # Then it expires after the configured retention, as any ended operation
    state = world.state()
    assert state is not None and state["status"] == "aborted"
    days = (int(state["expires_at"]) - time.time()) / 86_400
    assert 29.9 < days <= 30


def test_a_failure_notification_delivered_after_a_resume_leaves_the_operation_running(world: World) -> None:
    # Given a failed operation the operator resumed (its cause fixed) before its StepFailed came again
    _, event = _delete_rds_refused(world)
    world.target_rds.clusters[TARGET_CLUSTER].deletion_protection = False
    resumed, step = operations.resume(Target("dev", TARGET_REGION), OPERATION_ID)
    assert (resumed.status, step) == ("running", "delete_rds")

    # When the old StepFailed reaches notify_completion
    response = world.invoke("notify_completion", event)

    # Then it is ignored: the operation stays running at the resumed step and no notification goes out
    assert response["status"] == "ignored", response
    state = world.state()
    assert state is not None and (state["status"], state["next_step"]) == ("running", "delete_rds")
    assert world.notifications() == []


def test_a_resumed_failure_delivered_late_when_the_operation_is_at_notify_completion_is_ignored(
    world: World,
) -> None:
    # Given a failed operation the operator resumed, which then ran on to notify_completion
    _, event = _delete_rds_refused(world)
    world.target_rds.clusters[TARGET_CLUSTER].deletion_protection = False
    operations.resume(Target("dev", TARGET_REGION), OPERATION_ID)
    world.advance("notify_completion")

    # When the old StepFailed is delivered again just then
    response = world.invoke("notify_completion", event)

    # Then it is ignored: no failure notice, the operation not set back to failed
    assert response["status"] == "ignored", response
    assert world.notifications() == []
    state = world.state()
    assert state is not None and (state["status"], state["next_step"]) == ("running", "notify_completion")


def test_a_step_failed_event_sends_a_failure_notification_and_the_operation_stays_failed(
    world: World,
) -> None:
    # Given delete_rds was refused (deletion protection) and published StepFailed
    refused, event = _delete_rds_refused(world)

    # When the bus routes it to notify_completion
    response = world.invoke("notify_completion", event)

    # Then a failure notification names the step, the error and what was left in place
    assert response["status"] == "success" and response["outcome"] == "failed"
    assert response["next_step"] is None
    [body] = world.notifications()
    message = json.loads(body)
    assert message["outcome"] == "failed"
    assert message["failed_step"] == "delete_rds"
    assert message["error"]["message"] == refused["message"]
    assert message["left_in_place"]["target_snapshot"].endswith("-copy")
    # And, refused before it deleted anything, it does not say the target is out of use
    assert message["took_s"] >= 0 and "target_down_since" not in message
    # And the operation stays failed, with nothing routed on to cleanup
    state = world.state()
    assert state is not None and state["status"] == "failed"
    assert [e["next_step"] for e in world.published_of("StepCompleted")] == []


def test_a_step_failed_delivered_twice_is_notified_once_and_a_later_failure_again(world: World) -> None:
    # Given delete_rds was refused and its StepFailed notified
    _, event = _delete_rds_refused(world)
    assert world.invoke("notify_completion", event)["status"] == "success"

    # When EventBridge delivers the same StepFailed again (at least once)
    again = world.invoke("notify_completion", event)

    # Then nobody is told twice
    assert again["status"] == "success" and "already notified" in again["message"], again
    assert len(world.notifications()) == 1

    # And once resumed and refused again, that new failure is notified
    operations.resume(Target("dev", TARGET_REGION), OPERATION_ID)
    assert world.run("delete_rds")["status"] == "error"
    second = world.published_of("StepFailed")[-1]
    assert world.invoke("notify_completion", bus_event("StepFailed", second))["status"] == "success"
    assert len(world.notifications()) == 2


@pytest.mark.parametrize("world_config", [{"final_snapshot": True}])
def test_the_completion_notification_names_the_final_snapshot_the_deletion_kept(world: World) -> None:
    world.advance("notify_completion")

    assert world.run("notify_completion")["status"] == "success"

    [body] = world.notifications()
    assert json.loads(body)["final_snapshot"] == f"{TARGET_CLUSTER}-final-{OPERATION_ID}"


@pytest.mark.parametrize("world_config", [{"final_snapshot": True, "final_snapshots_kept": 2}])
def test_cleanup_keeps_the_newest_final_snapshots_and_deletes_the_older_ones(world: World) -> None:
    """One final snapshot per refresh, full size, kept for ever: final_snapshots_kept bounds them."""
    from datetime import UTC, datetime

    # Given two final snapshots of earlier refreshes, a manual snapshot of the target under another name,
    # and another cluster's snapshot that happens to be named like a final one
    rds = world.client("rds")
    older = [f"{TARGET_CLUSTER}-final-earlier-1", f"{TARGET_CLUSTER}-final-earlier-2"]
    for name in [*older, f"{TARGET_CLUSTER}-before-upgrade"]:
        rds.create_db_cluster_snapshot(DBClusterIdentifier=TARGET_CLUSTER, DBClusterSnapshotIdentifier=name)
    rds.create_db_cluster(
        DBClusterIdentifier="other-cluster",
        Engine="aurora-postgresql",
        MasterUsername="x",
        MasterUserPassword="password-1",
    )
    rds.create_db_cluster_snapshot(
        DBClusterIdentifier="other-cluster", DBClusterSnapshotIdentifier=f"{TARGET_CLUSTER}-final-foreign"
    )
    backend = rds_backend(TARGET_REGION)
    for day, name in enumerate(older, start=1):
        backend.cluster_snapshots[name].created = datetime(2026, 1, day, tzinfo=UTC)

    # When a refresh runs to its end (its deletion of the target keeps a final snapshot)
    world.advance("cleanup")
    answer = world.run("cleanup")

    # Then the 2 newest final snapshots of the target are kept (this refresh's and the latest earlier one)
    # and only the oldest is deleted; the rest is not touched
    assert answer["status"] == "success", answer
    assert answer["cleanup_results"]["final_snapshots_deleted"] == [older[0]]
    left = {
        item["DBClusterSnapshotIdentifier"]
        for item in rds.describe_db_cluster_snapshots()["DBClusterSnapshots"]
    }
    assert older[0] not in left
    assert {
        f"{TARGET_CLUSTER}-final-{OPERATION_ID}",
        older[1],
        f"{TARGET_CLUSTER}-before-upgrade",
        f"{TARGET_CLUSTER}-final-foreign",
    } <= left
    # And cleanup run again deletes nothing more, and says the same
    again = world.run("cleanup")
    assert again["cleanup_results"]["final_snapshots_deleted"] == [older[0]]
    after = {
        item["DBClusterSnapshotIdentifier"]
        for item in rds.describe_db_cluster_snapshots()["DBClusterSnapshots"]
    }
    assert after == left


@pytest.mark.parametrize("world_config", [{"final_snapshot": True, "final_snapshots_kept": 1}])
def test_an_older_final_snapshot_rds_will_not_delete_is_named_and_the_refresh_completes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.rds import RdsAdapter

    # Given two earlier final snapshots, one of which RDS refuses to delete (being copied elsewhere)
    rds = world.client("rds")
    busy, other = f"{TARGET_CLUSTER}-final-being-copied", f"{TARGET_CLUSTER}-final-earlier"
    for name in (busy, other):
        rds.create_db_cluster_snapshot(DBClusterIdentifier=TARGET_CLUSTER, DBClusterSnapshotIdentifier=name)
    real = RdsAdapter.delete_cluster_snapshot

    def refusing(self: RdsAdapter, snapshot_id: str) -> bool:
        if snapshot_id == busy:
            raise AwsError(
                f"deleting snapshot {busy} failed: InvalidDBClusterSnapshotStateFault", retryable=False
            )
        return bool(real(self, snapshot_id))

    monkeypatch.setattr(RdsAdapter, "delete_cluster_snapshot", refusing)

    # When the refresh runs to its end
    world.advance("cleanup")
    answer = world.run("cleanup")

    # Then the refresh completes: the other is deleted, the refused one kept and named
    assert answer["status"] == "success", answer
    assert answer["cleanup_results"]["final_snapshots_deleted"] == [other]
    assert answer["cleanup_results"]["final_snapshots_not_deleted"] == [busy]
    assert world.state()["status"] == "completed"  # type: ignore[index]
    assert rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=busy)["DBClusterSnapshots"]


def test_cleanup_without_final_snapshots_kept_answers_the_runbooks_shape(world: World) -> None:
    world.advance("cleanup")
    assert set(world.run("cleanup")["cleanup_results"]) == {
        "snapshot_deleted",
        "state_data_deleted",
        "logs_deleted",
    }


def test_a_request_refused_for_a_bad_override_is_still_notified(world: World) -> None:
    # Given an operation refused at its first step for an override no configuration can hold
    payload = {
        "operation_id": OPERATION_ID,
        "target_date": "2023-06-01",
        "overrides": {"copy_timeout_minutes": "abc"},
    }
    refused = world.invoke("snapshot_check", payload)
    assert refused["status"] == "error" and refused["error"]["type"] == "ConfigError", refused
    [failed] = world.published_of("StepFailed")

    # When its StepFailed reaches notify_completion
    response = world.invoke("notify_completion", bus_event("StepFailed", failed))

    # Then people are told, with the configuration SSM gives, what failed and why
    assert response["status"] == "success" and response["outcome"] == "failed", response
    [body] = world.notifications()
    message = json.loads(body)
    assert message["failed_step"] == "snapshot_check"
    assert "copy_timeout_minutes" in message["error"]["message"]


def test_a_final_snapshot_is_named_as_rds_allows_whatever_the_operation_id_holds(world: World) -> None:
    # Given final snapshots on, and an operation id with the '_', '.' and ':' an operation id may hold
    world.put_config(final_snapshot=True)
    operation = "dev_restore.2023-06-01:retry"
    for step in ("snapshot_check", "copy_snapshot", "check_copy_status"):
        answer = world.invoke(step, {**RUNBOOK_PAYLOADS[step], "operation_id": operation})
        assert answer["status"] == "success", answer
    world.target_rds.cluster_snapshots[COPY_NAME].status = "available"
    assert (
        world.invoke(
            "check_copy_status", {**RUNBOOK_PAYLOADS["check_copy_status"], "operation_id": operation}
        )["next_step"]
        == "delete_rds"
    )

    # When delete_rds deletes the old target
    response = world.invoke("delete_rds", {"operation_id": operation})

    # Then its final snapshot's name holds only letters, digits and single hyphens
    assert response["status"] == "success", response
    finals = [name for name in world.target_rds.cluster_snapshots if "-final-" in name]
    assert finals == [f"{TARGET_CLUSTER}-final-dev-restore-2023-06-01-retry"]


def test_an_rds_identifier_keeps_letters_digits_and_single_hyphens() -> None:
    from functions.rds import as_identifier

    assert as_identifier("dev-target-final-op_1.2:x") == "dev-target-final-op-1-2-x"
    assert as_identifier("a--b__c-") == "a-b-c"
    assert as_identifier("x" * 300) == "x" * 255
    assert as_identifier("ab-" + "c" * 300, limit=3) == "ab"


def test_a_huge_value_in_a_payload_is_not_copied_into_the_state(world: World) -> None:
    # Given an operation at copy_snapshot
    world.advance("copy_snapshot")

    # When a direct call names a snapshot of 60,000 characters (under the payload's limit)
    response = world.invoke("copy_snapshot", {"operation_id": OPERATION_ID, "snapshot_name": "s" * 60_000})

    # Then it is refused by its length, not quoted back: the state, the events and the notification would
    # carry every copy of it (and a few such failures outgrew DynamoDB's 400 KB item)
    assert_recorded_failure(world, response, "copy_snapshot", "InvalidRequest")
    assert "snapshot_name <60000 characters> is not the snapshot" in response["message"]
    assert len(json.dumps(world.state(), default=str)) < 20_000


@pytest.mark.parametrize(
    ("field", "value", "error_type", "named"),
    [
        # A misspelt field the runbook's first call would have ignored, refreshing the configured target
        (
            "target_clusterid",
            "dev-other-cluster",
            "InvalidRequest",
            "unknown field(s) in the payload: target_clusterid",
        ),
        # A subnet group RDS would refuse only at the restore, after the target is gone
        (
            "target_subnet_group",
            "dev-subnet-grup",
            "ConfigError",
            "dev-subnet-grup does not exist in us-west-2",
        ),
        # And a security group it would refuse there too
        (
            "target_security_groups",
            ["sg-0badbadbadbadbad0"],
            "ConfigError",
            "no security group sg-0badbadbadbadbad0 in us-west-2",
        ),
        # And a writer's instance class RDS does not offer (the snapshot's version is 15.2)
        (
            "instance_class",
            "db.r6g.larg",
            "ConfigError",
            "instance_class db.r6g.larg is not offered for aurora-postgresql 15.2 in us-west-2",
        ),
    ],
)
def test_a_start_that_could_not_finish_is_refused_before_the_lease(
    world: World, field: str, value: Any, error_type: str, named: str
) -> None:
    # When the runbook's first call names it
    response = world.invoke("snapshot_check", {**RUNBOOK_PAYLOADS["snapshot_check"], field: value})

    # Then it is refused at once, naming it, and the target is neither taken nor touched
    assert_recorded_failure(world, response, "snapshot_check", error_type)
    assert named in response["message"]
    assert world.state(f"lease#{TARGET_CLUSTER}") is None
    assert_target_untouched(world)


def test_a_security_group_outside_the_subnet_groups_vpc_is_refused_before_the_lease(world: World) -> None:
    # Given a security group of another VPC in the target region
    ec2 = world.client("ec2")
    other_vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    stray = ec2.create_security_group(GroupName="elsewhere", Description="another VPC's", VpcId=other_vpc)
    groups = [*world.config["target_security_groups"], stray["GroupId"]]

    # When the first call names it beside the right one
    response = world.invoke(
        "snapshot_check", {**RUNBOOK_PAYLOADS["snapshot_check"], "target_security_groups": groups}
    )

    # Then it is refused, naming the group and both VPCs, and the target is neither taken nor touched
    assert_recorded_failure(world, response, "snapshot_check", "ConfigError")
    assert f"{stray['GroupId']} is in {other_vpc}, not in vpc-" in response["message"]
    assert "the VPC of target_subnet_group dev-subnet-group" in response["message"]
    assert world.state(f"lease#{TARGET_CLUSTER}") is None
    assert_target_untouched(world)


@pytest.mark.parametrize(("engine_version", "offered"), [("13.4", False), ("13.6", True)])
def test_the_instance_class_is_checked_against_the_engine_version_the_restore_will_have(
    world: World, engine_version: str, offered: bool
) -> None:
    # Given Serverless v2, which Aurora PostgreSQL offers from 13.6, and an engine_version for the restore
    # (with parameter groups of its family: the target's own are for 15)
    rds = world.client("rds")
    rds.create_db_cluster_parameter_group(
        DBClusterParameterGroupName="cluster-13",
        DBParameterGroupFamily="aurora-postgresql13",
        Description="13",
    )
    rds.create_db_parameter_group(
        DBParameterGroupName="writer-13", DBParameterGroupFamily="aurora-postgresql13", Description="13"
    )
    payload = {
        **RUNBOOK_PAYLOADS["snapshot_check"],
        "instance_class": "db.serverless",
        "engine_version": engine_version,
        "cluster_parameter_group": "cluster-13",
        "db_parameter_group": "writer-13",
    }

    # When the first call names them
    response = world.invoke("snapshot_check", payload)

    # Then the class is checked against that version, not the snapshot's: refused before the lease, or on
    if offered:
        assert response["status"] == "success", response
        assert world.state(f"lease#{TARGET_CLUSTER}") is not None
    else:
        assert_recorded_failure(world, response, "snapshot_check", "ConfigError")
        assert f"db.serverless is not offered for aurora-postgresql {engine_version}" in response["message"]
        assert world.state(f"lease#{TARGET_CLUSTER}") is None


@pytest.mark.parametrize(
    ("field", "named"),
    [
        (
            "cluster_parameter_group",
            "cluster_parameter_group: parameter group params-14 is of family aurora-postgresql14, and the restore"
            " is aurora-postgresql 15.2 (aurora-postgresql15): set cluster_parameter_group to a group of family"
            " aurora-postgresql15",
        ),
        ("db_parameter_group", "db_parameter_group: no parameter group params-14 in us-west-2"),
    ],
)
def test_a_parameter_group_rds_would_refuse_at_the_restore_is_refused_before_the_lease(
    world: World, field: str, named: str
) -> None:
    # Given a cluster parameter group for another major version than the snapshot's (15.2)
    world.client("rds").create_db_cluster_parameter_group(
        DBClusterParameterGroupName="params-14",
        DBParameterGroupFamily="aurora-postgresql14",
        Description="old",
    )
    # When the start names it for the restored cluster (or, as the writer's group, where there is none)
    response = world.invoke("snapshot_check", {**RUNBOOK_PAYLOADS["snapshot_check"], field: "params-14"})

    # Then it is refused at once with the fix, and the target is neither taken nor touched
    assert_recorded_failure(world, response, "snapshot_check", "ConfigError")
    assert named in response["message"]
    assert world.state(f"lease#{TARGET_CLUSTER}") is None
    assert_target_untouched(world)
