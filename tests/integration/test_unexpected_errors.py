"""A step whose work raises something we did not foresee fails the operation cleanly (recorded, notified,
named by its type only); AWS being out of reach or throttling is retried, never a failure, and a direct
call that meets it answers an error the caller can retry without failing the operation."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from functions.errors import AwsError
from integration.test_idempotency import bus_event
from integration.world import OPERATION_ID, World

pytestmark = pytest.mark.integration

SECRET_LOOKING = "hunter2-not-for-logs"


def copy_snapshot_started() -> dict[str, Any]:
    """The choreography's event that starts copy_snapshot for the runbook's operation."""
    return bus_event(
        "StepCompleted",
        {
            "operation_id": OPERATION_ID,
            "step": "snapshot_check",
            "next_step": "copy_snapshot",
            "message": "ok",
        },
    )


def _break_step(monkeypatch: pytest.MonkeyPatch, step: str, raised: Exception) -> None:
    """The step's handler, as deployed, with its logic raising `raised`."""
    runner = importlib.import_module(f"functions.{step}").handler.runner

    def logic(context: Any) -> Any:
        raise raised

    monkeypatch.setattr(runner, "logic", logic)


def test_an_unforeseen_error_is_recorded_as_a_failure_named_by_its_type_only(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an operation at copy_snapshot, whose work raises an error no check foresaw, its text holding
    # a value from the input
    world.advance("copy_snapshot")
    _break_step(monkeypatch, "copy_snapshot", KeyError(SECRET_LOOKING))

    # When the choreography's event starts it
    response = world.invoke(
        "copy_snapshot",
        copy_snapshot_started(),
    )

    # Then the operation failed at copy_snapshot with an InternalError that names the type, not the text
    assert response["status"] == "error" and response["error"]["type"] == "InternalError", response
    state = world.state()
    assert state is not None
    assert state["status"] == "failed" and state["failed_step"] == "copy_snapshot"
    assert "KeyError" in state["error"]["message"] and state["error"]["retryable"] is False
    assert state.get("claim") is None
    # And the failure went on the bus for the notification
    failed = world.published_of("StepFailed")
    assert [event["step"] for event in failed] == ["copy_snapshot"]
    # And the text of the error reached neither the state, the events nor the log
    assert SECRET_LOOKING not in str(state) and SECRET_LOOKING not in str(failed)
    assert SECRET_LOOKING not in capsys.readouterr().out


def test_aws_out_of_reach_is_retried_not_recorded_as_a_failure(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operation at copy_snapshot, and AWS out of reach past botocore's own retries
    world.advance("copy_snapshot")
    _break_step(
        monkeypatch,
        "copy_snapshot",
        EndpointConnectionError(endpoint_url="https://rds.us-west-2.amazonaws.com"),
    )
    event = copy_snapshot_started()

    # When the choreography's event starts it, then it raises a retryable AwsError, so the trigger comes again
    with pytest.raises(AwsError) as raised:
        world.invoke("copy_snapshot", event)
    assert raised.value.retryable

    # And the operation is still running at copy_snapshot, its claim dropped for the next delivery
    state = world.state()
    assert state is not None
    assert state["status"] == "running" and state["next_step"] == "copy_snapshot"
    assert state.get("claim") is None and not state.get("error")
    assert world.published_of("StepFailed") == []


def test_a_direct_call_meeting_throttling_answers_a_retryable_error_and_the_operation_goes_on(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operation at copy_snapshot, and RDS throttling past botocore's retries
    world.advance("copy_snapshot")
    _break_step(monkeypatch, "copy_snapshot", AwsError("CopyDBClusterSnapshot: Throttling", retryable=True))

    # When the runbook's direct call runs it
    response = world.run("copy_snapshot")

    # Then the caller gets an error it may retry
    assert response["status"] == "error" and response["error"]["retryable"] is True, response
    # And the operation is not failed: the step runs again, by the choreography or a new call
    state = world.state()
    assert state is not None
    assert state["status"] == "running" and state["next_step"] == "copy_snapshot" and not state.get("error")
    assert world.published_of("StepFailed") == []
    monkeypatch.undo()
    assert world.run("copy_snapshot")["status"] == "success"


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("ProvisionedThroughputExceededException", 400, True),
        ("InternalServerError", 500, True),
        ("AccessDeniedException", 400, False),
    ],
    ids=["throttled", "aws-fault", "denied"],
)
def test_an_aws_answer_no_adapter_handled_passes_or_fails_by_its_code(
    world: World, monkeypatch: pytest.MonkeyPatch, code: str, status: int, retryable: bool
) -> None:
    # Given an operation at copy_snapshot whose work gets an AWS error nothing turned into our own
    from botocore.exceptions import ClientError

    world.advance("copy_snapshot")
    error = ClientError(
        {"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "UpdateItem",
    )
    _break_step(monkeypatch, "copy_snapshot", error)
    event = copy_snapshot_started()

    # When the choreography's event starts it
    if retryable:
        # Then throttling and AWS's own faults come again, the operation still running
        with pytest.raises(AwsError, match=code):
            world.invoke("copy_snapshot", event)
        state = world.state()
        assert state is not None and state["status"] == "running" and state.get("claim") is None
    else:
        # Then anything else fails the operation, naming the call and the code
        response = world.invoke("copy_snapshot", event)
        assert response["error"] == {
            "type": "AwsError",
            "message": f"UpdateItem was refused: {code}",
            "retryable": False,
        }
        state = world.state()
        assert state is not None and state["status"] == "failed"
