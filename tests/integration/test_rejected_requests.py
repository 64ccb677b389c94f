"""A request put on the bus is never lost in silence: a RestoreRequested whose detail does not validate ends
as a failed operation with its reason and one notice (its operation_id usable), or as a RequestRejected
event and one notice (its operation_id not usable); the target is untouched either way."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aurora_restore import operations, render
from aurora_restore.operations import Target
from integration.test_idempotency import bus_event
from integration.world import (
    ACCOUNT,
    OPERATION_ID,
    TARGET_CLUSTER,
    TARGET_DATE,
    TARGET_REGION,
    World,
)

pytestmark = pytest.mark.integration

# Each malformed request (its detail beside a usable operation_id), and what the recorded reason says.
MALFORMED: dict[str, tuple[dict[str, Any], str]] = {
    "impossible-date": (
        {"target_date": "2023-13-45"},
        "target_date '2023-13-45' is not a date (YYYY-MM-DD)",
    ),
    "shell-text-date": (
        {"target_date": "yesterday; rm -rf /"},
        "target_date 'yesterday; rm -rf /' is not a date (YYYY-MM-DD)",
    ),
    "number-date": ({"target_date": 20230601}, "target_date 20230601 is not a date (YYYY-MM-DD)"),
    # pydantic alone takes a number as seconds since 1970: 0 was 1970-01-01
    "zero-date": ({"target_date": 0}, "target_date 0 is not a date (YYYY-MM-DD)"),
    "no-date": ({}, "target_date: Field required"),
    "overrides-not-an-object": (
        {"target_date": TARGET_DATE, "overrides": TARGET_CLUSTER},
        "overrides: Input should be a valid dictionary",
    ),
    "target-cluster-of-wrong-type": (
        {"target_date": TARGET_DATE, "overrides": {"target_cluster_id": 42}},
        "target_cluster_id (from event): Input should be a valid string",
    ),
    "target-cluster-missing": (
        {"target_date": TARGET_DATE, "overrides": {"target_cluster_id": None}},
        "target_cluster_id (from event): Input should be a valid string",
    ),
    "unknown-field": (
        {"target_date": TARGET_DATE, "target_cluster": TARGET_CLUSTER},
        "target_cluster: Extra inputs are not permitted",
    ),
    "too-large": (
        {"target_date": TARGET_DATE, "overrides": {"log_prefix": "x" * 70_000}},
        "characters: at most 64,000",
    ),
}


def sns_messages(world: World) -> list[dict[str, Any]]:
    """What the notification topic was given (moto keeps every publish)."""
    from moto.sns.models import sns_backends

    topic = sns_backends[ACCOUNT][TARGET_REGION].topics[world.topic_arn]
    return [json.loads(sent[1]) for sent in topic.sent_notifications]


def assert_target_untouched(world: World) -> None:
    assert world.rds_calls.calls == []
    assert world.state(f"lease#{TARGET_CLUSTER}") is None
    assert world.cluster_exists()


@pytest.mark.parametrize(("detail", "reason"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_request_with_a_usable_operation_id_ends_failed_with_its_reason_and_one_notice(
    world: World, detail: dict[str, Any], reason: str
) -> None:
    # Given a RestoreRequested put on the bus with a usable operation_id and a detail that does not validate
    request = bus_event("RestoreRequested", {"operation_id": OPERATION_ID, **detail})

    # When snapshot_check gets it, and notify_completion the StepFailed it announces
    response = world.invoke("snapshot_check", request)
    failures = world.published_of("StepFailed")
    assert len(failures) == 1, failures
    notified = world.invoke("notify_completion", bus_event("StepFailed", failures[0]))

    # Then the operation is recorded failed at snapshot_check, with the reason
    assert response["status"] == "error" and reason in response["message"], response
    state = world.state()
    assert state is not None
    assert (state["status"], state["failed_step"]) == ("failed", "snapshot_check")
    assert reason in state["error"]["message"]
    assert [e["outcome"] for e in world.published_of("OperationFinished")] == ["failed"]
    # And the subscribers are told once, on the topic and on the queue, why
    assert notified["status"] == "success", notified
    queued = [json.loads(body) for body in world.notifications()]
    assert len(queued) == 1 and len(sns_messages(world)) == 1
    assert (queued[0]["operation_id"], queued[0]["outcome"]) == (OPERATION_ID, "failed")
    assert reason in queued[0]["error"]["message"]
    # And nothing else changed: no RDS call, no lease, the target cluster still there
    assert_target_untouched(world)


def test_status_and_watch_show_the_rejected_request(world: World) -> None:
    # Given a RestoreRequested with an impossible date, rejected
    world.invoke(
        "snapshot_check",
        bus_event("RestoreRequested", {"operation_id": OPERATION_ID, "target_date": "2023-13-45"}),
    )

    # When the operator looks at it
    state = operations.load(Target("dev", TARGET_REGION), OPERATION_ID)

    # Then status and watch say it failed at snapshot_check, and why; status says to start a new one
    for text in (render.status_text(state), render.watch_ended(state)):
        assert "failed" in text and "2023-13-45" in text, text
    assert "snapshot_check" in render.status_text(state)
    assert "its request was refused: start a new operation" in render.status_text(state)
    assert "aurora-restore resume" not in render.status_text(state)


def test_a_refused_request_is_not_resumed_and_its_notice_says_so(world: World) -> None:
    # Given a RestoreRequested refused for its date (the operation records today's date in its place)
    request = {"operation_id": OPERATION_ID, "target_date": "2023-13-45"}
    world.invoke("snapshot_check", bus_event("RestoreRequested", request))
    world.invoke("notify_completion", bus_event("StepFailed", world.published_of("StepFailed")[0]))

    # Then the notice offers no resume, and a resume is refused: it would refresh a day nobody asked for
    (notice,) = [json.loads(body) for body in world.notifications()]
    assert notice["resume"] is None
    with pytest.raises(operations.OperatorError, match="failed on its request itself"):
        operations.resume(Target("dev", TARGET_REGION), OPERATION_ID)
    state = world.state()
    assert state is not None and state["status"] == "failed"
    assert_target_untouched(world)


def test_the_same_malformed_request_delivered_again_changes_nothing_and_notifies_nobody(world: World) -> None:
    # Given a malformed RestoreRequested, rejected and its failure notified
    request = bus_event("RestoreRequested", {"operation_id": OPERATION_ID, "target_date": "2023-13-45"})
    world.invoke("snapshot_check", request)
    world.invoke("notify_completion", bus_event("StepFailed", world.published_of("StepFailed")[0]))
    before = world.state()

    # When EventBridge delivers it again (at least once)
    again = world.invoke("snapshot_check", request)

    # Then it is answered, and the operation, the bus and the subscribers hear nothing more
    assert again["status"] == "error"
    assert world.state() == before
    assert len(world.published_of("StepFailed")) == 1
    assert len(world.notifications()) == 1 and len(sns_messages(world)) == 1


def test_a_malformed_request_never_changes_an_existing_operation(world: World) -> None:
    # Given an operation that has taken its first step
    assert world.run("snapshot_check")["status"] == "success"
    before = world.state()
    world.published()

    # When a malformed RestoreRequested names it
    bad = bus_event("RestoreRequested", {"operation_id": OPERATION_ID, "target_date": "yesterday; rm -rf /"})
    response = world.invoke("snapshot_check", bad)

    # Then it is answered with the reason, and the operation is as it was
    assert response["status"] == "error" and "is not a date" in response["message"]
    assert world.state() == before
    assert world.published_of("StepFailed") == []


def test_a_direct_payload_too_large_naming_a_new_operation_ends_failed_and_notified(world: World) -> None:
    # Given a direct snapshot_check payload over the size limit, naming a new operation
    payload = {"operation_id": OPERATION_ID, "target_date": TARGET_DATE, "log_prefix": "x" * 70_000}

    # When snapshot_check gets it, and notify_completion its StepFailed
    response = world.invoke("snapshot_check", payload)
    notified = world.invoke("notify_completion", bus_event("StepFailed", world.published_of("StepFailed")[0]))

    # Then the operation is failed with the reason, without the oversized value, and notified once
    assert response["status"] == "error" and "at most 64,000" in response["message"]
    state = world.state()
    assert (
        state is not None
        and state["status"] == "failed"
        and "xxxxxxxxxx" not in json.dumps(state, default=str)
    )
    assert notified["status"] == "success" and len(world.notifications()) == 1
    assert_target_untouched(world)


def test_a_later_steps_bad_direct_payload_records_nothing(world: World) -> None:
    # Given an operation waiting at copy_snapshot
    world.seed_operation(OPERATION_ID, "copy_snapshot")
    before = world.state()

    # When copy_snapshot is invoked directly with a payload over the size limit
    response = world.invoke("copy_snapshot", {"operation_id": OPERATION_ID, "snapshot_name": "x" * 70_000})

    # Then the caller gets the error, and the operation, the bus and the subscribers are as they were
    assert response["status"] == "error" and "at most 64,000" in response["message"]
    assert world.state() == before
    assert world.published() == [] and world.notifications() == []


@pytest.mark.parametrize(
    "detail",
    [
        {"target_date": TARGET_DATE},
        {"operation_id": "", "target_date": TARGET_DATE},
        {"operation_id": 42, "target_date": TARGET_DATE},
        {"operation_id": "dev restore; rm -rf /", "target_date": "2023-13-45"},
        {"operation_id": "y" * 200, "target_date": TARGET_DATE},
    ],
    ids=["missing", "empty", "number", "shell-text", "too-long"],
)
def test_a_request_without_a_usable_operation_id_is_announced_and_notified(
    world: World, detail: dict[str, Any]
) -> None:
    # Given a RestoreRequested whose operation_id cannot name an operation
    request = bus_event("RestoreRequested", detail)

    # When snapshot_check gets it, and notify_completion the RequestRejected it puts on the bus
    response = world.invoke("snapshot_check", request)
    rejected = world.published_of("RequestRejected")
    assert len(rejected) == 1, rejected
    notified = world.invoke("notify_completion", bus_event("RequestRejected", rejected[0]))

    # Then nothing is recorded, and the event says what was received and why it was refused
    assert response["status"] == "error" and "operation_id" in response["message"]
    assert world.table_items() == []
    event = rejected[0]
    assert (event["operation_id"], event["step"], event["request"]) == (
        None,
        "snapshot_check",
        "RestoreRequested",
    )
    assert "operation_id" in event["reason"]
    assert json.loads(event["received"]) == detail if len(event["received"]) < 500 else True
    # And the subscribers are told once, on the topic and on the queue
    assert notified["status"] == "success", notified
    queued = [json.loads(body) for body in world.notifications()]
    assert len(queued) == 1 and len(sns_messages(world)) == 1
    assert queued[0]["outcome"] == "rejected" and queued[0]["reason"] == event["reason"]
    assert queued[0]["received"] == event["received"]
    assert_target_untouched(world)


def test_what_was_received_is_cut_short_and_keeps_no_secret(world: World) -> None:
    # Given a request without a usable operation_id, with a password and a secret among its overrides and a
    # long value
    detail = {
        "target_date": TARGET_DATE,
        "overrides": {
            "master_password": "pw-in-the-request-1",
            "master_credentials_secret_id": "pasted-secret-value-2",
            "dsn": "postgresql://admin:pw-in-a-dsn-3@db:5432/app",
            "log_prefix": "z" * 2_000,
        },
    }

    # When it is rejected and notified
    world.invoke("snapshot_check", bus_event("RestoreRequested", detail))
    event = world.published_of("RequestRejected")[0]
    world.invoke("notify_completion", bus_event("RequestRejected", event))

    # Then what was received is cut to 500 characters, its full length said, and no secret is in it
    assert len(event["received"]) <= 500 and event["received_chars"] > 2_000
    everything = json.dumps(world.published()) + json.dumps(world.notifications())
    for secret in ("pw-in-the-request-1", "pasted-secret-value-2", "pw-in-a-dsn-3"):
        assert secret not in everything
    assert '"master_password": "***"' in event["received"]
