"""The JSON Schema files in schemas/jsonschema/ are what the models export: a drift fails here."""

from __future__ import annotations

import json

import pytest

from schemas import export

EXPORTED = export.schemas()


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_each_schema_file_matches_its_model(name: str) -> None:
    # Given the model's schema as `make schemas` renders it
    expected = export.render(EXPORTED[name])

    # When the checked-in file is read
    path = export.OUT / f"{name}.json"
    assert path.exists(), f"{path} is missing: run `make schemas`"
    actual = path.read_text()

    # Then they are identical
    assert actual == expected, f"{path.name} drifted from the model: run `make schemas`"


def test_there_is_no_schema_file_without_a_model() -> None:
    # Given the files in schemas/jsonschema/
    files = {path.stem for path in export.OUT.glob("*.json")}

    # When compared with the exported models
    # Then none is left over from a removed model
    assert files == set(EXPORTED)


def test_every_bus_event_schema_requires_operation_id_and_carries_schema_version() -> None:
    # Given the schemas of the events on our bus
    names = [model.__name__ for model in export.BUS_EVENTS]

    # When each is inspected
    for name in names:
        schema = json.loads(export.render(EXPORTED[name]))

        # Then operation_id is required and schema_version is a property
        assert "operation_id" in schema["required"], name
        assert "schema_version" in schema["properties"], name


def test_the_hand_off_models_are_exported_with_the_others() -> None:
    # Given the exported schemas
    # Then the step outputs, the direct responses and the outcome notice are among them
    assert {"StepOutputs", "DirectResponse", "OutcomeNotice"} <= set(EXPORTED)

    # And the outputs' schema is the stored shape: no other key, the SNS ids as `sns:<notice>` keys
    outputs = EXPORTED["StepOutputs"]
    assert outputs["additionalProperties"] is False
    assert set(outputs["patternProperties"]) == {"^sns:"}
    assert "sns_message_ids" not in outputs["properties"]
    assert not outputs.get("required")

    # And a direct response is one step's response (the runbook's ten, mask_data's, swap_clusters') or the error
    responses = EXPORTED["DirectResponse"]
    assert len(responses["anyOf"]) == 13
    assert "ErrorResponse" in responses["$defs"]
