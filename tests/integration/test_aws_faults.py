"""AWS misbehaving as it does, past botocore's own retries: a throttle is tried again and never loses the
refresh; what is refused for good is a recorded failure; and what follows a committed transition (the
events, the step's record in S3) never undoes it or leaves the operation without its next trigger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions import aws
from functions.engine import writer
from functions.errors import StepError
from integration.test_idempotency import bus_event
from integration.test_wakeups import kinds, scheduled  # noqa: F401 - the fixture
from integration.world import (
    COPY_NAME,
    OPERATION_ID,
    TARGET_CLUSTER,
    TARGET_REGION,
    World,
    rds_backend,
    reset_function_caches,
)

pytestmark = pytest.mark.integration

# (service, method) -> given the call's arguments, None to let it through, or the error code to answer;
# "written:<code>": the call is made, then answered with the error (AWS applied it, the answer was lost).
Rule = Callable[[dict[str, Any]], str | None]


class Faults:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rules: dict[tuple[str, str], Rule] = {}
        original = aws.client
        rules = self.rules

        class Faulty:
            def __init__(self, service: str, client: Any) -> None:
                self._service, self._client = service, client

            def __getattr__(self, name: str) -> Any:
                found = getattr(self._client, name)
                rule = rules.get((self._service, name))
                if rule is None:
                    return found

                def call(**kwargs: Any) -> Any:
                    code = rule(kwargs)
                    if code is None:
                        return found(**kwargs)
                    if code.startswith("written:"):
                        found(**kwargs)
                        code = code.removeprefix("written:")
                    status = 500 if code.startswith("Internal") else 400
                    error = {"Error": {"Code": code, "Message": "injected"}}
                    raise ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": status}}, name)  # type: ignore[arg-type]

                return call

        monkeypatch.setattr(
            aws, "client", lambda service, region=None: Faulty(service, original(service, region))
        )

    def always(self, service: str, method: str, code: str) -> None:
        self.rules[(service, method)] = lambda _: code


def transition_write(kwargs: dict[str, Any]) -> bool:
    """The put of an operation's transition: a version-conditioned write with its events in the outbox."""
    item = kwargs.get("Item", {})
    return "version" in kwargs.get("ConditionExpression", "") and bool(item.get("outbox", {}).get("L"))


def completed(step: str, next_step: str) -> dict[str, Any]:
    return bus_event(
        "StepCompleted", {"operation_id": OPERATION_ID, "step": step, "next_step": next_step, "message": "ok"}
    )


def step_state(world: World) -> dict[str, Any]:
    state = world.state()
    assert state is not None
    return state


@pytest.mark.parametrize(
    ("step", "trigger", "service", "method"),
    [
        ("snapshot_check", None, "ssm", "get_parameter"),
        (
            "check_restore_status",
            completed("restore_snapshot", "check_restore_status"),
            "secretsmanager",
            "get_secret_value",
        ),
        ("setup_db_users", completed("check_restore_status", "setup_db_users"), "ssm", "get_parameter"),
        (
            "setup_db_users",
            completed("check_restore_status", "setup_db_users"),
            "secretsmanager",
            "get_secret_value",
        ),
    ],
)
def test_a_throttled_parameter_or_secret_read_is_tried_again_not_a_lost_refresh(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    trigger: dict[str, Any] | None,
    service: str,
    method: str,
) -> None:
    # Given an operation at `step` (for check_restore_status and on, the old target is gone), and SSM or
    # Secrets Manager throttling past botocore's retries (GetParameter's account-wide rate is low)
    if trigger is None:
        trigger = bus_event("RestoreRequested", {"operation_id": OPERATION_ID, "target_date": "2023-06-01"})
    else:
        world.advance(step)
    Faults(monkeypatch).always(service, method, "ThrottlingException")

    # When the choreography's event starts the step, then it raises a retryable error (the trigger comes
    # again) and the operation goes on: not failed, nothing notified, no claim left to hold the retry off
    with pytest.raises(StepError) as raised:
        world.invoke(step, trigger)
    assert raised.value.retryable and "ThrottlingException" in raised.value.message
    state = world.state()
    assert state is None or (state["status"] != "failed" and state.get("claim") is None)
    assert world.published_of("StepFailed") == []


def test_a_parameter_refused_for_good_is_still_a_recorded_failure(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    Faults(monkeypatch).always("ssm", "get_parameter", "AccessDeniedException")

    response = world.run("snapshot_check")

    assert response["status"] == "error" and response["error"]["type"] == "ConfigError", response
    assert "AccessDeniedException" in response["error"]["message"]
    assert step_state(world)["status"] == "failed"


def test_a_notification_refused_for_good_fails_the_operation_instead_of_being_retried_for_ever(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operation at notify_completion, and a topic that refuses every publish (its policy, its key)
    world.advance("notify_completion")
    Faults(monkeypatch).always("sns", "publish", "AuthorizationError")

    # When the choreography's event starts the step
    response = world.invoke("notify_completion", completed("verify_restore", "notify_completion"))

    # Then the operation failed there, saying why, rather than raising for a retry that meets the same
    assert response["status"] == "error" and "AuthorizationError" in response["message"], response
    state = step_state(world)
    assert state["status"] == "failed" and state["failed_step"] == "notify_completion"


@pytest.mark.parametrize("world_config", [{"delete_state": True}])
def test_a_step_record_s3_refuses_changes_nothing_else(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an operation at cleanup, configured to keep only its results at the end, and a log bucket that
    # refuses writes
    world.advance("cleanup")
    Faults(monkeypatch).always("s3", "put_object", "AccessDenied")

    # When cleanup runs
    response = world.run("cleanup")

    # Then it answers success (its work is done and committed), and the state is reduced to its results
    assert response["status"] == "success", response
    state = step_state(world)
    assert state["status"] == "completed" and not state["config"] and not state["history"]
    assert state["results"]["cleanup"]["status"] == "success"


def test_a_transition_written_but_answered_as_failed_still_puts_its_events_on_the_bus(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operation at copy_snapshot, and DynamoDB applying its transition but answering "condition
    # failed" (a 500 after the write, then botocore's retry meeting the write it made)
    world.advance("copy_snapshot")
    answered: list[str] = []

    def lost_answer(kwargs: dict[str, Any]) -> str | None:
        if answered or not transition_write(kwargs):
            return None
        answered.append("once")
        return "written:ConditionalCheckFailedException"

    Faults(monkeypatch).rules[("dynamodb", "put_item")] = lost_answer

    # When the choreography's event starts the step
    response = world.invoke("copy_snapshot", completed("snapshot_check", "copy_snapshot"))

    # Then the step carries on from its own write: its StepCompleted is on the bus now, not in the outbox
    assert answered and response["status"] == "success", response
    assert [event["step"] for event in world.published_of("StepCompleted")] == ["copy_snapshot"]
    state = step_state(world)
    assert state["next_step"] == "check_copy_status" and not state.get("outbox")


def test_a_throttled_transition_write_drops_the_claim_for_the_retry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operation at copy_snapshot, and DynamoDB throttling the transition's write
    world.advance("copy_snapshot")
    faults = Faults(monkeypatch)
    faults.rules[("dynamodb", "put_item")] = lambda kwargs: (
        "ProvisionedThroughputExceededException" if transition_write(kwargs) else None
    )

    # When the choreography's event starts the step, then it raises for a retry
    with pytest.raises(StepError) as raised:
        world.invoke("copy_snapshot", completed("snapshot_check", "copy_snapshot"))
    assert raised.value.retryable

    # And the retry finds the step free (no claim left until the function's timeout) and completes it
    state = step_state(world)
    assert state.get("claim") is None and state["next_step"] == "copy_snapshot"
    faults.rules.clear()
    assert world.invoke("copy_snapshot", completed("snapshot_check", "copy_snapshot"))["status"] == "success"
    assert step_state(world)["next_step"] == "check_copy_status"


def test_events_the_bus_refused_wait_in_the_outbox_and_the_wake_ups_still_move(
    scheduled: World,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = scheduled
    # Given an operation waiting for its copy, and the bus refusing events when the copy is done
    world.advance("check_copy_status")
    copy = rds_backend(TARGET_REGION).cluster_snapshots[COPY_NAME]
    copy.status = "copying"
    assert world.run("check_copy_status")["copy_status"] == "in-progress"
    assert kinds(world) == [("RecheckDue", "check_copy_status")]
    copy.status = "available"
    faults = Faults(monkeypatch)
    faults.always("events", "put_events", "InternalException")

    # When the wait's wake-up finds the copy done
    due = bus_event("RecheckDue", {"operation_id": OPERATION_ID, "step": "check_copy_status"})
    with pytest.raises(StepError) as raised:
        world.invoke("check_copy_status", due)

    # Then the transition stands, its StepCompleted waits in the outbox, and the wake-ups moved as for any
    # wait that ends: the wait's RecheckDue dropped, the watchdog armed for the stretch that begins
    assert raised.value.retryable
    state = step_state(world)
    assert state["next_step"] == "delete_rds" and [e["detail_type"] for e in state["outbox"]] == [
        "StepCompleted"
    ]
    assert kinds(world) == [("StallCheckDue", None)]

    # And the trigger's retry (a minute later, past the outbox's grace) puts the event on the bus
    faults.rules.clear()
    monkeypatch.setattr(writer, "OUTBOX_GRACE", timedelta(0))
    assert world.invoke("check_copy_status", due)["status"] == "success"
    assert [event["step"] for event in world.published_of("StepCompleted")] == ["check_copy_status"]
    assert not step_state(world).get("outbox")


@pytest.mark.parametrize("field", ["target_cluster_id", "source_cluster_id", "target_region"])
def test_a_later_direct_call_cannot_point_the_operation_at_another_cluster(world: World, field: str) -> None:
    # Given an operation at restore_snapshot: its target deleted, its lease on that target
    world.advance("restore_snapshot")
    other = {
        "target_cluster_id": "dev-other-cluster",
        "source_cluster_id": "dev-other-source",
        "target_region": "eu-west-1",
    }

    # When a direct call names another target (or source, or region)
    payload = {"operation_id": OPERATION_ID, "target_snapshot": COPY_NAME, field: other[field]}
    response = world.invoke("restore_snapshot", payload)

    # Then it is refused, naming the field, and nothing is restored anywhere
    assert response["status"] == "error" and response["error"]["type"] == "InvalidRequest", response
    assert f"{field} is " in response["message"] and "fixed" in response["message"]
    assert world.rds_calls.names() == []
    assert not world.cluster_exists("dev-other-cluster")


def test_a_later_direct_call_may_name_the_operations_own_target(world: World) -> None:
    world.advance("restore_snapshot")
    payload = {
        "operation_id": OPERATION_ID,
        "target_snapshot": COPY_NAME,
        "target_cluster_id": TARGET_CLUSTER.upper(),
    }

    response = world.invoke("restore_snapshot", payload)

    assert response["status"] == "success", response
    assert world.cluster_exists(TARGET_CLUSTER)


def test_a_notice_whose_queue_was_throttled_is_not_published_to_sns_twice(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operation at notify_completion, and SQS throttling after SNS took the notice
    world.advance("notify_completion")
    faults = Faults(monkeypatch)
    published: list[str] = []
    faults.rules[("sns", "publish")] = lambda kwargs: published.append(kwargs["TopicArn"]) or None  # type: ignore[func-returns-value]
    faults.always("sqs", "send_message", "ThrottlingException")
    trigger = completed("verify_restore", "notify_completion")

    # When the step fails for a retry, and the retry finds SQS back
    with pytest.raises(StepError):
        world.invoke("notify_completion", trigger)
    del faults.rules[("sqs", "send_message")]
    response = world.invoke("notify_completion", trigger)

    # Then the notice went to SNS once, and to SQS once, with the first SNS message id
    assert response["status"] == "success", response
    assert len(published) == 1
    assert len(world.notifications()) == 1
    assert response["sns_message_id"] == step_state(world)["outputs"]["sns:completed"]


def busy_once(faults: Faults, change: str) -> list[str]:
    """RDS refusing the first ModifyDBCluster carrying `change` with InvalidDBClusterStateFault."""
    refused: list[str] = []

    def rule(kwargs: dict[str, Any]) -> str | None:
        if change not in kwargs or refused:
            return None
        refused.append(change)
        return "InvalidDBClusterStateFault"

    faults.rules[("rds", "modify_db_cluster")] = rule
    return refused


@pytest.mark.parametrize("world_config", [{"allow_deletion_protected": True}])
def test_a_busy_target_refusing_to_drop_its_deletion_protection_is_asked_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a protected target (deletion allowed) that is busy when first asked to drop its protection
    world.target_rds.clusters[TARGET_CLUSTER].deletion_protection = True
    world.advance("delete_rds")
    refused = busy_once(Faults(monkeypatch), "DeletionProtection")
    reset_function_caches()

    # When delete_rds runs, then it waits instead of failing, and the next check deletes the cluster
    first = world.run("delete_rds")
    assert refused and first["status"] == "success" and first["next_step"] == "delete_rds", first
    assert world.cluster_exists()
    while world.run("delete_rds")["next_step"] == "delete_rds":
        pass
    assert not world.cluster_exists()
    assert step_state(world)["status"] == "running"


def test_a_restored_cluster_refusing_its_master_password_for_now_is_asked_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a restored cluster that is busy when first asked to take the target's master password
    world.advance("check_restore_status")
    refused = busy_once(Faults(monkeypatch), "MasterUserPassword")
    reset_function_caches()

    # When check_restore_status runs until the restore is done, then it waited instead of failing
    while world.run("check_restore_status")["next_step"] == "check_restore_status":
        pass
    assert refused
    state = step_state(world)
    assert state["status"] == "running" and state["outputs"]["master_password_set"] is True


@pytest.mark.parametrize("world_config", [{"delete_state": True}])
def test_an_ended_operation_whose_events_the_bus_refused_is_reduced_once_they_are_put(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions import reconcile

    # Given an operation at cleanup, configured to keep only its results, and the bus refusing events
    world.advance("cleanup")
    faults = Faults(monkeypatch)
    faults.always("events", "put_events", "InternalException")

    # When the runbook's cleanup call completes it: done, its OperationFinished in the outbox, kept whole
    assert world.run("cleanup")["status"] == "success"
    state = step_state(world)
    assert state["status"] == "completed" and state["outbox"] and state["config"]

    # Then the reconciler's scan puts the events on the bus, and only then reduces it to its results
    faults.rules.clear()
    monkeypatch.setattr(reconcile, "OUTBOX_GRACE", timedelta(0))
    world.invoke("reconcile", {"source": "aws.events", "detail-type": "Scheduled Event"})
    state = step_state(world)
    assert not state.get("outbox") and not state["config"] and not state["history"]
    assert [event["outcome"] for event in world.published_of("OperationFinished")] == ["completed"]
