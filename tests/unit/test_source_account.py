"""The cross-account source's checks that need no AWS: the configuration, the role, the key's policy."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from functions.source_account import grant_allows, key_policy_allows, role_arn, session_name
from schemas.config import RestoreConfig

TARGET = "222222222222"
SOURCE = "111111111111"
BASE: dict[str, Any] = {
    "source_region": "us-east-1",
    "target_region": "us-west-2",
    "source_cluster_id": "prod-cluster",
    "target_cluster_id": "dev-cluster",
    "target_subnet_group": "dev-subnets",
    "target_security_groups": ["sg-12345678"],
    "master_credentials_secret_id": "dev/master",
    "notification_topic_arn": "arn:aws:sns:us-west-2:222222222222:topic",
    "notification_queue_url": "https://sqs.us-west-2.amazonaws.com/222222222222/queue",
    "log_bucket": "dev-logs",
}


def config(**fields: Any) -> RestoreConfig:
    return RestoreConfig.model_validate(BASE | fields)


def test_without_a_source_account_the_configuration_is_as_before() -> None:
    assert config().source_account_id is None


def test_the_role_is_derived_from_the_account_and_the_environment_unless_given() -> None:
    derived = config(source_account_id=SOURCE, source_external_id="ext-id-1")
    assert role_arn(derived, "dev") == f"arn:aws:iam::{SOURCE}:role/aurora-restore-source-dev"
    given = config(
        source_account_id=SOURCE,
        source_external_id="ext-id-1",
        source_role_arn=f"arn:aws:iam::{SOURCE}:role/x/y",
    )
    assert role_arn(given, "dev") == f"arn:aws:iam::{SOURCE}:role/x/y"
    china = config(source_account_id=SOURCE, source_external_id="ext-id-1", target_region="cn-north-1")
    assert role_arn(china, "dev").startswith("arn:aws-cn:iam::")


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"source_account_id": SOURCE}, "needs source_external_id"),
        ({"source_external_id": "ext-id-1"}, "need source_account_id"),
        (
            {
                "source_account_id": SOURCE,
                "source_external_id": "ext-id-1",
                "source_role_arn": f"arn:aws:iam::{TARGET}:role/r",
            },
            "is not a role in the source account",
        ),
        ({"source_account_id": "11111111111"}, "source_account_id"),
        ({"source_account_id": SOURCE, "source_external_id": "has space"}, "source_external_id"),
    ],
)
def test_cross_account_fields_that_do_not_go_together_are_refused(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        config(**fields)


def test_the_session_is_named_after_the_operation_within_stss_rules() -> None:
    assert session_name("dev-2026-12-07") == "aurora-restore-dev-2026-12-07"
    long = session_name("op/with spaces:" + "x" * 80)
    assert len(long) == 64 and " " not in long and "/" not in long and ":" not in long


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


OWNER = {
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{SOURCE}:root"},
    "Action": "kms:*",
    "Resource": "*",
}


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{TARGET}:root"}, "Action": "kms:*"},
        {
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{TARGET}:role/aurora-restore-copy-snapshot-dev"]},
            "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant", "kms:Encrypt"],
        },
        {
            "Effect": "Allow",
            "Principal": {"AWS": TARGET},
            "Action": ["kms:Describe*", "kms:Decrypt", "kms:CreateGrant"],
        },
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{TARGET}:root"},
            "Action": ["kms:decrypt", "kms:describekey", "kms:creategrant"],
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
        {"Effect": "Allow", "Principal": "*", "Action": "kms:*"},
    ],
    ids=[
        "account root, kms:*",
        "a role of the account",
        "bare account id, wildcard",
        "lower case, condition",
        "anyone",
    ],
)
def test_a_key_policy_letting_the_target_account_copy_is_accepted(statement: dict[str, Any]) -> None:
    assert key_policy_allows(_policy(OWNER, statement), TARGET)


@pytest.mark.parametrize(
    "statements",
    [
        [OWNER],
        [
            OWNER,
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{TARGET}:root"}, "Action": "kms:Decrypt"},
        ],
        [
            OWNER,
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::333333333333:root"}, "Action": "kms:*"},
        ],
        [
            OWNER,
            {"Effect": "Allow", "Principal": {"AWS": TARGET}, "Action": "kms:*"},
            {"Effect": "Deny", "Principal": {"AWS": TARGET}, "Action": "kms:CreateGrant"},
        ],
        [OWNER, {"Effect": "Allow", "Principal": {"Service": "rds.amazonaws.com"}, "Action": "kms:*"}],
    ],
    ids=["the owner only", "decrypt only", "another account", "denied outright", "a service"],
)
def test_a_key_policy_the_target_account_cannot_copy_with_is_refused(
    statements: list[dict[str, Any]],
) -> None:
    assert not key_policy_allows(_policy(*statements), TARGET)


def test_a_grant_to_the_target_account_with_the_copys_operations_counts() -> None:
    root = f"arn:aws:iam::{TARGET}:root"
    assert grant_allows(
        {"GranteePrincipal": root, "Operations": ["Decrypt", "DescribeKey", "CreateGrant"]}, TARGET
    )
    assert not grant_allows({"GranteePrincipal": root, "Operations": ["Decrypt"]}, TARGET)
    other = "arn:aws:iam::333333333333:root"
    assert not grant_allows(
        {"GranteePrincipal": other, "Operations": ["Decrypt", "DescribeKey", "CreateGrant"]}, TARGET
    )
