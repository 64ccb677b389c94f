"""Every step, fed the runbook's own payload, answers the runbook's response field for field."""

from __future__ import annotations

import json
import time
from datetime import date, datetime
from typing import Any

import pytest

from functions.state import DynamoStateStore
from integration.world import (
    COPY_NAME,
    OPERATION_ID,
    SNAPSHOT_NAME,
    SOURCE_REGION,
    STATE_TABLE,
    TARGET_CLUSTER,
    TARGET_REGION,
    TARGET_WRITER,
    World,
    rds_backend,
)
from schemas.common import utcnow
from schemas.state import OperationState

pytestmark = pytest.mark.integration


def test_snapshot_check_finds_the_dated_snapshot(world: World) -> None:
    # Given the runbook's world, with dev-source-cluster-snapshot-2023-06-01 in us-east-1
    # When snapshot_check gets the runbook's payload
    response = world.run("snapshot_check")

    # Then it answers exactly the runbook's response
    assert response == {
        "operation_id": OPERATION_ID,
        "status": "success",
        "message": "Snapshot exists",
        "snapshot_exists": True,
        "snapshot_name": SNAPSHOT_NAME,
        "next_step": "copy_snapshot",
    }
    # And it changed nothing in RDS, and routed the choreography to copy_snapshot
    assert world.rds_calls.calls == []
    completed = world.published_of("StepCompleted")
    assert [(event["step"], event["next_step"]) for event in completed] == [
        ("snapshot_check", "copy_snapshot")
    ]


def test_snapshot_check_records_where_each_configuration_value_came_from(world: World) -> None:
    from aurora_restore.render import status_text
    from functions.state import DynamoStateStore
    from integration.world import STATE_TABLE, TARGET_REGION

    # Given the runbook's configuration in SSM, and one value overridden by the request
    payload = {
        "operation_id": OPERATION_ID,
        "target_date": "2023-06-01",
        "overrides": {"recheck_interval_seconds": 120},
    }

    # When snapshot_check starts the operation
    assert world.invoke("snapshot_check", payload)["status"] == "success"

    # Then the state keeps, beside the configuration, where each value came from
    state = DynamoStateStore(STATE_TABLE, TARGET_REGION).get(OPERATION_ID)
    assert state is not None
    assert state.config["recheck_interval_seconds"] == 120
    assert state.config_sources["recheck_interval_seconds"] == "event"
    assert state.config_sources["target_cluster_id"] == "ssm"
    assert set(state.config_sources) == set(state.config)
    assert state.target_cluster_id == TARGET_CLUSTER
    # And `aurora-restore status` says so
    config_line = next(line for line in status_text(state).splitlines() if line.startswith("config"))
    assert "from event: recheck_interval_seconds" in config_line
    assert "target_cluster_id" in config_line.split("from ssm:")[1]


def test_copy_snapshot_copies_into_the_target_region(world: World) -> None:
    # Given snapshot_check found the snapshot
    world.advance("copy_snapshot")

    # When copy_snapshot gets the runbook's payload
    response = world.run("copy_snapshot")

    # Then the response is the runbook's
    assert response == {
        "operation_id": OPERATION_ID,
        "status": "success",
        "message": "Snapshot copy initiated",
        "source_snapshot": SNAPSHOT_NAME,
        "target_snapshot": COPY_NAME,
        "next_step": "check_copy_status",
    }
    # And the copy exists in us-west-2, tagged with the operation id
    copy = world.target_rds.cluster_snapshots[COPY_NAME]
    tags = {tag["Key"]: tag["Value"] for tag in copy.tags}
    assert tags["aurora-restore:operation-id"] == OPERATION_ID
    assert world.rds_calls.names() == ["copy_db_cluster_snapshot"]


def test_an_automated_snapshot_found_by_date_is_copied_under_a_name_rds_accepts(world: World) -> None:
    # Given a day with no snapshot of the runbook's name, only the automated one RDS made of the source
    # cluster (`rds:dev-source-cluster-<yyyy-mm-dd-hh-mm>`: moto makes it when the cluster is created)
    world.client("rds", SOURCE_REGION).delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=SNAPSHOT_NAME)
    automated = [name for name in world.source_rds.cluster_snapshots if name.startswith("rds:")]
    assert automated, "moto made no automated snapshot of the source cluster"
    day = world.source_rds.cluster_snapshots[automated[0]].created.date().isoformat()
    operation = f"dev-restore-{day}"

    # When snapshot_check looks for that day's snapshot, and copy_snapshot copies what it found
    found = world.invoke("snapshot_check", {"operation_id": operation, "target_date": day})
    assert found["status"] == "success", found
    copied = world.invoke(
        "copy_snapshot", {"operation_id": operation, "snapshot_name": found["snapshot_name"]}
    )

    # Then the automated snapshot was found, and its copy's identifier holds only letters, digits and
    # hyphens (the `rds:` prefix is RDS's, not part of a name we may give)
    assert found["snapshot_name"] == automated[0]
    assert copied["status"] == "success", copied
    expected = automated[0].removeprefix("rds:") + "-copy"
    assert copied["target_snapshot"] == expected
    assert expected in world.target_rds.cluster_snapshots


def test_the_copy_name_keeps_the_runbooks_and_drops_what_rds_identifiers_cannot_hold() -> None:
    from functions.steps.snapshot import copy_name

    assert copy_name(SNAPSHOT_NAME) == COPY_NAME
    assert copy_name("rds:dev-source-cluster-2026-11-24-03-05") == "dev-source-cluster-2026-11-24-03-05-copy"
    assert copy_name("awsbackup:job-1a2b_3c.4d") == "job-1a2b-3c-4d-copy"


def test_check_copy_status_reports_in_progress_then_available(world: World) -> None:
    # Given the copy was started and RDS still reports it copying
    world.advance("check_copy_status")
    world.target_rds.cluster_snapshots[COPY_NAME].status = "copying"

    # When check_copy_status gets the runbook's payload
    in_progress = world.run("check_copy_status")

    # Then it answers the runbook's "in progress" response and records the wait
    assert in_progress == {
        "operation_id": OPERATION_ID,
        "status": "success",
        "message": "Snapshot copy in progress",
        "target_snapshot": COPY_NAME,
        "copy_status": "in-progress",
        "next_step": "check_copy_status",
    }
    state = world.state()
    assert state is not None and state["status"] == "waiting"
    assert state["waiting"]["step"] == "check_copy_status"
    assert world.published_of("StepWaiting")[0]["step"] == "check_copy_status"

    # When the copy becomes available and the runbook's script asks again
    world.target_rds.cluster_snapshots[COPY_NAME].status = "available"
    done = world.run("check_copy_status")

    # Then it answers the runbook's "complete" response
    assert done == {
        "operation_id": OPERATION_ID,
        "status": "success",
        "message": "Snapshot copy completed",
        "target_snapshot": COPY_NAME,
        "copy_status": "available",
        "next_step": "delete_rds",
    }
    state = world.state()
    assert state is not None and state["status"] == "running" and state["next_step"] == "delete_rds"


def test_delete_rds_reports_in_progress_then_completed(world: World) -> None:
    # Given the copy is available and the old target cluster still has its writer
    world.advance("delete_rds")

    # When delete_rds gets the runbook's payload
    first = world.run("delete_rds")

    # Then the writer is deleted first, the cluster right after (RDS takes it once every instance is
    # deleting), and the runbook's "in progress" response comes back
    assert first == {
        "operation_id": OPERATION_ID,
        "status": "success",
        "message": "Cluster deletion in progress",
        "target_cluster_id": TARGET_CLUSTER,
        "deletion_status": "in-progress",
        "next_step": "delete_rds",
    }
    assert world.rds_calls.calls == [
        ("delete_db_instance", "us-west-2", TARGET_WRITER),
        ("delete_db_cluster", "us-west-2", TARGET_CLUSTER),
    ]
    assert not world.cluster_exists()

    # When the cluster is gone and the script asks again
    third = world.run("delete_rds")

    # Then the runbook's "deletion complete" response comes back
    assert third == {
        "operation_id": OPERATION_ID,
        "status": "success",
        "message": "Cluster deletion completed",
        "target_cluster_id": TARGET_CLUSTER,
        "deletion_status": "completed",
        "next_step": "restore_snapshot",
    }


def test_delete_rds_refuses_a_stopped_target_before_deleting_anything(world: World) -> None:
    """RDS cannot delete a stopped cluster: asked anyway, it refused at every check until the deadline."""
    world.advance("delete_rds")
    world.target_rds.clusters[TARGET_CLUSTER].status = "stopped"

    answer = world.run("delete_rds")

    assert answer["status"] == "error"
    assert "is stopped" in answer["error"]["message"] and "start-db-cluster" in answer["error"]["message"]
    assert world.rds_calls.calls == []
    assert world.state()["status"] == "failed"  # type: ignore[index]


def test_delete_rds_asks_again_for_an_instance_deletion_rds_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An instance deletion RDS refused for now (the cluster busy) is asked for again at the next check;
    remembered as asked, it never was, and the cluster's deletion was refused until the deadline."""
    from functions.rds import RdsAdapter

    world.advance("delete_rds")
    with monkeypatch.context() as busy:
        busy.setattr(RdsAdapter, "delete_instance", lambda self, instance_id: None)  # refused, tolerated
        busy.setattr(RdsAdapter, "delete_cluster", lambda self, cluster_id, final: False)
        assert world.run("delete_rds")["deletion_status"] == "in-progress"
    assert world.rds_calls.calls == []

    assert world.run("delete_rds")["deletion_status"] == "in-progress"

    assert world.rds_calls.calls == [
        ("delete_db_instance", "us-west-2", TARGET_WRITER),
        ("delete_db_cluster", "us-west-2", TARGET_CLUSTER),
    ]


def test_delete_rds_when_the_cluster_does_not_exist_says_completed(world: World) -> None:
    # Given there is no target cluster at all
    world.client("rds").delete_db_instance(DBInstanceIdentifier=TARGET_WRITER, SkipFinalSnapshot=True)
    world.client("rds").delete_db_cluster(DBClusterIdentifier=TARGET_CLUSTER, SkipFinalSnapshot=True)
    world.advance("delete_rds")
    world.rds_calls.clear()

    # When delete_rds gets the runbook's payload
    response = world.run("delete_rds")

    # Then it moves on to restore, and deletion_status is "completed" (the script loops until it is)
    assert response == {
        "operation_id": OPERATION_ID,
        "status": "success",
        "message": "Cluster does not exist, proceeding to restore",
        "target_cluster_id": TARGET_CLUSTER,
        "deletion_status": "completed",
        "next_step": "restore_snapshot",
    }
    assert world.rds_calls.calls == []


def test_restore_snapshot_restores_the_copy_under_the_target_name(world: World) -> None:
    # Given the old target cluster is gone
    world.advance("restore_snapshot")
    world.rds_calls.clear()

    # When restore_snapshot gets the runbook's payload
    response = world.run("restore_snapshot")

    # Then the runbook's response comes back and the cluster is restored with the configured network
    assert response == {
        "operation_id": OPERATION_ID,
        "status": "success",
        "message": "Cluster restore initiated",
        "target_cluster_id": TARGET_CLUSTER,
        "target_snapshot": COPY_NAME,
        "next_step": "check_restore_status",
    }
    assert world.rds_calls.names() == ["restore_db_cluster_from_snapshot"]
    cluster = world.client("rds").describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]
    assert [group["VpcSecurityGroupId"] for group in cluster["VpcSecurityGroups"]] == world.config[
        "target_security_groups"
    ]
    assert world.cluster_tags()["aurora-restore:operation-id"] == OPERATION_ID


def test_check_restore_status_reports_creating_then_available(world: World) -> None:
    # Given the restore was initiated and RDS still reports the cluster creating
    world.advance("check_restore_status")
    world.target_rds.clusters[TARGET_CLUSTER].status = "creating"
    world.rds_calls.clear()

    # When check_restore_status gets the runbook's payload
    creating = world.run("check_restore_status")

    # Then it answers the runbook's "in progress" response and touches nothing yet
    assert creating == {
        "operation_id": OPERATION_ID,
        "status": "success",
        "message": "Cluster restore in progress",
        "target_cluster_id": TARGET_CLUSTER,
        "cluster_status": "creating",
        "next_step": "check_restore_status",
    }
    assert world.rds_calls.calls == []

    # When the cluster is available: the master password is set and the writer created
    writer_pending = world.run("check_restore_status")
    assert writer_pending["cluster_status"] == "creating"
    names = world.rds_calls.names()
    assert (names.count("modify_db_cluster"), names.count("create_db_instance")) == (1, 1)
    assert names.index("modify_db_cluster") < names.index("create_db_instance")

    # When the writer is available too
    done = world.run("check_restore_status")

    # Then the runbook's "complete" response comes back
    assert done == {
        "operation_id": OPERATION_ID,
        "status": "success",
        "message": "Cluster restore completed",
        "target_cluster_id": TARGET_CLUSTER,
        "cluster_status": "available",
        "next_step": "setup_db_users",
    }


def test_setup_db_users_answers_the_runbook_response(world: World) -> None:
    # Given the restored cluster and its writer are available
    world.advance("setup_db_users")

    # When setup_db_users gets the runbook's payload
    response = world.run("setup_db_users")

    # Then the runbook's fields come back, with the cluster's endpoint
    assert response["status"] == "success", response
    endpoint = response.pop("cluster_endpoint")
    assert endpoint.startswith(f"{TARGET_CLUSTER}.cluster-") and endpoint.endswith(
        ".us-west-2.rds.amazonaws.com"
    )
    assert response == {
        "operation_id": OPERATION_ID,
        "status": "success",
        "message": f"Successfully set up 2 users for cluster {TARGET_CLUSTER}",
        "target_cluster_id": TARGET_CLUSTER,
        "cluster_port": 5432,
        "users_created": [
            {"username": "app_user", "privileges": ["SELECT", "INSERT", "UPDATE", "DELETE"]},
            {"username": "readonly_user", "privileges": ["SELECT"]},
        ],
        "next_step": "verify_restore",
    }


def test_verify_restore_reports_the_seed_schema(world: World) -> None:
    # Given the users are set up
    world.advance("verify_restore")

    # When verify_restore gets the runbook's payload
    response = world.run("verify_restore")

    # Then it reports the runbook's schemas and tables
    assert response["status"] == "success", response
    assert response["message"] == f"Successfully verified cluster {TARGET_CLUSTER}"
    assert response["target_cluster_id"] == TARGET_CLUSTER
    assert response["cluster_endpoint"].startswith(f"{TARGET_CLUSTER}.cluster-")
    assert response["cluster_port"] == 5432
    assert response["next_step"] == "notify_completion"
    info = response["schema_info"]
    assert sorted(info["schemas"]) == ["app_schema", "public"]
    assert sorted((table["schema"], table["name"]) for table in info["tables"]) == [
        ("app_schema", "orders"),
        ("public", "products"),
        ("public", "users"),
    ]


def test_notify_completion_says_success_with_the_outcome_and_no_next_step(world: World) -> None:
    # Given the restore is verified
    world.advance("notify_completion")

    # When notify_completion gets the runbook's payload
    response = world.run("notify_completion")

    # Then status is "success", the outcome is under `outcome`, next_step is null for the script
    assert response["operation_id"] == OPERATION_ID
    assert response["status"] == "success"
    assert response["outcome"] == "completed"
    assert response["next_step"] is None
    assert response["target_cluster_id"] == TARGET_CLUSTER
    assert response["message"] == f"Successfully sent completion notifications for cluster {TARGET_CLUSTER}"
    # And one message went to SNS and one to SQS, with the ids in the response
    assert response["sns_message_id"] and response["sqs_message_id"]
    [body] = world.notifications()
    notice = json.loads(body)
    assert notice["outcome"] == "completed"
    # And it says when the operation started, how long it took, and how long the target was out of use:
    # from the delete_rds run that started the deletion to setup_db_users' success
    state = world.state()
    assert state is not None
    history = state["history"]
    down = next(e for e in history if e["step"] == "delete_rds")
    ready = next(e for e in history if e["step"] == "setup_db_users")
    assert notice["started_at"] == datetime.fromisoformat(state["created_at"]).isoformat()
    assert notice["target_down_since"] == datetime.fromisoformat(down["started_at"]).isoformat()
    downtime = datetime.fromisoformat(ready["finished_at"]) - datetime.fromisoformat(down["started_at"])
    assert notice["target_downtime_s"] == round(downtime.total_seconds())
    assert 0 <= notice["target_downtime_s"] <= notice["took_s"]
    # And the choreography still routes to cleanup
    last = world.published_of("StepCompleted")[-1]
    assert (last["step"], last["next_step"]) == ("notify_completion", "cleanup")


def test_cleanup_answers_the_runbook_response(world: World) -> None:
    # Given the operation was notified
    world.advance("cleanup")

    # When cleanup gets the runbook's payload
    response = world.run("cleanup")

    # Then the runbook's fields come back, with next_step null
    assert response == {
        "operation_id": OPERATION_ID,
        "status": "success",
        "message": f"Successfully completed cleanup for operation {OPERATION_ID}",
        "target_cluster_id": TARGET_CLUSTER,
        "cleanup_results": {"snapshot_deleted": True, "state_data_deleted": False, "logs_deleted": False},
        "next_step": None,
    }
    # And the copy is gone, the lease released, the operation completed
    assert COPY_NAME not in world.target_rds.cluster_snapshots
    assert world.state(f"lease#{TARGET_CLUSTER}") is None
    state = world.state()
    assert state is not None and state["status"] == "completed"
    assert world.published_of("OperationFinished") == [
        {"operation_id": OPERATION_ID, "schema_version": "1.0", "outcome": "completed"}
    ]


@pytest.mark.parametrize("world_config", [{"delete_state": True, "delete_logs": True}])
def test_cleanup_deletes_state_and_logs_when_configured(world: World) -> None:
    # Given a configuration that deletes the state item and the step logs at cleanup
    world.advance("cleanup")
    assert world.log_objects()

    # When cleanup runs
    response = world.run("cleanup")

    # Then it reports all three deleted, and they are
    assert response["cleanup_results"] == {
        "snapshot_deleted": True,
        "state_data_deleted": True,
        "logs_deleted": True,
    }
    assert response["next_step"] is None
    assert world.log_objects() == {}
    # And of the state item only the steps' answers are left, for a day: no configuration, outputs,
    # history or overrides
    state = world.state()
    assert state is not None and state["status"] == "completed"
    assert not state["config"] and not state["outputs"] and not state["history"] and not state["overrides"]
    assert 0 < int(state["expires_at"]) - time.time() <= 86_400
    # So the runbook's script, behind the choreography, still gets its answers, and a late snapshot_check
    # replays instead of starting the restore over
    world.rds_calls.clear()
    assert world.run("cleanup") == response
    assert world.run("snapshot_check")["message"] == "Snapshot exists"
    assert world.run("delete_rds")["deletion_status"] == "completed"
    assert world.rds_calls.calls == []


@pytest.mark.parametrize(
    "status", ["migration-failed", "cloning-failed", "inaccessible-encryption-credentials-recoverable"]
)
def test_check_restore_status_fails_at_once_on_a_cluster_that_will_not_come_back(
    world: World, status: str
) -> None:
    """RDS's failure event may never come (events are best effort): the status itself fails the wait."""
    world.advance("check_restore_status")
    world.target_rds.clusters[TARGET_CLUSTER].status = status

    answer = world.run("check_restore_status")

    assert answer["status"] == "error" and f"is {status}" in answer["error"]["message"]
    assert world.state()["status"] == "failed"  # type: ignore[index]


@pytest.mark.parametrize("status", ["incompatible-network", "insufficient-capacity", "restore-error"])
def test_check_restore_status_fails_at_once_on_a_writer_that_will_not_come_back(
    world: World, status: str
) -> None:
    world.advance("check_restore_status")
    assert world.run("check_restore_status")["cluster_status"] == "creating"  # the writer is asked for
    writer = f"{TARGET_CLUSTER}-writer"
    world.target_rds.databases[writer].status = status

    answer = world.run("check_restore_status")

    assert answer["status"] == "error" and f"{writer} is {status}" in answer["error"]["message"]
    assert world.state()["status"] == "failed"  # type: ignore[index]


def test_check_restore_status_asks_again_for_a_writer_rds_refused_for_now(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after the master password is set the cluster may take no instance yet (InvalidDBClusterState,
    tolerated): the next check found no writer and failed the operation, the old target already gone. A
    refusal is looked at again soon (no event follows it); a writer RDS took is waited for by its events."""
    from datetime import timedelta

    from functions.rds import RdsAdapter
    from schemas.common import utcnow

    world.advance("check_restore_status")
    with monkeypatch.context() as busy:
        busy.setattr(RdsAdapter, "create_instance", lambda self, **kwargs: False)  # refused for now
        assert world.run("check_restore_status")["cluster_status"] == "creating"
    writer = f"{TARGET_CLUSTER}-writer"
    assert writer not in world.target_rds.databases
    state = world.state()
    assert state is not None and state["status"] == "waiting"
    assert "to be accepted" in state["waiting"]["waiting_for"]
    next_check = datetime.fromisoformat(state["waiting"]["next_check_at"])
    assert next_check - utcnow() <= timedelta(seconds=61)  # soon: no event follows a refusal

    again = world.run("check_restore_status")

    assert again["status"] == "success" and again["cluster_status"] == "creating"
    assert writer in world.target_rds.databases
    state = world.state()
    assert state is not None and state["status"] == "waiting"
    assert "to be available" in state["waiting"]["waiting_for"]
    assert world.run("check_restore_status")["next_step"] == "setup_db_users"


def test_the_writers_creation_refused_for_now_is_tolerated(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    from functions.rds import RdsAdapter

    class Busy:
        def create_db_instance(self, **kwargs: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "InvalidDBClusterStateFault", "Message": "resetting-master-credentials"}},
                "CreateDBInstance",
            )

    monkeypatch.setattr(RdsAdapter, "_client", property(lambda self: Busy()))
    assert RdsAdapter("us-west-2").create_instance(DBInstanceIdentifier="w", DBClusterIdentifier="c") is False


def test_a_delete_rds_that_fails_part_way_says_deletion_started(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer went, then the cluster's deletion failed: the notification and `status` must say the
    target was changed (they said nothing, and abort "left the target as it is")."""
    from functions.errors import AwsError
    from functions.notify import left_in_place
    from functions.rds import RdsAdapter
    from functions.state import DynamoStateStore
    from integration.world import STATE_TABLE, TARGET_REGION

    world.advance("delete_rds")

    def denied(self: RdsAdapter, cluster_id: str, final: str | None) -> bool:
        raise AwsError("deleting cluster: AccessDenied")

    monkeypatch.setattr(RdsAdapter, "delete_cluster", denied)
    assert world.run("delete_rds")["status"] == "error"

    assert world.rds_calls.names() == ["delete_db_instance"]
    state = DynamoStateStore(STATE_TABLE, TARGET_REGION).get(OPERATION_ID)
    assert state is not None and state.status == "failed"
    assert left_in_place(state)["deletion_started"] is True


def test_a_copy_snapshot_that_fails_after_joining_the_copy_lets_abort_give_up_its_share(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The share was taken before the copy call: unrecorded, abort could not give it up, and the copy
    outlived every later operation of that day (each cleanup found it still used)."""
    from aurora_restore import operations
    from aurora_restore.operations import Target
    from functions.errors import AwsError
    from functions.rds import RdsAdapter
    from functions.state import DynamoStateStore
    from integration.world import STATE_TABLE, TARGET_REGION

    world.advance("copy_snapshot")

    def refused(self: RdsAdapter, **kwargs: Any) -> bool:
        raise AwsError("copying: KMSKeyNotAccessibleFault")

    monkeypatch.setattr(RdsAdapter, "copy_cluster_snapshot", refused)
    assert world.run("copy_snapshot")["status"] == "error"

    aborted = operations.abort_operation(Target("dev", TARGET_REGION), OPERATION_ID)

    assert aborted.copy_left == COPY_NAME
    store = DynamoStateStore(STATE_TABLE, TARGET_REGION)
    store.join_copy(COPY_NAME, "a-later-operation")
    assert store.leave_copy(COPY_NAME, "a-later-operation") == 0  # its cleanup deletes the copy


@pytest.mark.parametrize(
    ("world_config", "shared", "kept"),
    [({}, False, False), ({}, True, True), ({"delete_copied_snapshot": False}, False, True)],
)
def test_the_copy_goes_once_the_restore_is_done_not_at_cleanup(
    world: World, world_config: dict[str, Any], shared: bool, kept: bool
) -> None:
    # Given an operation waiting for its restore (the copy maybe shared with another operation)
    world.advance("check_restore_status")
    if shared:
        DynamoStateStore(STATE_TABLE, TARGET_REGION).join_copy(COPY_NAME, "dev-restore-other")
        DynamoStateStore(STATE_TABLE, TARGET_REGION).create(
            OperationState(
                operation_id="dev-restore-other",
                next_step="check_copy_status",
                target_date=date(2023, 6, 1),
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )

    # When the restored cluster and its writer are available
    while world.run("check_restore_status")["next_step"] == "check_restore_status":
        pass

    # Then the copy is deleted now, unless another operation still uses it or the configuration keeps it:
    # a failure at setup_db_users or later no longer leaves a full-size snapshot behind
    assert (COPY_NAME in rds_backend(TARGET_REGION).cluster_snapshots) is kept
    # And a failure from here on does not name it as left in place; cleanup still answers as the runbook's
    state = world.state()
    released = "delete_copied_snapshot" not in world_config
    assert state is not None and state["outputs"].get("copy_released", False) is released
    for step in ("setup_db_users", "verify_restore", "notify_completion"):
        assert world.run(step)["status"] == "success"
    world.rds_calls.clear()
    assert world.run("cleanup")["cleanup_results"]["snapshot_deleted"] is not kept
    # And cleanup asks RDS nothing more about a copy given up already
    assert world.rds_calls.names() == []
