"""The hand-off models: the runbook's direct responses, a step's recorded outputs, the outcome notice."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from functions.engine.responses import error_response
from functions.errors import InvalidRequest, UnknownOperation
from functions.sequence import RUNBOOK as RUNBOOK_STEPS
from schemas.common import Step
from schemas.notice import OutcomeNotice
from schemas.outputs import StepOutputs
from schemas.responses import RESPONSE_BY_STEP, DirectResponse, ErrorResponse

RUNBOOK = Path(__file__).resolve().parents[3] / "shared" / "seed" / "aurora-restore-runbook.md"
# Every "Expected response" of the runbook, by step, as `runbook_examples` reads them.
EXAMPLES: list[dict[str, Any]] = json.loads(Path(__file__).with_name("runbook_responses.json").read_text())


def _second_status_is_the_outcome(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The runbook's notify_completion example has `status` twice: we answer `status: "success"` and the
    second one, the outcome, under `outcome` (design.md)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        found["outcome" if key == "status" and key in found else key] = value
    return found


def runbook_examples(text: str) -> list[dict[str, Any]]:
    """Each ```json block of the runbook's numbered step sections, with its step."""
    steps = list(RUNBOOK_STEPS)  # the runbook numbers its ten steps (mask_data is ours, not the runbook's)
    parts = re.split(r"^### (\d+)\. [^\n]*\n", text, flags=re.M)
    return [
        {
            "step": steps[int(number) - 1].value,
            "response": json.loads(block, object_pairs_hook=_second_status_is_the_outcome),
        }
        for number, body in zip(parts[1::2], parts[2::2], strict=True)
        for block in re.findall(r"```json\n(.*?)```", body, flags=re.S)
    ]


def test_the_examples_are_the_runbooks_own() -> None:
    # Given the runbook in shared/ (beside the project)
    if not RUNBOOK.exists():
        pytest.skip("shared/seed/aurora-restore-runbook.md is not beside the project")

    # When its expected responses are read
    found = runbook_examples(RUNBOOK.read_text())

    # Then they are the examples checked here, every step's
    assert found == EXAMPLES
    assert {example["step"] for example in found} == {step.value for step in RUNBOOK_STEPS}


@pytest.mark.parametrize(
    "example", EXAMPLES, ids=[f"{e['step']}:{e['response']['message']}" for e in EXAMPLES]
)
def test_each_runbook_response_validates_as_its_steps_response(example: dict[str, Any]) -> None:
    # Given one of the runbook's expected responses
    response = example["response"]

    # When it is read as its step's response, and as any direct response
    model = RESPONSE_BY_STEP[Step(example["step"])]
    own = model.model_validate(response)
    direct = DirectResponse.model_validate(response)

    # Then it is that step's, field for field, in the runbook's order
    assert type(direct.root) is model
    assert own.model_dump(exclude_unset=True) == response
    assert list(own.model_dump(exclude_unset=True)) == list(response)


def test_a_response_with_a_field_the_runbook_does_not_have_is_refused() -> None:
    response = dict(EXAMPLES[0]["response"], snapshot_exist=True)

    with pytest.raises(ValidationError, match="snapshot_exist"):
        RESPONSE_BY_STEP[Step.SNAPSHOT_CHECK].model_validate(response)


@pytest.mark.parametrize(
    ("operation_id", "error"),
    [(None, InvalidRequest("invalid payload")), ("op-1", UnknownOperation("operation op-1 does not exist"))],
)
def test_the_runners_error_answer_validates_as_the_error_response(
    operation_id: str | None, error: InvalidRequest
) -> None:
    answer = error_response(operation_id, error)

    parsed = DirectResponse.model_validate(answer)

    assert isinstance(parsed.root, ErrorResponse)
    assert parsed.root.model_dump() == answer


# -- StepOutputs ----------------------------------------------------------------------------------------------
RECORDED = {
    "snapshot_name": "dev-source-cluster-snapshot-2023-06-01",
    "target_snapshot": "dev-source-cluster-snapshot-2023-06-01-copy",
    "copy_requested_at": "2026-12-01T08:00:00.123456+00:00",
    "target_snapshot_arn": None,
    "cluster_port": 5432,
    "users": ["app_user"],
    "sns:completed": "id-1",
    "sns:delete_rds#1": "id-2",
}


def test_recorded_outputs_keep_the_state_items_shape() -> None:
    # Given outputs as a state item holds them: a key set to None, the SNS ids under `sns:<notice>`
    outputs = StepOutputs.of(RECORDED)

    # Then they are typed, and dumped back key for key and value for value
    assert outputs.sns_message_ids == {"completed": "id-1", "delete_rds#1": "id-2"}
    assert outputs.copy_requested_at == datetime(2026, 12, 1, 8, 0, 0, 123456, tzinfo=UTC)
    assert outputs.recorded() == RECORDED
    assert StepOutputs().recorded() == {}


def test_merged_outputs_are_what_dict_update_gave() -> None:
    older = StepOutputs.of(RECORDED)
    newer = StepOutputs(cluster_port=5433, sns_message_ids={"completed": "id-3"}, deletion_started=True)

    assert older.merged(newer).recorded() == RECORDED | newer.recorded()


def test_a_misspelt_output_is_refused_read_or_assigned() -> None:
    with pytest.raises(ValidationError, match="snapshot_nam"):
        StepOutputs.of({"snapshot_nam": "x"})
    with pytest.raises(ValidationError, match="sns_message_ids"):
        StepOutputs.of({"sns:completed": 1})
    outputs = StepOutputs()
    with pytest.raises(ValueError, match="snapshot_nam"):
        outputs.snapshot_nam = "x"  # type: ignore[attr-defined]


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic's serializer warns of the mistyped value too
def test_a_mistyped_output_assigned_is_refused_when_recorded() -> None:
    outputs = StepOutputs()
    outputs.cluster_port = "abc"  # type: ignore[assignment]

    with pytest.raises(ValidationError, match="cluster_port"):
        outputs.recorded()


# -- OutcomeNotice ----------------------------------------------------------------------------------------------
def notice(**details: Any) -> OutcomeNotice:
    return OutcomeNotice.model_validate(
        {
            "operation_id": "op-1",
            "outcome": "failed",
            "target_cluster_id": "dev-target-cluster",
            "target_date": date(2023, 6, 1),
            "source_snapshot": None,
            "started_at": "2026-12-01T08:00:00.123456+00:00",
            "took_s": 60,
        }
        | details
    )


def test_a_notice_sends_the_keys_its_sender_set_sorted() -> None:
    sent = notice(
        failed_step="delete_rds",
        error={"type": "GuardRefused", "message": "refused", "retryable": False},
        left_in_place={"target_snapshot": "s-copy", "lease": None},
        cluster_endpoint=None,
    )

    assert sent.body() == json.dumps(
        {
            "operation_id": "op-1",
            "outcome": "failed",
            "target_cluster_id": "dev-target-cluster",
            "target_date": "2023-06-01",
            "source_snapshot": None,
            "started_at": "2026-12-01T08:00:00.123456+00:00",
            "took_s": 60,
            "failed_step": "delete_rds",
            "error": {"type": "GuardRefused", "message": "refused", "retryable": False},
            "left_in_place": {"target_snapshot": "s-copy", "lease": None},
            "cluster_endpoint": None,
        },
        sort_keys=True,
    )
    assert sent.subject == "aurora-restore failed: dev-target-cluster (op-1)"
    assert OutcomeNotice.model_validate_json(sent.body()).body() == sent.body()


def test_a_notice_passes_on_what_the_failure_event_carried() -> None:
    # an empty error (none known) and a key of left_in_place the model does not name are passed on as they are
    sent = json.loads(notice(error={}, left_in_place={"lease": None, "other": 1}).body())

    assert (sent["error"], sent["left_in_place"]) == ({}, {"lease": None, "other": 1})


def test_a_notice_with_a_key_no_sender_sets_is_refused() -> None:
    with pytest.raises(ValidationError, match="stoped_at"):
        notice(stoped_at="delete_rds")
