"""Input hardening, fuzzed: every event model and direct payload answers bad input with a validation error.

Triggers and models are fuzzed here, without AWS; direct payloads go to the handlers in-process under moto
(tests/integration/test_fuzz_direct_payloads.py, with these strategies).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from functions.engine.triggers import Trigger, parse_trigger
from functions.errors import InvalidRequest
from schemas.config import DbUser
from schemas.events import BUS_EVENTS, EVENT_SOURCE
from schemas.rds_events import RdsEvent

MODELS: list[type[BaseModel]] = [*BUS_EVENTS, RdsEvent]
FUZZ = settings(max_examples=60, deadline=None)
PRIVILEGES = {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
# Field names our models and payloads know, so the fuzz reaches past "unknown field" quickly.
KNOWN_KEYS = sorted(
    {name for model in MODELS for name in model.model_fields}
    | {"operation_id", "target_date", "snapshot_name", "target_snapshot", "target_cluster_id", "overrides"}
)
keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=12)
details = st.dictionaries(keys, json_values, max_size=6)
operation_ids = st.sampled_from(["op-1", "dev-restore-2023-06-01"]) | st.text(max_size=140)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """EventBridge-shaped events: ours and RDS's detail-types, with fuzzed details and envelopes."""
    source = draw(st.sampled_from([EVENT_SOURCE, "aws.rds", "elsewhere"]) | st.text(max_size=10))
    detail_type = draw(
        st.sampled_from(
            [model.detail_type for model in BUS_EVENTS]
            + ["RDS DB Cluster Event", "RDS DB Instance Event", "RDS DB Cluster Snapshot Event"]
        )
        | st.text(max_size=20)
    )
    detail = draw(details | json_values)
    return {"source": source, "detail-type": detail_type, "detail": detail}


def _accepts_or_rejects(event: Any) -> Trigger | None:
    try:
        return parse_trigger(event)
    except InvalidRequest:
        return None


@FUZZ
@given(event=events() | json_values | st.dictionaries(keys, json_values, max_size=6))
def test_parse_trigger_answers_any_input_with_a_trigger_or_invalid_request(event: Any) -> None:
    # Given any JSON value, EventBridge-shaped or not
    # When it is parsed as a trigger
    trigger = _accepts_or_rejects(event)
    # Then it is either refused with InvalidRequest (above) or becomes a trigger whose operation id is valid
    if trigger is not None and trigger.operation_id is not None:
        assert parse_trigger({"operation_id": trigger.operation_id}).operation_id == trigger.operation_id


@FUZZ
@given(model=st.sampled_from(BUS_EVENTS), detail=details)
def test_event_models_validate_or_raise_validation_error(
    model: type[BaseModel], detail: dict[str, Any]
) -> None:
    # Given one of our bus event models and a fuzzed detail
    # When the detail is validated
    try:
        event = model.model_validate(detail)
    except ValidationError:
        return
    # Then whatever is accepted survives a JSON round trip unchanged
    assert model.model_validate_json(event.model_dump_json()) == event


@FUZZ
@given(detail=details, detail_type=st.sampled_from(["RDS DB Cluster Event", "RDS DB Instance Event"]))
def test_rds_events_validate_or_raise_validation_error(detail: dict[str, Any], detail_type: str) -> None:
    # Given an RDS-shaped event with a fuzzed detail
    event = {"source": "aws.rds", "detail-type": detail_type, "detail": detail}
    # When it is validated, Then it is an RDS event or a validation error, never another exception
    try:
        RdsEvent.model_validate(event)
    except ValidationError:
        pass


@FUZZ
@given(
    username=st.sampled_from(["app_user", "x"]) | st.text(max_size=70),
    privileges=st.lists(st.sampled_from(sorted(PRIVILEGES)) | st.text(max_size=25), max_size=5),
)
def test_db_users_take_identifiers_as_identifiers_and_privileges_from_the_whitelist(
    username: str, privileges: list[str]
) -> None:
    # Given a fuzzed DB-user entry
    entry = {"username": username, "privileges": privileges, "password_secret_id": "dev/app"}
    # When it is validated
    try:
        user = DbUser.model_validate(entry)
    except ValidationError:
        return
    # Then an accepted user has a plain role name and only whitelisted privileges
    assert set(user.privileges) <= PRIVILEGES
    assert user.username.replace("_", "a").isalnum() and user.username == user.username.lower()
    assert not user.username[0].isdigit()


def test_an_injected_privilege_or_role_name_is_refused() -> None:
    # Given entries that try to smuggle SQL through the privilege or the role name
    bad = [
        {"username": "app_user", "privileges": ["SELECT; DROP TABLE users"], "password_secret_id": "s"},
        {"username": 'app"; DROP ROLE postgres; --', "privileges": ["SELECT"], "password_secret_id": "s"},
        {"username": "app_user", "privileges": ["ALL PRIVILEGES"], "password_secret_id": "s"},
    ]
    # When each is validated, Then each is refused
    for entry in bad:
        with pytest.raises(ValidationError):
            DbUser.model_validate(entry)
