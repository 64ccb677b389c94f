"""The masking key secret the stack creates per environment, and mask_data's role."""

from __future__ import annotations

import json

import pytest
from pulumi_harness import ACCOUNT, ROOT, SECRET_DB_USERS, ProgramRun, is_secret, run_program, stack_config

from infra.settings import StackConfigError, validate_restore

SCRIPT = "s3://dev-sql-scripts/refresh/after-restore.sql"


def _policy(run: ProgramRun, function: str) -> dict[str, dict[str, object]]:
    role = run.one("aws:iam/rolePolicy:RolePolicy", name=f"aurora-restore-{function}-dev-least-privilege")
    return {statement["Sid"]: statement for statement in json.loads(role.inputs["policy"])["Statement"]}


def test_the_stack_creates_a_random_masking_key_and_names_it_in_the_config(dev: ProgramRun) -> None:
    # Given the dev stack
    # When the program has run
    secret = dev.one("aws:secretsmanager/secret:Secret", name="aurora-restore/dev/masking-key")
    version = dev.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    document = json.loads(
        dev.one("aws:ssm/parameter:Parameter", name="/aurora-restore/dev/config").inputs["insecureValue"]
    )
    # Then the key is a secret value of its own, named in the configuration
    assert secret.inputs["name"] == document["masking_key_secret_id"] == "aurora-restore/dev/masking-key"
    assert len(version) == 1
    # and mask_data and verify_restore may read it, setup_db_users may not
    key_arn = f"arn:aws:secretsmanager:us-west-2:{ACCOUNT}:secret:aurora-restore/dev/masking-key-??????"
    assert _policy(dev, "mask-data")["MaskingKey"]["Resource"] == key_arn
    assert _policy(dev, "verify-restore")["MaskingKey"]["Resource"] == key_arn
    assert "MaskingKey" not in _policy(dev, "setup-db-users")
    assert "PostRestoreSql" not in _policy(dev, "mask-data")


def test_the_masking_key_value_is_a_pulumi_secret(dev: ProgramRun) -> None:
    version = dev.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert is_secret(version.inputs["secretString"])


def test_mask_data_may_read_exactly_the_configured_post_restore_scripts() -> None:
    # Given the dev stack with one post-restore script
    config, secret_keys = stack_config(ROOT / "Pulumi.dev.yaml", SECRET_DB_USERS)
    restore = json.loads(config["aurora-restore:restore"])
    restore["post_restore_sql"] = [{"uri": SCRIPT, "sha256": "ab" * 32}]
    config["aurora-restore:restore"] = json.dumps(restore)
    # When the program has run
    run = run_program("dev", config, secret_keys)
    # Then mask_data may get that object, nothing else in the bucket
    statement = _policy(run, "mask-data")["PostRestoreSql"]
    assert statement["Action"] == ["s3:GetObject"]
    assert statement["Resource"] == "arn:aws:s3:::dev-sql-scripts/refresh/after-restore.sql"


def test_the_stack_owns_the_masking_key_setting() -> None:
    config, _ = stack_config(ROOT / "Pulumi.dev.yaml", SECRET_DB_USERS)
    restore = json.loads(config["aurora-restore:restore"]) | {"masking_key_secret_id": "mine"}
    with pytest.raises(StackConfigError, match="masking_key_secret_id"):
        validate_restore(restore)
