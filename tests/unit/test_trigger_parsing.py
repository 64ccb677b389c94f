"""The runner's trigger parsing: a runbook payload, one of our events, or an RDS event; anything else refused."""

from __future__ import annotations

from typing import Any

import pytest

from functions.engine.triggers import parse_trigger
from functions.errors import InvalidRequest


def envelope(source: str, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2023-06-01T12:00:00Z",
        "region": "us-west-2",
        "resources": [],
        "detail": detail,
    }


def test_the_runbook_payload_is_a_direct_trigger() -> None:
    # Given the runbook's copy_snapshot payload
    payload = {
        "operation_id": "dev-restore-2023-06-01",
        "snapshot_name": "dev-source-cluster-snapshot-2023-06-01",
    }

    # When parsed
    trigger = parse_trigger(payload)

    # Then it is direct, for that operation, and keeps the step's own fields
    assert (trigger.kind, trigger.label, trigger.operation_id) == (
        "direct",
        "direct",
        "dev-restore-2023-06-01",
    )
    assert trigger.payload["snapshot_name"] == "dev-source-cluster-snapshot-2023-06-01"


def test_a_step_completed_event_is_parsed_with_its_typed_detail() -> None:
    # Given a StepCompleted event as EventBridge delivers it
    detail = {
        "operation_id": "op-1",
        "schema_version": "1.0",
        "step": "snapshot_check",
        "next_step": "copy_snapshot",
        "status": "success",
        "message": "Snapshot exists",
        "result": {"snapshot_name": "s"},
    }

    # When parsed
    trigger = parse_trigger(envelope("aurora-restore", "StepCompleted", detail))

    # Then it is a StepCompleted trigger for that operation
    assert (trigger.kind, trigger.operation_id) == ("StepCompleted", "op-1")
    assert trigger.payload["next_step"] == "copy_snapshot"
    assert not trigger.is_direct


def test_an_rds_event_is_matched_on_its_event_id_and_identifier_without_prefix() -> None:
    # Given an RDS "cluster deleted" event whose SourceIdentifier carries the rds: prefix
    detail = {
        "EventCategories": ["deletion"],
        "SourceType": "CLUSTER",
        "SourceArn": "arn:aws:rds:us-west-2:123456789012:cluster:dev-target-cluster",
        "Date": "2023-06-01T12:00:00.000Z",
        "Message": "DB cluster deleted",
        "SourceIdentifier": "rds:dev-target-cluster",
        "EventID": "RDS-EVENT-0171",
    }

    # When parsed
    trigger = parse_trigger(envelope("aws.rds", "RDS DB Cluster Event", detail))

    # Then it is an RDS trigger labelled by its EventID, for the bare cluster id; the operation is looked up later
    # by the identifier and what it names (a cluster here: an instance may have the same name)
    assert (trigger.kind, trigger.label, trigger.operation_id) == ("rds", "RDS-EVENT-0171", None)
    assert trigger.rds is not None and trigger.rds.identifier == "dev-target-cluster"
    assert trigger.rds_kind == "cluster"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ([], "the payload must be a JSON object"),
        ({"target_date": "2023-06-01"}, "invalid payload: operation_id"),
        ({"operation_id": "bad id with spaces"}, "invalid operation_id"),
        ({"operation_id": "x" * 129}, "invalid operation_id"),
        (
            envelope("someone.else", "StepCompleted", {"operation_id": "op-1"}),
            "unexpected event someone.else",
        ),
        (envelope("aurora-restore", "NoSuchEvent", {"operation_id": "op-1"}), "unexpected event"),
        (
            envelope("aurora-restore", "StepCompleted", {"operation_id": "op-1"}),
            "invalid StepCompleted event",
        ),
        (envelope("aws.rds", "RDS DB Cluster Event", {"EventID": "RDS-EVENT-0171"}), "not an RDS event"),
        # A step echoes its input into messages, which go into the state item (DynamoDB's 400 KB)
        ({"operation_id": "op-1", "snapshot_name": "x" * 250_000}, "the payload is 250,0.. characters"),
        (
            envelope(
                "aurora-restore",
                "RestoreRequested",
                {"operation_id": "op-1", "overrides": {"log_prefix": "x" * 70_000}},
            ),
            "at most 64,000",
        ),
    ],
    ids=[
        "not-an-object",
        "no-operation-id",
        "bad-operation-id",
        "long-operation-id",
        "foreign-source",
        "unknown-detail-type",
        "incomplete-detail",
        "incomplete-rds-event",
        "huge-direct-payload",
        "huge-event-detail",
    ],
)
def test_anything_else_is_refused_with_a_reason(event: Any, expected: str) -> None:
    # Given / When an input that is none of the three
    # Then it is refused saying why
    with pytest.raises(InvalidRequest, match=expected):
        parse_trigger(event)
