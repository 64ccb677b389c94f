"""The stack configuration checks, without running the program."""

from __future__ import annotations

import pytest

from infra.registry import _draft4
from infra.settings import StackConfigError, validate_db_users, validate_restore

pytestmark = pytest.mark.infra

RESTORE = {
    "source_region": "us-east-1",
    "target_region": "us-west-2",
    "source_cluster_id": "dev-source-cluster",
    "target_cluster_id": "dev-target-cluster",
    "target_subnet_group": "dev-subnet-group",
    "target_security_groups": ["sg-12345678"],
    "master_credentials_secret_id": "dev/master-credentials",
}


def test_a_valid_restore_document_passes() -> None:
    assert validate_restore(dict(RESTORE)) == RESTORE


def test_the_stack_owned_keys_are_refused() -> None:
    with pytest.raises(StackConfigError, match="log_bucket"):
        validate_restore({**RESTORE, "log_bucket": "mine"})


def test_unknown_keys_and_invalid_values_are_named() -> None:
    with pytest.raises(StackConfigError, match="unknown keys: colour"):
        validate_restore({**RESTORE, "colour": "blue"})
    with pytest.raises(StackConfigError, match="target_security_groups"):
        validate_restore({**RESTORE, "target_security_groups": ["not-a-group"]})


def test_an_invalid_db_user_is_named_without_echoing_its_password() -> None:
    with pytest.raises(StackConfigError) as raised:
        validate_db_users([{"username": "app_user", "password": "hunter2-secret", "privileges": ["DROP"]}])
    assert "privileges" in str(raised.value)
    assert "hunter2-secret" not in str(raised.value)


def test_schemas_are_rewritten_for_draft_4() -> None:
    converted = _draft4(
        {
            "$defs": {"Step": {"const": "x"}},
            "properties": {"a": {"$ref": "#/$defs/Step"}, "n": {"exclusiveMinimum": 0}},
        }
    )
    assert converted == {
        "definitions": {"Step": {"enum": ["x"]}},
        "properties": {"a": {"$ref": "#/definitions/Step"}, "n": {"minimum": 0, "exclusiveMinimum": True}},
    }
