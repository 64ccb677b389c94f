"""The state store: one DynamoDB item per operation, a lease item per target cluster, a resource index.

Every transition of an operation is a conditional write on `version`, so a duplicate or stale trigger
changes nothing: the loser gets StaleWrite, re-reads and decides again.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from functions import aws
from functions.errors import AwsError, LeaseHeld, StaleWrite
from schemas.common import utcnow
from schemas.state import Lease, OperationState

LEASE_PREFIX = "lease#"
RESOURCE_PREFIX = "resource#"
COPY_PREFIX = "copy#"


def _to_item(document: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(document, default=str), parse_float=Decimal)


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, dict):
            return {key: plain(inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [plain(inner) for inner in value]
        return value

    return {key: plain(value) for key, value in item.items() if key != "item_kind"}


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class StateStore:
    def __init__(self, table_name: str, region: str | None = None) -> None:
        self.table_name = table_name
        self._table: Any = None
        self._region = region

    @property
    def table(self) -> Any:
        import boto3

        if self._table is None:
            resource = boto3.session.Session().resource(
                "dynamodb", region_name=self._region, config=aws.RETRY_CONFIG
            )
            self._table = resource.Table(self.table_name)
        return self._table

    # -- operations ---------------------------------------------------------------------------------
    def get(self, operation_id: str) -> OperationState | None:
        try:
            item = self.table.get_item(Key={"operation_id": operation_id}, ConsistentRead=True).get("Item")
        except ClientError as exc:
            raise AwsError(f"reading state of {operation_id}: {exc}", retryable=True) from exc
        if not item or item.get("item_kind", "operation") != "operation":
            return None
        return OperationState.model_validate(_from_item(item))

    def create(self, state: OperationState) -> OperationState:
        """Write a new operation; StaleWrite when one with that id exists already."""
        state.version = 1
        self._put(state, "attribute_not_exists(operation_id)", {})
        return state

    def save(self, state: OperationState) -> OperationState:
        """Write `state` if nobody wrote since it was read; bumps its version."""
        expected = state.version
        state.version = expected + 1
        state.updated_at = utcnow()
        try:
            self._put(state, "version = :expected", {":expected": expected})
        except StaleWrite:
            state.version = expected
            raise
        return state

    def _put(self, state: OperationState, condition: str, values: dict[str, Any]) -> None:
        item = _to_item(state.model_dump(mode="json"))
        item["item_kind"] = "operation"
        kwargs: dict[str, Any] = {"Item": item, "ConditionExpression": condition}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self.table.put_item(**kwargs)
        except ClientError as exc:
            if _conditional_failed(exc):
                raise StaleWrite(state.operation_id) from exc
            raise AwsError(f"writing state of {state.operation_id}: {exc}", retryable=True) from exc

    def delete(self, operation_id: str) -> None:
        self.table.delete_item(Key={"operation_id": operation_id})

    def scan_operations(self, status: str | None = None) -> list[OperationState]:
        kwargs: dict[str, Any] = {
            "FilterExpression": "item_kind = :kind" + (" AND #s = :status" if status else ""),
            "ExpressionAttributeValues": {":kind": "operation", **({":status": status} if status else {})},
        }
        if status:
            kwargs["ExpressionAttributeNames"] = {"#s": "status"}
        found: list[OperationState] = []
        while True:
            page = self.table.scan(**kwargs)
            found.extend(OperationState.model_validate(_from_item(item)) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- lease ----------------------------------------------------------------------------------------
    def acquire_lease(self, target_cluster_id: str, operation_id: str) -> Lease:
        lease = Lease(target_cluster_id=target_cluster_id, holder=operation_id, acquired_at=utcnow())
        item = _to_item(lease.model_dump(mode="json"))
        item.update(operation_id=LEASE_PREFIX + target_cluster_id, item_kind="lease")
        try:
            self.table.put_item(
                Item=item,
                ConditionExpression="attribute_not_exists(operation_id) OR holder = :me",
                ExpressionAttributeValues={":me": operation_id},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise AwsError(f"taking the lease on {target_cluster_id}: {exc}", retryable=True) from exc
            holder = self.lease_holder(target_cluster_id)
            raise LeaseHeld(
                f"target cluster {target_cluster_id} is held by operation {holder}; "
                f"wait for it to finish or run `aurora-restore abort {holder}`"
            ) from exc
        return lease

    def lease_holder(self, target_cluster_id: str) -> str | None:
        item = self.table.get_item(
            Key={"operation_id": LEASE_PREFIX + target_cluster_id}, ConsistentRead=True
        ).get("Item")
        return str(item["holder"]) if item else None

    def release_lease(self, target_cluster_id: str, operation_id: str) -> bool:
        """Release if `operation_id` holds it; True when released now or already free of this holder."""
        try:
            self.table.delete_item(
                Key={"operation_id": LEASE_PREFIX + target_cluster_id},
                ConditionExpression="attribute_not_exists(operation_id) OR holder = :me",
                ExpressionAttributeValues={":me": operation_id},
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise AwsError(f"releasing the lease on {target_cluster_id}: {exc}", retryable=True) from exc
        return True

    # -- shared snapshot copies: every operation restoring one day's snapshot uses the same copy ----------
    def join_copy(self, copy_id: str, operation_id: str) -> None:
        """Count `operation_id` among the copy's users (idempotent)."""
        self.table.update_item(
            Key={"operation_id": COPY_PREFIX + copy_id},
            UpdateExpression="ADD #users :me SET item_kind = :kind",
            ExpressionAttributeNames={"#users": "users"},
            ExpressionAttributeValues={":me": {operation_id}, ":kind": "copy"},
        )

    def leave_copy(self, copy_id: str, operation_id: str) -> int:
        """Stop counting `operation_id`; how many operations still use the copy (0: it may be deleted)."""
        answer = self.table.update_item(
            Key={"operation_id": COPY_PREFIX + copy_id},
            UpdateExpression="DELETE #users :me",
            ExpressionAttributeNames={"#users": "users"},
            ExpressionAttributeValues={":me": {operation_id}},
            ReturnValues="ALL_NEW",
        )
        return len(answer.get("Attributes", {}).get("users", set()))

    # -- resource index: which operation an RDS event belongs to ----------------------------------------
    def index_resource(self, identifier: str, operation_id: str, ttl_days: int = 7) -> None:
        expires = int((utcnow() + timedelta(days=ttl_days)).timestamp())
        self.table.put_item(
            Item={
                "operation_id": RESOURCE_PREFIX + identifier,
                "item_kind": "resource",
                "holder": operation_id,
                "expires_at": expires,
            }
        )

    def lookup_resource(self, identifier: str) -> str | None:
        item = self.table.get_item(Key={"operation_id": RESOURCE_PREFIX + identifier}).get("Item")
        return str(item["holder"]) if item else None


def expiry(days: int, now: datetime | None = None) -> int:
    return int(((now or utcnow()) + timedelta(days=days)).timestamp())
