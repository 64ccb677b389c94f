"""The state store against DynamoDB (moto): conditional writes on version, and the lease per target."""

from __future__ import annotations

from datetime import date

import pytest

from functions.errors import LeaseHeld, StaleWrite
from functions.state import StateStore
from integration.world import STATE_TABLE, TARGET_REGION
from schemas.common import Step, utcnow
from schemas.rds_event_ids import CLUSTER, CLUSTER_SNAPSHOT, INSTANCE
from schemas.state import OperationState

pytestmark = pytest.mark.integration


@pytest.fixture
def store(mocked_aws: None) -> StateStore:
    import boto3

    boto3.client("dynamodb", region_name=TARGET_REGION).create_table(
        TableName=STATE_TABLE,
        KeySchema=[{"AttributeName": "operation_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "operation_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return StateStore(STATE_TABLE, TARGET_REGION)


def new_state(operation_id: str = "dev-restore-store") -> OperationState:
    now = utcnow()
    return OperationState(
        operation_id=operation_id,
        next_step=Step.SNAPSHOT_CHECK,
        target_date=date(2023, 6, 1),
        created_at=now,
        updated_at=now,
    )


def test_create_then_save_bumps_the_version(store: StateStore) -> None:
    # Given a new operation
    created = store.create(new_state())

    # When it is read and saved
    read = store.get(created.operation_id)
    assert read is not None
    read.next_step = Step.COPY_SNAPSHOT
    store.save(read)

    # Then the stored item carries the change and version 2
    again = store.get(created.operation_id)
    assert again is not None
    assert (again.version, again.next_step) == (2, "copy_snapshot")


def test_creating_an_existing_operation_is_a_stale_write(store: StateStore) -> None:
    # Given an operation exists
    store.create(new_state())

    # When another writer creates the same operation id
    # Then it loses
    with pytest.raises(StaleWrite):
        store.create(new_state())


def test_a_stale_save_raises_and_changes_nothing(store: StateStore) -> None:
    # Given two readers of the same operation
    store.create(new_state())
    first = store.get("dev-restore-store")
    second = store.get("dev-restore-store")
    assert first is not None and second is not None

    # When the first saves, then the second saves what it read before
    first.next_step = Step.COPY_SNAPSHOT
    store.save(first)
    second.next_step = Step.CLEANUP

    # Then the second save raises StaleWrite, keeps its version, and the first write stands
    with pytest.raises(StaleWrite):
        store.save(second)
    assert second.version == 1
    stored = store.get("dev-restore-store")
    assert stored is not None and (stored.version, stored.next_step) == (2, "copy_snapshot")


def test_a_second_operation_gets_lease_held_naming_the_holder(store: StateStore) -> None:
    # Given operation A, running, holds the lease on the target
    store.create(new_state("dev-restore-a"))
    store.acquire_lease("dev-target-cluster", "dev-restore-a")

    # When operation B asks for it
    # Then it gets LeaseHeld naming A and what to do
    with pytest.raises(LeaseHeld, match="held by operation dev-restore-a, which is running: wait"):
        store.acquire_lease("dev-target-cluster", "dev-restore-b")
    assert store.lease_holder("dev-target-cluster") == "dev-restore-a"


def test_a_failed_holder_is_named_with_what_frees_the_target(store: StateStore) -> None:
    # Given operation A failed at delete_rds holding the lease (a failed operation keeps it)
    failed = new_state("dev-restore-a")
    failed.status, failed.failed_step = "failed", "delete_rds"
    store.create(failed)
    store.acquire_lease("dev-target-cluster", "dev-restore-a")

    # When operation B asks for it
    # Then the refusal says A failed, and that resume or abort frees the target (waiting would not)
    with pytest.raises(LeaseHeld) as raised:
        store.acquire_lease("dev-target-cluster", "dev-restore-b")
    assert "which failed at delete_rds" in raised.value.message
    assert "aurora-restore abort dev-restore-a" in raised.value.message and "wait" not in raised.value.message


def test_a_lease_whose_holder_is_gone_is_taken_over(store: StateStore) -> None:
    # Given a lease held by an operation whose state item is gone (expired through its TTL, never aborted)
    store.acquire_lease("dev-target-cluster", "dev-restore-gone")

    # When another operation asks for the target
    store.acquire_lease("dev-target-cluster", "dev-restore-b")

    # Then it holds it: nothing could have released the old one
    assert store.lease_holder("dev-target-cluster") == "dev-restore-b"


def test_the_holder_may_take_its_lease_again_and_release_it(store: StateStore) -> None:
    # Given operation A holds the lease
    store.create(new_state("dev-restore-a"))
    store.acquire_lease("dev-target-cluster", "dev-restore-a")

    # When A takes it again (a retried snapshot_check), and B tries to release it
    store.acquire_lease("dev-target-cluster", "dev-restore-a")
    released_by_b = store.release_lease("dev-target-cluster", "dev-restore-b")

    # Then B could not release it; A can, after which B may take it
    assert released_by_b is False
    assert store.lease_holder("dev-target-cluster") == "dev-restore-a"
    assert store.release_lease("dev-target-cluster", "dev-restore-a") is True
    assert store.release_lease("dev-target-cluster", "dev-restore-a") is False  # released already
    store.acquire_lease("dev-target-cluster", "dev-restore-b")
    assert store.lease_holder("dev-target-cluster") == "dev-restore-b"


def test_lease_and_resource_items_are_not_operations(store: StateStore) -> None:
    # Given an operation, a lease and a resource index entry in the same table
    store.create(new_state())
    store.acquire_lease("dev-target-cluster", "dev-restore-store")
    store.index_resource(CLUSTER, "dev-target-cluster", "dev-restore-store")

    # When operations are listed
    operations = store.scan_operations()

    # Then only the operation is listed, and the other items are found by their own lookups
    assert [state.operation_id for state in operations] == ["dev-restore-store"]
    assert store.get("lease#dev-target-cluster") is None
    assert store.lookup_resource(CLUSTER, "dev-target-cluster") == "dev-restore-store"


def test_a_cluster_and_an_instance_of_the_same_name_belong_to_their_own_operations(store: StateStore) -> None:
    # Given target x's writer instance `x-writer`, and another operation whose target cluster is `x-writer`
    store.index_resource(INSTANCE, "dev-target-cluster-writer", "dev-restore-x")
    store.index_resource(CLUSTER, "dev-target-cluster-writer", "dev-restore-y")

    # When RDS events name `x-writer`, then each finds the operation waiting on that kind of resource
    assert store.lookup_resource(INSTANCE, "dev-target-cluster-writer") == "dev-restore-x"
    assert store.lookup_resource(CLUSTER, "dev-target-cluster-writer") == "dev-restore-y"
    assert store.lookup_resource(CLUSTER_SNAPSHOT, "dev-target-cluster-writer") is None


def test_a_copy_user_that_can_no_longer_leave_is_not_counted(store: StateStore) -> None:
    # Given a copy used by a running operation, one whose state item expired (it failed and was never
    # resumed nor aborted) and one that ended without leaving
    running, ended = new_state("dev-restore-running"), new_state("dev-restore-ended")
    ended.status = "aborted"
    store.create(running)
    store.create(ended)
    for user in ("dev-restore-running", "dev-restore-expired", "dev-restore-ended", "dev-restore-me"):
        store.join_copy("snap-copy", user)

    # When an operation leaves it, the running one alone still counts
    assert store.leave_copy("snap-copy", "dev-restore-me") == 1

    # And when the last one leaves, the copy may be deleted and its count goes too
    assert store.leave_copy("snap-copy", "dev-restore-running") == 0
    assert not [
        item for item in store._call("scan")["Items"] if item["operation_id"]["S"] == "copy#snap-copy"
    ]
