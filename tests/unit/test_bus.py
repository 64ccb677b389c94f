"""The event publisher: batches of at most 10, and PublishError naming every entry EventBridge refused."""

from __future__ import annotations

import json

import pytest

from functions.bus import EventPublisher
from functions.errors import PublishError
from schemas.common import Step
from schemas.events import OperationFinished, RecheckDue, StepCompleted, StepWaiting
from unit.fakes import FakeEvents, client_error, install


def rechecks(count: int) -> list[RecheckDue]:
    return [RecheckDue(operation_id=f"op-{index:02d}", step=Step.DELETE_RDS) for index in range(count)]


def test_events_go_out_in_batches_of_at_most_ten(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given 23 events
    events = FakeEvents()
    install(monkeypatch, events=events)

    # When they are published
    EventPublisher("aurora-restore-dev", "us-west-2").publish(rechecks(23))

    # Then three PutEvents calls carried 10, 10 and 3 entries, in order
    assert [len(batch) for batch in events.batches] == [10, 10, 3]
    sent = [json.loads(entry["Detail"])["operation_id"] for batch in events.batches for entry in batch]
    assert sent == [f"op-{index:02d}" for index in range(23)]


def test_each_entry_names_our_source_the_detail_type_and_the_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given one StepCompleted
    events = FakeEvents()
    install(monkeypatch, events=events)
    completed = StepCompleted(
        operation_id="op-1", step=Step.SNAPSHOT_CHECK, next_step=Step.COPY_SNAPSHOT, message="Snapshot exists"
    )

    # When published
    EventPublisher("aurora-restore-dev", "us-west-2").publish([completed])

    # Then the entry is ours, typed, on the environment's bus, with the detail as the model dumps it
    [[entry]] = events.batches
    assert entry["Source"] == "aurora-restore"
    assert entry["DetailType"] == "StepCompleted"
    assert entry["EventBusName"] == "aurora-restore-dev"
    assert json.loads(entry["Detail"]) == {
        "operation_id": "op-1",
        "schema_version": "1.0",
        "step": "snapshot_check",
        "next_step": "copy_snapshot",
        "status": "success",
        "message": "Snapshot exists",
        "result": {},
    }


def test_failed_entries_raise_publish_error_naming_each_of_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given EventBridge refuses every StepWaiting and OperationFinished entry
    events = FakeEvents(fail=frozenset({"StepWaiting", "OperationFinished"}))
    install(monkeypatch, events=events)
    waiting = StepWaiting(
        operation_id="op-waiting",
        step=Step.CHECK_COPY_STATUS,
        waiting_for="snapshot copy",
        next_check_at="2023-06-01T12:00:00Z",  # type: ignore[arg-type]
    )
    finished = OperationFinished(operation_id="op-finished", outcome="completed")

    # When 12 events, two of them refused in different batches, are published
    batch = [*rechecks(9), waiting, *rechecks(1), finished]
    with pytest.raises(PublishError) as raised:
        EventPublisher("aurora-restore-dev", "us-west-2").publish(batch)

    # Then every batch was still sent, and the error names both refused entries
    assert [len(sent) for sent in events.batches] == [10, 2]
    assert raised.value.failed == [
        {
            "DetailType": "StepWaiting",
            "operation_id": "op-waiting",
            "ErrorCode": "InternalFailure",
            "ErrorMessage": "try again",
        },
        {
            "DetailType": "OperationFinished",
            "operation_id": "op-finished",
            "ErrorCode": "InternalFailure",
            "ErrorMessage": "try again",
        },
    ]
    assert "2 event(s) were not put on the bus" in str(raised.value)


def test_a_refused_call_raises_publish_error_for_its_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given PutEvents itself fails
    class Refusing:
        def put_events(self, Entries: list[dict[str, str]]) -> dict[str, object]:  # noqa: N803
            raise client_error("AccessDeniedException", "PutEvents")

    install(monkeypatch, events=Refusing())

    # When three events are published
    with pytest.raises(PublishError) as raised:
        EventPublisher("aurora-restore-dev", "us-west-2").publish(rechecks(3))

    # Then the error carries each entry of the batch with the reason
    assert [item["DetailType"] for item in raised.value.failed] == ["RecheckDue"] * 3
    assert all("AccessDeniedException" in str(item["Error"]) for item in raised.value.failed)


def test_nothing_to_publish_makes_no_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no events
    events = FakeEvents()
    install(monkeypatch, events=events)

    # When published
    EventPublisher("aurora-restore-dev", "us-west-2").publish([])

    # Then EventBridge was not called
    assert events.batches == []
