"""What every StateStore does: the assertions the DynamoDB store (under moto) and MemoryStateStore share.

A test module subclasses StateStoreContract and gives it a `store` fixture: tests/unit/test_memory_store.py
runs it on the fake alone, tests/integration/test_state_store.py on both, so the fake cannot drift.
"""

from __future__ import annotations

import decimal
from datetime import date, timedelta
from typing import Any

import pytest

from functions.errors import LeaseHeld, StaleWrite
from functions.store import StateStore
from schemas.common import Step, utcnow
from schemas.rds_event_ids import CLUSTER, CLUSTER_SNAPSHOT, INSTANCE
from schemas.state import Claim, OperationState

TARGET = "dev-target-cluster"


def new_state(operation_id: str = "dev-restore-store") -> OperationState:
    now = utcnow()
    return OperationState(
        operation_id=operation_id,
        next_step=Step.SNAPSHOT_CHECK,
        target_date=date(2023, 6, 1),
        created_at=now,
        updated_at=now,
    )


def stored_keys(store: Any) -> set[str]:
    """Every item's key in the store's table, whatever its kind."""
    if hasattr(store, "items"):  # MemoryStateStore
        return set(store.items)
    return {item["operation_id"]["S"] for item in store._call("scan")["Items"]}


def read(store: StateStore, operation_id: str = "dev-restore-store") -> OperationState:
    state = store.get(operation_id)
    assert state is not None, operation_id
    return state


class OperationContract:
    """Operations: created once, then written only by whoever read the version that is stored."""

    def test_create_then_save_bumps_the_version(self, store: StateStore) -> None:
        # Given a new operation
        created = store.create(new_state())

        # When it is read and saved
        first = read(store, created.operation_id)
        first.next_step = Step.COPY_SNAPSHOT
        store.save(first)

        # Then the stored item carries the change and version 2
        again = read(store, created.operation_id)
        assert (again.version, again.next_step) == (2, "copy_snapshot")

    def test_create_writes_version_1_and_answers_the_state_it_was_given(self, store: StateStore) -> None:
        # Given a new operation at version 0
        state = new_state()

        # When it is created
        created = store.create(state)

        # Then the caller's object is answered, at version 1, and the stored item equals it
        assert created is state and state.version == 1
        assert read(store) == state

    def test_creating_an_existing_operation_is_a_stale_write(self, store: StateStore) -> None:
        # Given an operation exists
        store.create(new_state())

        # When another writer creates the same operation id
        # Then it loses, and the first one's item stands
        other = new_state()
        other.next_step = Step.CLEANUP
        with pytest.raises(StaleWrite):
            store.create(other)
        assert read(store).next_step == "snapshot_check"

    def test_a_stale_save_raises_and_changes_nothing(self, store: StateStore) -> None:
        # Given two readers of the same operation
        store.create(new_state())
        first, second = read(store), read(store)

        # When the first saves, then the second saves what it read before
        first.next_step = Step.COPY_SNAPSHOT
        store.save(first)
        second.next_step = Step.CLEANUP

        # Then the second save raises StaleWrite, keeps its version, and the first write stands
        with pytest.raises(StaleWrite):
            store.save(second)
        assert second.version == 1
        stored = read(store)
        assert (stored.version, stored.next_step) == (2, "copy_snapshot")

    def test_saving_an_operation_that_was_never_created_is_a_stale_write(self, store: StateStore) -> None:
        # Given an operation nobody created
        state = new_state()

        # When it is saved
        # Then the write loses, the version is as it was, and nothing is stored
        with pytest.raises(StaleWrite):
            store.save(state)
        assert state.version == 0
        assert store.get(state.operation_id) is None

    def test_save_stamps_the_time_of_the_write(self, store: StateStore) -> None:
        # Given an operation written a while ago
        state = new_state()
        state.updated_at = state.created_at = utcnow() - timedelta(hours=1)
        store.create(state)
        before = utcnow()

        # When it is saved
        saved = store.save(read(store))

        # Then updated_at is the time of that write, on the caller's object and in the store
        assert saved.updated_at >= before
        assert read(store).updated_at == saved.updated_at
        assert read(store).created_at == state.created_at

    def test_the_store_shares_no_object_with_its_callers(self, store: StateStore) -> None:
        # Given an operation created from an object its caller keeps changing
        state = new_state()
        store.create(state)
        state.outputs["changed"] = "after the write"

        # When a reader changes what it read, without saving
        got = read(store)
        got.outputs["changed"] = "by a reader"
        got.history.clear()

        # Then the stored operation is as it was written
        assert read(store).outputs == {}
        assert read(store) is not read(store)

    def test_values_come_back_as_dynamodb_gives_them(self, store: StateStore) -> None:
        # Given an operation with a claim, an outbox and outputs of every JSON kind
        state = new_state()
        state.claim = Claim(step=Step.SNAPSHOT_CHECK, token="t-1", until=utcnow() + timedelta(minutes=15))
        state.outbox = [{"detail_type": "StepCompleted", "detail": {"attempt": 1}}]
        state.outputs = {"ratio": 1.5, "whole": 2.0, "count": 3, "nested": {"list": [1.0, "a", None, True]}}
        store.create(state)

        # When it is read
        got = read(store)

        # Then everything is there; a whole float is a number DynamoDB gives back as an int
        assert (got.claim, got.outbox) == (state.claim, state.outbox)
        assert got.outputs == {"ratio": 1.5, "whole": 2, "count": 3, "nested": {"list": [1, "a", None, True]}}
        assert isinstance(got.outputs["whole"], int)

    def test_a_number_dynamodb_cannot_hold_is_refused_and_nothing_is_written(self, store: StateStore) -> None:
        # Given an operation with an output of 39 significant digits (DynamoDB holds 38)
        state = new_state()
        state.outputs["big"] = 10**38 + 1

        # When it is created, then it is refused before anything is written
        with pytest.raises(decimal.DecimalException):
            store.create(state)
        assert store.get(state.operation_id) is None

    def test_scan_lists_the_operations_with_a_status(self, store: StateStore) -> None:
        # Given a running, a failed and a completed operation
        for operation_id, status in (("op-run", "running"), ("op-fail", "failed"), ("op-done", "completed")):
            state = new_state(operation_id)
            state.status = status  # type: ignore[assignment]
            store.create(state)

        # When scanned, with and without a status
        # Then each status finds its own, and no status finds all
        assert [state.operation_id for state in store.scan_operations("failed")] == ["op-fail"]
        assert store.scan_operations("waiting") == []
        assert {state.operation_id for state in store.scan_operations()} == {"op-run", "op-fail", "op-done"}

    def test_keep_results_only_keeps_the_responses_and_drops_the_rest(self, store: StateStore) -> None:
        # Given an ended operation with its configuration, outputs, history and step responses
        state = new_state()
        state.status, state.config = "completed", {"target_cluster_id": TARGET}
        state.outputs, state.results = {"snapshot_name": "snap"}, {"cleanup": {"status": "success"}}
        store.create(state)
        ended = read(store)

        # When all but its results are dropped
        store.keep_results_only(ended, days=1)

        # Then its id, status and responses stay, for a day; the rest is gone; it was an ordinary save
        kept = read(store)
        assert (kept.status, kept.results, kept.version) == (
            "completed",
            {"cleanup": {"status": "success"}},
            2,
        )
        assert (kept.config, kept.outputs, kept.history) == ({}, {}, [])
        assert kept.expires_at is not None
        assert abs(kept.expires_at - (utcnow() + timedelta(days=1)).timestamp()) < 60
        with pytest.raises(StaleWrite):
            store.keep_results_only(ended)  # the version it was read at is gone


class LeaseContract:
    """The lease on a target cluster: one holder, taken over only from a holder whose state is gone."""

    def test_a_second_operation_gets_lease_held_naming_the_holder(self, store: StateStore) -> None:
        # Given operation A, running, holds the lease on the target
        store.create(new_state("dev-restore-a"))
        lease = store.acquire_lease(TARGET, "dev-restore-a")
        assert (lease.target_cluster_id, lease.holder) == (TARGET, "dev-restore-a")

        # When operation B asks for it
        # Then it gets LeaseHeld naming A and what to do
        with pytest.raises(LeaseHeld, match="held by operation dev-restore-a, which is running: wait"):
            store.acquire_lease(TARGET, "dev-restore-b")
        assert store.lease_holder(TARGET) == "dev-restore-a"

    def test_a_failed_holder_is_named_with_what_frees_the_target(self, store: StateStore) -> None:
        # Given operation A failed at delete_rds holding the lease (a failed operation keeps it)
        failed = new_state("dev-restore-a")
        failed.status, failed.failed_step = "failed", "delete_rds"  # type: ignore[assignment]
        store.create(failed)
        store.acquire_lease(TARGET, "dev-restore-a")

        # When operation B asks for it
        # Then the refusal says A failed, and that resume or abort frees the target (waiting would not)
        with pytest.raises(LeaseHeld) as raised:
            store.acquire_lease(TARGET, "dev-restore-b")
        assert "which failed at delete_rds" in raised.value.message
        assert "aurora-restore abort dev-restore-a" in raised.value.message
        assert "wait" not in raised.value.message
        assert store.lease_refusal(TARGET, "dev-restore-a") == raised.value.message

    def test_a_lease_whose_holder_is_gone_is_taken_over(self, store: StateStore) -> None:
        # Given a lease held by an operation whose state item is gone (expired through its TTL, never aborted)
        store.acquire_lease(TARGET, "dev-restore-gone")
        assert store.lease_refusal(TARGET, "dev-restore-gone") is None

        # When another operation asks for the target
        store.acquire_lease(TARGET, "dev-restore-b")

        # Then it holds it: nothing could have released the old one
        assert store.lease_holder(TARGET) == "dev-restore-b"

    def test_the_holder_may_take_its_lease_again_and_release_it(self, store: StateStore) -> None:
        # Given operation A holds the lease
        store.create(new_state("dev-restore-a"))
        store.acquire_lease(TARGET, "dev-restore-a")

        # When A takes it again (a retried snapshot_check), and B tries to release it
        store.acquire_lease(TARGET, "dev-restore-a")
        released_by_b = store.release_lease(TARGET, "dev-restore-b")

        # Then B could not release it; A can, after which B may take it
        assert released_by_b is False
        assert store.lease_holder(TARGET) == "dev-restore-a"
        assert store.release_lease(TARGET, "dev-restore-a") is True
        assert store.release_lease(TARGET, "dev-restore-a") is False  # released already
        assert store.lease_holder(TARGET) is None
        store.acquire_lease(TARGET, "dev-restore-b")
        assert store.lease_holder(TARGET) == "dev-restore-b"

    def test_lease_and_resource_items_are_not_operations(self, store: StateStore) -> None:
        # Given an operation, a lease and a resource index entry in the same table
        store.create(new_state())
        store.acquire_lease(TARGET, "dev-restore-store")
        store.index_resource(CLUSTER, TARGET, "dev-restore-store")

        # When operations are listed
        operations = store.scan_operations()

        # Then only the operation is listed, and the other items are found by their own lookups
        assert [state.operation_id for state in operations] == ["dev-restore-store"]
        assert store.get(f"lease#{TARGET}") is None
        assert store.lookup_resource(CLUSTER, TARGET) == "dev-restore-store"


class IndexAndCopyContract:
    """The resource index and the users of a shared snapshot copy."""

    def test_a_cluster_and_an_instance_of_the_same_name_belong_to_their_own_operations(
        self, store: StateStore
    ) -> None:
        # Given target x's writer instance `x-writer`, and another operation whose target cluster is `x-writer`
        store.index_resource(INSTANCE, "dev-target-cluster-writer", "dev-restore-x")
        store.index_resource(CLUSTER, "dev-target-cluster-writer", "dev-restore-y")

        # When RDS events name `x-writer`, then each finds the operation waiting on that kind of resource
        assert store.lookup_resource(INSTANCE, "dev-target-cluster-writer") == "dev-restore-x"
        assert store.lookup_resource(CLUSTER, "dev-target-cluster-writer") == "dev-restore-y"
        assert store.lookup_resource(CLUSTER_SNAPSHOT, "dev-target-cluster-writer") is None

    def test_a_resource_indexed_again_belongs_to_the_last_operation(self, store: StateStore) -> None:
        # Given a cluster name indexed for one operation, then for the next one restoring it
        store.index_resource(CLUSTER, TARGET, "dev-restore-first")
        store.index_resource(CLUSTER, TARGET, "dev-restore-next")

        # Then its events belong to the next one
        assert store.lookup_resource(CLUSTER, TARGET) == "dev-restore-next"

    def test_a_copy_user_that_can_no_longer_leave_is_not_counted(self, store: StateStore) -> None:
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
        assert "copy#snap-copy" not in stored_keys(store)

    def test_joining_twice_counts_once_and_leaving_an_unknown_copy_leaves_nothing(
        self, store: StateStore
    ) -> None:
        # Given two running operations, one of which joined the copy twice (a retried copy_snapshot)
        for user in ("dev-restore-a", "dev-restore-b"):
            store.create(new_state(user))
        store.join_copy("snap-copy", "dev-restore-a")
        store.join_copy("snap-copy", "dev-restore-a")
        store.join_copy("snap-copy", "dev-restore-b")

        # When one leaves, the other still counts; leaving twice changes nothing
        assert store.leave_copy("snap-copy", "dev-restore-a") == 1
        assert store.leave_copy("snap-copy", "dev-restore-a") == 1

        # And leaving a copy nobody joined counts nobody and leaves no item behind
        assert store.leave_copy("other-copy", "dev-restore-a") == 0
        assert "copy#other-copy" not in stored_keys(store)


class StateStoreContract(OperationContract, LeaseContract, IndexAndCopyContract):
    """Subclass as Test...(StateStoreContract) with a `store` fixture answering a fresh, empty store."""
