"""MemoryStateStore: functions.store.StateStore in a dict, with the DynamoDB store's conditions and items."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from functions.errors import LeaseHeld, StaleWrite
from functions.observability import logger
from functions.state import (
    COPY_PREFIX,
    LEASE_PREFIX,
    RESOURCE_PREFIX,
    RESULTS_KEPT_DAYS,
    DynamoStateStore,
    _json_document,
    _plain_document,
    from_item,
    to_item,
)
from schemas.common import utcnow
from schemas.state import Lease, OperationState


class MemoryStateStore:
    """One dict for the one table: items under the same keys, with the same attributes, as DynamoDB holds.

    Every write goes through the DynamoDB codec and every read builds new objects, so a caller never
    shares an object with the store, and a value DynamoDB would refuse is refused here too. Conditional
    writes check what functions.state's condition expressions check, and every read is consistent.
    tests/fakes/store_contract.py holds both stores to the same assertions (tests/unit/test_memory_store.py
    runs it on this one, tests/integration/test_state_store.py on both). As in moto, the TTL expires
    nothing: a test makes an item expire by deleting it from `items`.
    """

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def _read(self, key: str) -> dict[str, Any] | None:
        item = self.items.get(key)
        return from_item(to_item(item)) if item is not None else None

    def _write(self, document: dict[str, Any]) -> None:
        self.items[document["operation_id"]] = from_item(to_item(document))

    # -- operations ---------------------------------------------------------------------------------
    def get(self, operation_id: str) -> OperationState | None:
        item = self._read(operation_id)
        if not item or item.get("item_kind", "operation") != "operation":
            return None
        return OperationState.model_validate(_plain_document(item))

    def create(self, state: OperationState) -> OperationState:
        state.version = 1
        if state.operation_id in self.items:  # attribute_not_exists(operation_id)
            raise StaleWrite(state.operation_id)
        self._put(state)
        return state

    def save(self, state: OperationState) -> OperationState:
        expected = state.version
        state.version = expected + 1
        state.updated_at = utcnow()
        stored = self.items.get(state.operation_id)
        if stored is None or stored.get("version") != expected:  # version = :expected
            state.version = expected
            raise StaleWrite(state.operation_id)
        self._put(state)
        return state

    def _put(self, state: OperationState) -> None:
        item = _json_document(state.model_dump(mode="json"))
        item["item_kind"] = "operation"
        self._write(item)

    def keep_results_only(self, state: OperationState, days: int = RESULTS_KEPT_DAYS) -> None:
        """The DynamoDB store's own code (it writes only through save()), so the kept fields cannot drift."""
        DynamoStateStore.keep_results_only(cast(DynamoStateStore, self), state, days)

    def scan_operations(self, status: str | None = None) -> list[OperationState]:
        return [
            OperationState.model_validate(_plain_document(item))
            for item in (self._read(key) for key in list(self.items))
            if item is not None
            and item.get("item_kind") == "operation"
            and (status is None or item.get("status") == status)
        ]

    # -- lease ----------------------------------------------------------------------------------------
    def acquire_lease(self, target_cluster_id: str, operation_id: str) -> Lease:
        holder = self.lease_holder(target_cluster_id)
        if holder is not None and holder != operation_id:
            refusal = self.lease_refusal(target_cluster_id, holder)
            if refusal is not None:
                raise LeaseHeld(refusal)
            logger.warning("taking over a lease whose holder is gone", extra={"holder": holder})
        lease = Lease(target_cluster_id=target_cluster_id, holder=operation_id, acquired_at=utcnow())
        item = _json_document(lease.model_dump(mode="json"))
        item.update(operation_id=LEASE_PREFIX + target_cluster_id, item_kind="lease")
        self._write(item)
        return lease

    def lease_refusal(self, target_cluster_id: str, holder: str) -> str | None:
        """The DynamoDB store's own code (it reads only through get()), so the operator's advice is the same."""
        return DynamoStateStore.lease_refusal(cast(DynamoStateStore, self), target_cluster_id, holder)

    def lease_holder(self, target_cluster_id: str) -> str | None:
        item = self._read(LEASE_PREFIX + target_cluster_id)
        return str(item["holder"]) if item else None

    def release_lease(self, target_cluster_id: str, operation_id: str) -> bool:
        key = LEASE_PREFIX + target_cluster_id
        if self.items.get(key, {}).get("holder") != operation_id:  # holder = :me
            return False
        del self.items[key]
        return True

    # -- shared snapshot copies -----------------------------------------------------------------------
    def join_copy(self, copy_id: str, operation_id: str) -> None:
        key = COPY_PREFIX + copy_id
        item = self._read(key) or {"operation_id": key}
        item.update(users=item.get("users", set()) | {operation_id}, item_kind="copy")
        self._write(item)

    def leave_copy(self, copy_id: str, operation_id: str) -> int:
        remaining = self._drop_copy_users(copy_id, [operation_id])
        stale = [user for user in remaining if self._no_longer_uses_copies(user)]
        if stale:
            logger.info("copy users that ended without leaving are dropped", extra={"users": sorted(stale)})
            remaining = self._drop_copy_users(copy_id, stale)
        if not remaining:
            self.items.pop(COPY_PREFIX + copy_id, None)
        return len(remaining)

    def _drop_copy_users(self, copy_id: str, users: list[str]) -> set[str]:
        """UpdateItem's DELETE on the string set: an emptied set is no attribute at all, as in DynamoDB."""
        key = COPY_PREFIX + copy_id
        item = self._read(key) or {"operation_id": key}
        remaining = set(item.pop("users", set())) - set(users)
        if remaining:
            item["users"] = remaining
        self._write(item)
        return remaining

    def _no_longer_uses_copies(self, operation_id: str) -> bool:
        state = self.get(operation_id)
        return state is None or state.status in ("completed", "aborted")

    # -- resource index ---------------------------------------------------------------------------------
    def index_resource(self, kind: str, identifier: str, operation_id: str, ttl_days: int = 7) -> None:
        expires = int((utcnow() + timedelta(days=ttl_days)).timestamp())
        self._write(
            {
                "operation_id": f"{RESOURCE_PREFIX}{kind}#{identifier}",
                "item_kind": "resource",
                "holder": operation_id,
                "expires_at": expires,
            }
        )

    def lookup_resource(self, kind: str, identifier: str) -> str | None:
        item = self._read(f"{RESOURCE_PREFIX}{kind}#{identifier}")
        return str(item["holder"]) if item else None
