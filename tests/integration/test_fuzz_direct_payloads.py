"""Input hardening, fuzzed: a bad direct payload to any of the ten functions, invoked in-process under moto,
comes back as an error response with no RDS mutation and no lease taken (tests/unit/test_fuzz.py fuzzes the
triggers and models without AWS, with the same strategies)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit.test_fuzz import json_values, keys, operation_ids

from functions.engine.triggers import parse_trigger
from functions.errors import InvalidRequest
from schemas.common import Step

pytestmark = pytest.mark.integration

DIRECT_STEPS = [step.value for step in Step]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    step=st.sampled_from(DIRECT_STEPS),
    payload=st.dictionaries(keys, json_values, max_size=5)
    | st.fixed_dictionaries({"operation_id": operation_ids}, optional={"target_date": json_values})
    | json_values,
)
def test_a_bad_direct_payload_is_an_error_response_that_changes_nothing(
    world: Any, step: str, payload: Any
) -> None:
    # Given the runbook's world and a fuzzed direct payload for one of the ten functions
    if _is_valid_start(step, payload):
        return  # a well-formed request is not this test's business
    before = list(world.rds_calls.calls)
    # When the function is invoked with it
    response = world.invoke(step, payload)
    # Then it answers with an error, made no mutating RDS call and took no lease
    assert response["status"] == "error", response
    # (StepError: a refusal, when an earlier example left that operation failed)
    assert response["error"]["type"] in {"InvalidRequest", "UnknownOperation", "ConfigError", "StepError"}
    assert world.rds_calls.calls == before
    leases = [item for item in world.table_items() if str(item.get("operation_id", "")).startswith("lease#")]
    assert leases == []
    assert world.cluster_exists()


def _is_valid_start(step: str, payload: Any) -> bool:
    """snapshot_check with a valid operation id and date (or none) may start an operation: skip those."""
    if step != Step.SNAPSHOT_CHECK.value or not isinstance(payload, dict):
        return False
    try:
        parse_trigger(json.loads(json.dumps(payload)))
    except InvalidRequest:
        return False
    except (TypeError, ValueError):
        return False
    target_date = payload.get("target_date")
    return target_date is None or isinstance(target_date, str)
