"""The state store: one DynamoDB item per operation, a lease item per target cluster, a resource index.

Every transition of an operation is a conditional write on `version`, so a duplicate or stale trigger
changes nothing: the loser gets StaleWrite, re-reads and decides again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any

from botocore.exceptions import ClientError

from functions import aws
from functions.errors import AwsError, LeaseHeld, StaleWrite
from functions.observability import logger
from schemas.common import utcnow
from schemas.state import Lease, OperationState

# How long `delete_state` keeps an ended operation's step responses (StateStore.keep_results_only).
RESULTS_KEPT_DAYS = 1

LEASE_PREFIX = "lease#"
RESOURCE_PREFIX = "resource#"
COPY_PREFIX = "copy#"

# -- DynamoDB attribute values ------------------------------------------------------------------------------
# Our own few lines instead of boto3.dynamodb.types: importing any boto3 module imports all of boto3, which
# no handler needs otherwise. Same rules as boto3's TypeSerializer/TypeDeserializer: numbers go through
# DynamoDB's decimal context (38 digits, an inexact number is an error, never silently rounded), a float
# is stored as its shortest repr (as json.dumps writes it), a set of strings is a string set.
NUMBER_CONTEXT = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])


def _number(value: int | float | Decimal) -> str:
    number = NUMBER_CONTEXT.create_decimal(repr(value) if isinstance(value, float) else value)
    if not number.is_finite():
        raise TypeError(f"DynamoDB cannot store the number {value}")
    return str(number)


def to_attribute(value: Any) -> dict[str, Any]:
    """One Python value as a DynamoDB attribute value ({"S": ...}, {"N": ...}, {"M": ...}, ...)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float | Decimal):
        return {"N": _number(value)}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {str(key): to_attribute(inner) for key, inner in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(inner) for inner in value]}
    if isinstance(value, set | frozenset):
        return _set_attribute(value)
    raise TypeError(f"DynamoDB cannot store {type(value).__name__} values")


def _set_attribute(value: set[Any] | frozenset[Any]) -> dict[str, Any]:
    """A set as a string set (SS, sorted) or a number set (NS); DynamoDB has no empty or mixed set."""
    if value and all(isinstance(inner, str) for inner in value):
        return {"SS": sorted(value)}
    if value and all(
        isinstance(inner, int | float | Decimal) and not isinstance(inner, bool) for inner in value
    ):
        return {"NS": [_number(inner) for inner in value]}
    raise TypeError(f"DynamoDB stores only non-empty sets of strings or of numbers, not {value!r}")


def from_attribute(attribute: Mapping[str, Any]) -> Any:
    """One DynamoDB attribute value as Python: N is a Decimal, SS/NS a set, as boto3 answers."""
    ((kind, value),) = attribute.items()
    if kind in ("S", "BOOL", "B"):
        return value
    if kind == "NULL":
        return None
    if kind == "N":
        return NUMBER_CONTEXT.create_decimal(value)
    if kind == "M":
        return {key: from_attribute(inner) for key, inner in value.items()}
    if kind == "L":
        return [from_attribute(inner) for inner in value]
    if kind in ("SS", "BS"):
        return set(value)
    if kind == "NS":
        return {NUMBER_CONTEXT.create_decimal(inner) for inner in value}
    raise TypeError(f"unknown DynamoDB attribute type {kind}")


def to_item(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {key: to_attribute(value) for key, value in document.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: from_attribute(value) for key, value in item.items()}


def _json_document(document: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON dump as it is stored: floats as the Decimal of their JSON text."""
    return json.loads(json.dumps(document, default=str), parse_float=Decimal)


def plain_value(value: Any) -> Any:
    """Decimals (how DynamoDB numbers come back) as the int or float they stand for, all the way down."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain_value(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [plain_value(inner) for inner in value]
    return value


def _plain_document(item: dict[str, Any]) -> dict[str, Any]:
    """A stored item as a model's input: Decimals back to int or float, without our item_kind."""
    return {key: plain_value(value) for key, value in item.items() if key != "item_kind"}


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


# The DynamoDB implementation of functions.store.StateStore (the tests hold an in-memory one).
class DynamoStateStore:
    def __init__(self, table_name: str, region: str | None = None) -> None:
        self.table_name = table_name
        self._region = region

    def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        """One DynamoDB API call on our table with the shared client (functions.aws)."""
        answer: dict[str, Any] = getattr(aws.client("dynamodb", self._region), operation)(
            TableName=self.table_name, **request
        )
        return answer

    def _get_item(self, key: str, consistent: bool = False) -> dict[str, Any] | None:
        request: dict[str, Any] = {"Key": {"operation_id": {"S": key}}}
        if consistent:
            request["ConsistentRead"] = True
        item = self._call("get_item", **request).get("Item")
        return from_item(item) if item else None

    # -- operations ---------------------------------------------------------------------------------
    def get(self, operation_id: str) -> OperationState | None:
        try:
            item = self._get_item(operation_id, consistent=True)
        except ClientError as exc:
            raise AwsError(f"reading state of {operation_id}: {exc}", retryable=True) from exc
        if not item or item.get("item_kind", "operation") != "operation":
            return None
        return OperationState.model_validate(_plain_document(item))

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
        item = _json_document(state.model_dump(mode="json"))
        item["item_kind"] = "operation"
        request: dict[str, Any] = {"Item": to_item(item), "ConditionExpression": condition}
        if values:
            request["ExpressionAttributeValues"] = to_item(values)
        try:
            self._call("put_item", **request)
        except ClientError as exc:
            if _conditional_failed(exc):
                raise StaleWrite(state.operation_id) from exc
            raise AwsError(f"writing state of {state.operation_id}: {exc}", retryable=True) from exc

    def keep_results_only(self, state: OperationState, days: int = RESULTS_KEPT_DAYS) -> None:
        """What `delete_state` leaves of an ended operation: its id, status and each step's direct response,
        for `days` (the TTL). Its configuration, outputs, history and overrides are gone; a late direct call
        (the runbook's script, behind the choreography) still gets its step's answer instead of "no such
        operation", and a stray snapshot_check with its id cannot start the restore over."""
        kept = OperationState(
            operation_id=state.operation_id,
            status=state.status,
            target_date=state.target_date,
            results=state.results,
            version=state.version,
            created_at=state.created_at,
            updated_at=state.updated_at,
            expires_at=expiry(days),
        )
        self.save(kept)

    def scan_operations(self, status: str | None = None) -> list[OperationState]:
        request: dict[str, Any] = {
            "FilterExpression": "item_kind = :kind" + (" AND #s = :status" if status else ""),
            "ExpressionAttributeValues": to_item(
                {":kind": "operation", **({":status": status} if status else {})}
            ),
        }
        if status:
            request["ExpressionAttributeNames"] = {"#s": "status"}
        found: list[OperationState] = []
        while True:
            page = self._call("scan", **request)
            found.extend(
                OperationState.model_validate(_plain_document(from_item(item)))
                for item in page.get("Items", [])
            )
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- lease ----------------------------------------------------------------------------------------
    def acquire_lease(self, target_cluster_id: str, operation_id: str) -> Lease:
        """Take the target for `operation_id`. A holder whose state item is gone (it expired through its
        TTL, failed and never aborted) can no longer release it: its lease is taken over."""
        lease = Lease(target_cluster_id=target_cluster_id, holder=operation_id, acquired_at=utcnow())
        item = _json_document(lease.model_dump(mode="json"))
        item.update(operation_id=LEASE_PREFIX + target_cluster_id, item_kind="lease")
        expected = operation_id  # the holder the write may replace: this operation itself, at first
        for _ in range(3):
            try:
                self._call(
                    "put_item",
                    Item=to_item(item),
                    ConditionExpression="attribute_not_exists(operation_id) OR holder = :holder",
                    ExpressionAttributeValues={":holder": {"S": expected}},
                )
                return lease
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise AwsError(f"taking the lease on {target_cluster_id}: {exc}", retryable=True) from exc
            holder = self.lease_holder(target_cluster_id)
            if holder is None:
                continue  # released meanwhile
            refusal = self.lease_refusal(target_cluster_id, holder)
            if refusal is None:
                logger.warning("taking over a lease whose holder is gone", extra={"holder": holder})
                expected = holder
                continue
            raise LeaseHeld(refusal)
        raise LeaseHeld(f"the lease on {target_cluster_id} kept changing hands; try again", retryable=True)

    def lease_refusal(self, target_cluster_id: str, holder: str) -> str | None:
        """Why `holder`'s lease keeps another operation off the target, and what the operator can do; None
        when the holder's state item is gone (the lease is taken over)."""
        held_by = self.get(holder)
        if held_by is None:
            return None
        if held_by.status == "failed":
            advice = (
                f"which failed at {held_by.failed_step}: `aurora-restore resume {holder}` once its cause "
                f"is fixed, or `aurora-restore abort {holder}` to give the target up"
            )
        else:
            advice = (
                f"which is {held_by.status}: wait for it to finish or run `aurora-restore abort {holder}`"
            )
        return f"target cluster {target_cluster_id} is held by operation {holder}, {advice}"

    def lease_holder(self, target_cluster_id: str) -> str | None:
        item = self._get_item(LEASE_PREFIX + target_cluster_id, consistent=True)
        return str(item["holder"]) if item else None

    def release_lease(self, target_cluster_id: str, operation_id: str) -> bool:
        """Release if `operation_id` holds it: True when this call released it, False when it was free or
        another operation's (nothing changed)."""
        try:
            self._call(
                "delete_item",
                Key={"operation_id": {"S": LEASE_PREFIX + target_cluster_id}},
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":me": {"S": operation_id}},
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise AwsError(f"releasing the lease on {target_cluster_id}: {exc}", retryable=True) from exc
        return True

    # -- shared snapshot copies: every operation restoring one day's snapshot uses the same copy ----------
    def join_copy(self, copy_id: str, operation_id: str) -> None:
        """Count `operation_id` among the copy's users (idempotent)."""
        self._call(
            "update_item",
            Key={"operation_id": {"S": COPY_PREFIX + copy_id}},
            UpdateExpression="ADD #users :me SET item_kind = :kind",
            ExpressionAttributeNames={"#users": "users"},
            ExpressionAttributeValues={":me": {"SS": [operation_id]}, ":kind": {"S": "copy"}},
        )

    def leave_copy(self, copy_id: str, operation_id: str) -> int:
        """Stop counting `operation_id`; how many operations still use the copy (0: it may be deleted).

        Users that can no longer leave are not counted either: an operation whose state item is gone (a
        failure never resumed nor aborted, expired through its TTL) or that ended without leaving. Else the
        copy outlived every later operation. The count's item goes with the last user."""
        remaining = self._drop_copy_users(copy_id, [operation_id])
        stale = [user for user in remaining if self._no_longer_uses_copies(user)]
        if stale:
            logger.info("copy users that ended without leaving are dropped", extra={"users": sorted(stale)})
            remaining = self._drop_copy_users(copy_id, stale)
        if not remaining:
            try:
                self._call(
                    "delete_item",
                    Key={"operation_id": {"S": COPY_PREFIX + copy_id}},
                    ConditionExpression="attribute_not_exists(#users)",
                    ExpressionAttributeNames={"#users": "users"},
                )
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
                return self.leave_copy(copy_id, operation_id)  # another operation joined meanwhile
        return len(remaining)

    def _drop_copy_users(self, copy_id: str, users: list[str]) -> set[str]:
        answer = self._call(
            "update_item",
            Key={"operation_id": {"S": COPY_PREFIX + copy_id}},
            UpdateExpression="DELETE #users :gone",
            ExpressionAttributeNames={"#users": "users"},
            ExpressionAttributeValues={":gone": {"SS": users}},
            ReturnValues="ALL_NEW",
        )
        return set(from_item(answer.get("Attributes", {})).get("users", set()))

    def _no_longer_uses_copies(self, operation_id: str) -> bool:
        state = self.get(operation_id)
        return state is None or state.status in ("completed", "aborted")

    # -- resource index: which operation an RDS event belongs to ----------------------------------------
    def index_resource(self, kind: str, identifier: str, operation_id: str, ttl_days: int = 7) -> None:
        """`kind`: schemas.rds_event_ids' CLUSTER, INSTANCE or CLUSTER_SNAPSHOT (one name, several kinds)."""
        expires = int((utcnow() + timedelta(days=ttl_days)).timestamp())
        self._call(
            "put_item",
            Item=to_item(
                {
                    "operation_id": f"{RESOURCE_PREFIX}{kind}#{identifier}",
                    "item_kind": "resource",
                    "holder": operation_id,
                    "expires_at": expires,
                }
            ),
        )

    def lookup_resource(self, kind: str, identifier: str) -> str | None:
        item = self._get_item(f"{RESOURCE_PREFIX}{kind}#{identifier}")
        return str(item["holder"]) if item else None


def expiry(days: int, now: datetime | None = None) -> int:
    return int(((now or utcnow()) + timedelta(days=days)).timestamp())
