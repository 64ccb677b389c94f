"""What the steps hand on, checked against its models: each direct answer, the outputs, the notices."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aurora_restore import operations
from aurora_restore.operations import Target
from functions.state import DynamoStateStore
from integration.test_idempotency import bus_event
from integration.world import OPERATION_ID, STATE_TABLE, STEP_MODULES, TARGET_CLUSTER, TARGET_REGION, World
from schemas.common import Step
from schemas.notice import OutcomeNotice
from schemas.outputs import StepOutputs
from schemas.responses import RESPONSE_BY_STEP, DirectResponse, ErrorResponse

pytestmark = pytest.mark.integration


def recorded_outputs() -> dict[str, Any]:
    state = DynamoStateStore(STATE_TABLE, TARGET_REGION).get(OPERATION_ID)
    assert state is not None
    return state.outputs


def check_answer(step: str, response: dict[str, Any]) -> None:
    """The answer is its step's runbook response, and the outputs so far read and dump back unchanged."""
    parsed = DirectResponse.model_validate(response)
    assert type(parsed.root) is RESPONSE_BY_STEP[Step(step)], response
    assert parsed.root.model_dump(exclude_unset=True) == response
    outputs = recorded_outputs()
    assert StepOutputs.of(outputs).recorded() == outputs


def check_notice(body: str) -> dict[str, Any]:
    """The notice reads as an OutcomeNotice, and is sent again byte for byte."""
    assert OutcomeNotice.model_validate_json(body).body() == body
    sent: dict[str, Any] = json.loads(body)
    return sent


@pytest.mark.parametrize("world_config", [{"final_snapshot": True, "final_snapshots_kept": 1}])
def test_every_answer_output_and_the_notice_of_a_whole_restore_match_their_models(world: World) -> None:
    # Given the runbook's world, with final snapshots kept (the outputs and results that adds)
    # When every step runs on the runbook's payload, a waiting one until it is done
    for step in STEP_MODULES:
        for _ in range(5):
            response = world.run(step)
            # Then each answer, and the outputs recorded so far, match their models
            check_answer(step, response)
            if response["next_step"] != step:
                break
        if step == Step.NOTIFY_COMPLETION:
            [body] = world.notifications()
            assert check_notice(body)["outcome"] == "completed"

    # And the outputs hold every key a whole restore records
    assert {"snapshot_name", "deletion_started", "final_snapshot", "users", "sns:completed"} <= set(
        recorded_outputs()
    )
    # And a late call gets its recorded answer, which matches too
    check_answer("snapshot_check", world.run("snapshot_check"))


def test_a_failure_its_notices_and_the_abort_match_their_models(world: World) -> None:
    # Given delete_rds refused (deletion protection): its answer is the error response
    world.target_rds.clusters[TARGET_CLUSTER].deletion_protection = True
    world.advance("delete_rds")
    refused = world.run("delete_rds")
    assert isinstance(DirectResponse.model_validate(refused).root, ErrorResponse)
    [failed] = world.published_of("StepFailed")

    # When its StepFailed reaches notify_completion, twice
    first = world.invoke("notify_completion", bus_event("StepFailed", failed))
    again = world.invoke("notify_completion", bus_event("StepFailed", failed))

    # Then both answers and the outputs match their models, and the failure notice does
    check_answer("notify_completion", first)
    check_answer("notify_completion", again)
    assert {"failures_notified", "failure_notifications", "sns:delete_rds#1"} <= set(recorded_outputs())
    [body] = world.notifications()
    assert check_notice(body)["failed_step"] == "delete_rds"

    # And so does the notice of the operator's abort
    assert operations.abort(Target("dev", TARGET_REGION), OPERATION_ID).status == "aborted"
    aborted = [check_notice(body) for body in world.notifications()]
    assert [notice["outcome"] for notice in aborted] == ["failed", "aborted"]
