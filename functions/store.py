"""The state store's interface: what the engine asks of the store of operations, leases and indexes."""

from __future__ import annotations

from typing import Protocol

from schemas.state import Lease, OperationState


class StateStore(Protocol):
    """One item per operation written on `version`, a lease per target cluster, shared-copy users and a
    resource index. functions.state's DynamoDB store is the real one; the tests keep an in-memory one."""

    # -- operations
    def get(self, operation_id: str) -> OperationState | None:
        """The operation as last written, or None (no such item, or a lease, copy or resource item)."""
        ...

    def create(self, state: OperationState) -> OperationState:
        """Write a new operation at version 1; StaleWrite when an item with its id exists already."""
        ...

    def save(self, state: OperationState) -> OperationState:
        """Write `state` if the stored version is still the one it was read at, bumping version and
        updated_at; StaleWrite (and the version as it was) when another writer came first."""
        ...

    def keep_results_only(self, state: OperationState, days: int = ...) -> None:
        """Save what `delete_state` keeps of an ended operation: its id, status and step responses."""
        ...

    def scan_operations(self, status: str | None = None) -> list[OperationState]:
        """Every operation (with `status`, when given), in no particular order."""
        ...

    # -- the lease on a target cluster
    def acquire_lease(self, target_cluster_id: str, operation_id: str) -> Lease:
        """Take the target, or take it over from a holder whose state item is gone; LeaseHeld if held."""
        ...

    def lease_refusal(self, target_cluster_id: str, holder: str) -> str | None:
        """Why `holder` keeps others off the target; None when the holder's state item is gone."""
        ...

    def lease_holder(self, target_cluster_id: str) -> str | None: ...

    def release_lease(self, target_cluster_id: str, operation_id: str) -> bool:
        """True when `operation_id` held the lease and this call released it."""
        ...

    # -- shared snapshot copies
    def join_copy(self, copy_id: str, operation_id: str) -> None: ...

    def leave_copy(self, copy_id: str, operation_id: str) -> int:
        """How many operations still use the copy once `operation_id` (and users that ended) left."""
        ...

    # -- resource index: which operation an RDS event belongs to
    def index_resource(self, kind: str, identifier: str, operation_id: str, ttl_days: int = ...) -> None: ...

    def lookup_resource(self, kind: str, identifier: str) -> str | None: ...
