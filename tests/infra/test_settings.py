"""The stack configuration checks, without running the program."""

from __future__ import annotations

import dataclasses
import json

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


def test_db_users_too_large_for_parameter_store_are_refused_by_size_without_echoing_a_password() -> None:
    from infra.parameters import PARAMETER_MAX_CHARS, db_users_document

    def user(n: int) -> dict[str, object]:
        return {"username": f"user_{n:03d}", "password": f"hunter2-{n:03d}", "privileges": ["SELECT"]}

    fits = [user(n) for n in range(20)]
    document = db_users_document(fits)
    assert len(document) <= 4_096  # compact: 20 such users stay in the free Standard tier
    assert document == json.dumps(fits, separators=(",", ":"), sort_keys=True)
    too_many = [user(n) for n in range(PARAMETER_MAX_CHARS // 60)]
    with pytest.raises(
        StackConfigError, match=rf"\({len(too_many)} users\), over Parameter Store's 8,192"
    ) as raised:
        db_users_document(too_many)
    assert "hunter2" not in str(raised.value)


def test_a_role_policy_over_iams_inline_limit_is_refused_at_preview() -> None:
    from e2e.test_policies_cover_calls import REFS as refs  # the dev stack's references

    from infra.policies import ROLE_INLINE_POLICY_MAX, function_policy_text

    few = dataclasses.replace(refs, user_secret_ids=tuple(f"dev/db-users/user_{n:03d}" for n in range(10)))
    assert json.loads(function_policy_text("setup_db_users", few))["Statement"]
    many = dataclasses.replace(refs, user_secret_ids=tuple(f"dev/db-users/user_{n:03d}" for n in range(150)))
    with pytest.raises(
        StackConfigError, match=rf"setup_db_users role's policy .* over IAM's {ROLE_INLINE_POLICY_MAX:,}"
    ):
        function_policy_text("setup_db_users", many)


def test_an_artifact_built_for_another_architecture_python_or_without_tracing_is_refused() -> None:
    from pathlib import Path

    from infra.package import TRACING_DEPENDENCIES
    from infra.program import check_artifact
    from infra.settings import StackSettings

    stack = StackSettings(environment="dev", region="us-west-2", restore=dict(RESTORE))  # arm64, python3.12
    built = {"architecture": "arm64", "python_version": "3.12", "requirements": ["pydantic>=2.6"]}
    path = Path("build/lambda/aurora-restore-lambda.zip")
    check_artifact(built, stack, path)
    with pytest.raises(StackConfigError, match="built for x86_64, the stack deploys arm64"):
        check_artifact({**built, "architecture": "x86_64"}, stack, path)
    # Compiled libraries (pydantic-core, psycopg2) are per Python version: 3.12's do not import on 3.13.
    newer = dataclasses.replace(stack, runtime="python3.13")
    with pytest.raises(
        StackConfigError, match=r"Python 3.12, the stack runs python3.13.*--python-version 3.13"
    ):
        check_artifact(built, newer, path)
    # Tracing imports the X-Ray SDK, packaged only with --tracing.
    traced = dataclasses.replace(stack, tracing=True)
    with pytest.raises(StackConfigError, match=r"without the X-Ray SDK.*--tracing"):
        check_artifact(built, traced, path)
    check_artifact({**built, "requirements": ["pydantic>=2.6", *TRACING_DEPENDENCIES]}, traced, path)
