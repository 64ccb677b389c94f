"""Running a step twice, or late, changes nothing: no second RDS mutation, the same answer, the same state."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from integration.world import (
    ACCOUNT,
    COPY_NAME,
    OPERATION_ID,
    SNAPSHOT_NAME,
    TARGET_CLUSTER,
    TARGET_REGION,
    TARGET_WRITER,
    World,
)

pytestmark = pytest.mark.integration


def bus_event(detail_type: str, detail: dict[str, Any], source: str = "aurora-restore") -> dict[str, Any]:
    """An event as EventBridge hands it to a Lambda target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": "2023-06-01T12:00:00Z",
        "region": TARGET_REGION,
        "resources": [],
        "detail": detail,
    }


def version(world: World) -> int:
    state = world.state()
    assert state is not None
    return int(state["version"])


@pytest.mark.parametrize(
    "step",
    [
        "snapshot_check",
        "copy_snapshot",
        "restore_snapshot",
        "setup_db_users",
        "verify_restore",
        "notify_completion",
        "cleanup",
    ],
)
def test_a_step_called_twice_does_its_work_once(world: World, step: str) -> None:
    # Given the operation has reached `step` and the step ran once with the runbook's payload
    world.advance(step)
    first = world.run(step)
    assert first["status"] == "success", first
    mutations = list(world.rds_calls.calls)
    recorded_version = version(world)

    # When the very same payload arrives again
    second = world.run(step)

    # Then the answer is the same and RDS saw no second mutating call
    assert second == first
    assert world.rds_calls.calls == mutations
    # And the state item was not written again
    assert version(world) == recorded_version


def test_notify_completion_twice_sends_one_notification(world: World) -> None:
    # Given the restore is verified
    world.advance("notify_completion")

    # When notify_completion is invoked twice
    first = world.run("notify_completion")
    second = world.run("notify_completion")

    # Then one message reached the queue, and both answers name it
    assert second == first
    assert len(world.notifications()) == 1
    assert len(world.published_of("StepCompleted")) == 1


def test_check_copy_status_in_progress_twice_answers_alike_and_mutates_nothing(world: World) -> None:
    # Given the copy is still copying
    world.advance("check_copy_status")
    world.target_rds.cluster_snapshots[COPY_NAME].status = "copying"

    # When the status is checked twice
    first = world.run("check_copy_status")
    second = world.run("check_copy_status")

    # Then both say in progress, RDS was not changed, and only one StepWaiting was published
    assert first == second
    assert first["copy_status"] == "in-progress"
    assert world.rds_calls.calls == []
    assert len(world.published_of("StepWaiting")) == 1


def test_delete_rds_twice_while_rds_is_deleting_deletes_once(world: World) -> None:
    # Given the copy is available and the old cluster has its writer
    world.advance("delete_rds")
    backend = world.target_rds
    writer = backend.databases[TARGET_WRITER]
    cluster = backend.clusters[TARGET_CLUSTER]

    # When delete_rds runs (the writer, then at once the cluster: RDS takes it once every instance is
    # deleting), and RDS takes its time deleting both (moto deletes at once)
    first = world.run("delete_rds")
    backend.databases[TARGET_WRITER] = writer
    writer.status = "deleting"
    backend.clusters[TARGET_CLUSTER] = cluster
    cluster.status = "deleting"
    second = world.run("delete_rds")

    # Then each was deleted once and both answers are the runbook's "in progress"
    assert first == second
    assert first["deletion_status"] == "in-progress"
    assert world.rds_calls.names() == ["delete_db_instance", "delete_db_cluster"]

    # When both are gone, delete_rds finds nothing left and deletes nothing more
    del backend.databases[TARGET_WRITER]
    del backend.clusters[TARGET_CLUSTER]
    third = world.run("delete_rds")
    assert third["deletion_status"] == "completed"
    assert world.rds_calls.names() == ["delete_db_instance", "delete_db_cluster"]


def test_check_restore_status_twice_while_the_writer_is_creating_creates_it_once(world: World) -> None:
    # Given the cluster is restored and available
    world.advance("check_restore_status")

    # When check_restore_status sets the password and creates the writer, which RDS is still creating
    first = world.run("check_restore_status")
    after_first = list(world.rds_calls.calls)
    world.target_rds.databases[f"{TARGET_CLUSTER}-writer"].status = "creating"
    second = world.run("check_restore_status")

    # Then the password was set once and the writer created once, with the same answer both times
    assert first == second
    assert first["cluster_status"] == "creating"
    assert world.rds_calls.calls == after_first
    names = world.rds_calls.names()
    assert (names.count("modify_db_cluster"), names.count("create_db_instance")) == (1, 1)


def test_a_stray_delete_rds_after_the_restore_replays_and_leaves_the_new_cluster_alone(world: World) -> None:
    # Given the operation restored the new cluster and is waiting for its writer
    world.advance("delete_rds")
    recorded: dict[str, Any] = {}
    for _ in range(3):
        recorded = world.run("delete_rds")
    assert recorded["deletion_status"] == "completed"
    world.run("restore_snapshot")
    world.run("check_restore_status")
    world.rds_calls.clear()
    before = version(world)

    # When a late delete_rds arrives with the runbook's payload
    late = world.run("delete_rds")

    # Then it answers the recorded result and touches nothing: the restored cluster is still there
    assert late == recorded
    assert world.rds_calls.calls == []
    assert world.cluster_exists()
    assert world.cluster_tags()["aurora-restore:operation-id"] == OPERATION_ID
    assert version(world) == before


def test_a_late_copy_snapshot_replays_its_recorded_result(world: World) -> None:
    # Given the operation is past copy_snapshot
    world.advance("copy_snapshot")
    recorded = world.run("copy_snapshot")
    world.run("check_copy_status")
    world.rds_calls.clear()

    # When copy_snapshot is invoked again
    late = world.run("copy_snapshot")

    # Then the recorded answer comes back and no copy is attempted
    assert late == recorded
    assert world.rds_calls.calls == []


def test_a_duplicated_step_completed_event_runs_the_next_step_once(world: World) -> None:
    # Given snapshot_check completed and its StepCompleted event is on the bus
    world.run("snapshot_check")
    [completed] = world.published_of("StepCompleted")
    event = bus_event("StepCompleted", completed)

    # When EventBridge delivers that event to copy_snapshot twice
    first = world.invoke("copy_snapshot", event)
    second = world.invoke("copy_snapshot", event)

    # Then the copy was made once and the second delivery got the recorded result
    assert first["target_snapshot"] == COPY_NAME
    assert second == first
    assert world.rds_calls.names() == ["copy_db_cluster_snapshot"]
    assert [e["step"] for e in world.published_of("StepCompleted")] == ["snapshot_check", "copy_snapshot"]


def test_a_late_rds_cluster_deleted_event_does_not_touch_the_restored_cluster(world: World) -> None:
    # Given the operation deleted the old cluster and restored the new one
    world.advance("check_restore_status")
    before = version(world)
    arn = world.target_rds.clusters[TARGET_CLUSTER].db_cluster_arn

    # When RDS's "cluster deleted" event for the old cluster arrives late
    rds_event = bus_event(
        "RDS DB Cluster Event",
        {
            "EventCategories": ["deletion"],
            "SourceType": "CLUSTER",
            "SourceArn": arn,
            "Date": "2023-06-01T12:00:00Z",
            "Message": "DB cluster deleted",
            "SourceIdentifier": f"rds:{TARGET_CLUSTER}",
            "EventID": "RDS-EVENT-0171",
        },
        source="aws.rds",
    )
    answer = world.invoke("delete_rds", rds_event)

    # Then delete_rds replays its recorded completion and changes nothing
    assert answer["deletion_status"] == "completed"
    assert world.rds_calls.calls == []
    assert world.cluster_exists()
    assert version(world) == before


def test_restore_requested_twice_starts_one_operation(world: World) -> None:
    # Given a RestoreRequested event
    event = bus_event(
        "RestoreRequested",
        {"operation_id": OPERATION_ID, "target_date": "2023-06-01", "schema_version": "1.0"},
    )

    # When it is delivered twice to snapshot_check
    first = world.invoke("snapshot_check", event)
    second = world.invoke("snapshot_check", event)

    # Then the second delivery replays the first result; one StepCompleted was published
    assert first["snapshot_name"] == SNAPSHOT_NAME
    assert second == first
    assert len(world.published_of("StepCompleted")) == 1
    state = world.state()
    assert state is not None
    assert [entry["trigger"] for entry in state["history"]] == ["RestoreRequested"]


def test_a_check_whose_wait_is_failed_under_it_leaves_no_claim(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Else notify_completion, started by the StepFailed, finds the claim held until it expires."""
    from datetime import timedelta

    from functions.rds import RdsAdapter
    from functions.state import DynamoStateStore
    from integration.world import COPY_NAME, STATE_TABLE, rds_backend
    from schemas.common import utcnow

    # Given an operation waiting for its copy
    world.advance("check_copy_status")
    rds_backend(TARGET_REGION).cluster_snapshots[COPY_NAME].status = "copying"
    assert world.run("check_copy_status")["copy_status"] == "in-progress"
    store = DynamoStateStore(STATE_TABLE, TARGET_REGION)

    # When a wake-up's check is under way (holding its claim) and the reconciler fails the wait, past
    # its deadline with the last look it asked for overdue, before the check records what it saw
    looked = RdsAdapter.cluster_snapshot

    def meanwhile(self: RdsAdapter, snapshot_id: str) -> Any:
        state = store.get(OPERATION_ID)
        if state is not None and state.status == "waiting" and state.waiting is not None:
            state.waiting.deadline = utcnow() - timedelta(minutes=2)
            state.waiting.next_check_at = utcnow() - timedelta(minutes=1)
            store.save(state)
            world.invoke("reconcile", {"source": "aws.events", "detail-type": "Scheduled Event"})
        return looked(self, snapshot_id)

    monkeypatch.setattr(RdsAdapter, "cluster_snapshot", meanwhile)
    world.invoke(
        "check_copy_status",
        bus_event("RecheckDue", {"operation_id": OPERATION_ID, "step": "check_copy_status"}),
    )

    # Then the operation failed at the wait, and no claim is left for the notification to run into
    state = store.get(OPERATION_ID)
    assert state is not None and state.status == "failed"
    assert state.error is not None and state.error.type == "WaitTimedOut"
    assert state.claim is None


def _writer_failed_event(world: World, date: str) -> dict[str, Any]:
    writer = f"{TARGET_CLUSTER}-writer"
    return bus_event(
        "RDS DB Instance Event",
        {
            "EventCategories": ["failure"],
            "SourceType": "DB_INSTANCE",
            "SourceArn": f"arn:aws:rds:{TARGET_REGION}:{ACCOUNT}:db:{writer}",
            "Date": date,
            "Message": "DB instance could not be created",
            "SourceIdentifier": writer,
            "EventID": "RDS-EVENT-0353",
        },
        source="aws.rds",
    )


def test_a_failure_event_from_before_this_restore_does_not_fail_it(world: World) -> None:
    """The writer's name is the same at every refresh, and an event may be delivered again hours later."""
    from datetime import timedelta

    from schemas.common import utcnow

    # Given the restored cluster is available and its writer was asked for
    world.advance("check_restore_status")
    assert world.run("check_restore_status")["cluster_status"] == "creating"
    world.target_rds.databases[f"{TARGET_CLUSTER}-writer"].status = "creating"

    # When an earlier refresh's "writer could not be created" arrives, a day late
    stale = (utcnow() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    answer = world.invoke("check_restore_status", _writer_failed_event(world, stale))

    # Then it is looked at as any check: the operation goes on
    assert answer["status"] == "success" and answer["cluster_status"] == "creating", answer
    assert world.state()["status"] == "waiting"  # type: ignore[index]

    # And one from this restore still fails it at once
    answer = world.invoke("check_restore_status", _writer_failed_event(world, utcnow().isoformat()))
    assert answer["status"] == "error" and "RDS-EVENT-0353" in answer["error"]["message"]
    assert world.state()["status"] == "failed"  # type: ignore[index]


def test_an_rds_event_ahead_of_the_resources_status_brings_the_next_check_soon(world: World) -> None:
    """RDS-EVENT-0005 (instance created) can come while the writer still configures its monitoring: it will
    not come again, so the next look is after recheck_interval_seconds, not the 15-minute safety re-check."""
    from datetime import datetime, timedelta

    from schemas.common import utcnow

    world.advance("check_restore_status")
    assert world.run("check_restore_status")["cluster_status"] == "creating"
    writer = f"{TARGET_CLUSTER}-writer"
    world.target_rds.databases[writer].status = "configuring-enhanced-monitoring"
    created = bus_event(
        "RDS DB Instance Event",
        {
            "EventCategories": ["creation"],
            "SourceType": "DB_INSTANCE",
            "SourceArn": f"arn:aws:rds:{TARGET_REGION}:{ACCOUNT}:db:{writer}",
            "Date": utcnow().isoformat(),
            "Message": "DB instance created",
            "SourceIdentifier": writer,
            "EventID": "RDS-EVENT-0005",
        },
        source="aws.rds",
    )

    answer = world.invoke("check_restore_status", created)

    assert answer["status"] == "success" and answer["cluster_status"] == "creating", answer
    state = world.state()
    assert state is not None and state["status"] == "waiting"
    next_check = datetime.fromisoformat(state["waiting"]["next_check_at"])
    assert next_check - utcnow() <= timedelta(seconds=61)
