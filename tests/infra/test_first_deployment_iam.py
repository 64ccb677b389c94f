"""What a first real deployment needs of the key and role policies, read against AWS's documentation: the
alert EventBridge publishes is encrypted with a key it may use, the VPC functions attach, a step may make
each call its code can make, and a source-region key named by an alias is granted in its own region."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from e2e.test_policies_cover_calls import REFS
from pulumi_harness import ACCOUNT, ROOT, SECRET_DB_USERS, ProgramRun, run_program, stack_config
from test_program import actions, policies, resources

from infra.settings import StackConfigError

pytestmark = pytest.mark.infra

ALERTS_TOPIC = f"arn:aws:sns:us-west-2:{ACCOUNT}:aurora-restore-alerts-dev"


def key_statements(run: ProgramRun) -> list[dict[str, Any]]:
    (key,) = run.of_type("aws:kms/key:Key")
    return list(json.loads(key.inputs["policy"])["Statement"])


def services(statement: dict[str, Any]) -> list[str]:
    found = statement.get("Principal", {}).get("Service", [])
    return [found] if isinstance(found, str) else list(found)


def condition_keys(statement: dict[str, Any]) -> set[str]:
    return {key.lower() for operator in statement.get("Condition", {}).values() for key in operator}


# -- the stack key: EventBridge publishes the failed-operation alert to the encrypted alerts topic ---------
def test_eventbridge_may_use_the_stack_key_for_the_alerts_topic_without_source_conditions(
    dev: ProgramRun,
) -> None:
    # Given the dev stack, whose failed-operation rule publishes to the alerts topic, encrypted with the key
    failed = dev.one("aws:cloudwatch/eventTarget:EventTarget", rule="aurora-restore-operation-failed-dev")
    assert failed.inputs["arn"] == ALERTS_TOPIC
    topic = dev.one("aws:sns/topic:Topic", name="aurora-restore-alerts-dev")
    assert topic.inputs["kmsMasterKeyId"].startswith(f"arn:aws:kms:us-west-2:{ACCOUNT}:key/")
    # When the program has run
    rules = [s for s in key_statements(dev) if "events.amazonaws.com" in services(s)]
    # Then EventBridge has a statement of its own that lets it make and read the topic's data keys
    (statement,) = rules
    assert services(statement) == ["events.amazonaws.com"]
    assert statement["Effect"] == "Allow"
    assert {"kms:GenerateDataKey*", "kms:Decrypt"} <= set(actions(statement))
    # without aws:SourceAccount or aws:SourceArn, which a KMS key policy cannot use for EventBridge publishing
    # to an encrypted SNS topic (the publish is refused, the alert never arrives)
    assert not condition_keys(statement) & {"aws:sourceaccount", "aws:sourcearn"}, statement
    # and held to the alerts topic by the encryption context SNS asks the key for
    assert statement["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": ALERTS_TOPIC}
    }


def test_cloudwatch_alarms_keep_their_account_condition_on_the_key(dev: ProgramRun) -> None:
    (alarms,) = [s for s in key_statements(dev) if "cloudwatch.amazonaws.com" in services(s)]
    assert services(alarms) == ["cloudwatch.amazonaws.com"]
    assert alarms["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


# -- the VPC attachment ---------------------------------------------------------------------------------
# AWS's own policy for a Lambda function in a VPC, v3 (its EC2 actions; the logs ones are the functions'
# own): https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaVPCAccessExecutionRole.html
AWS_LAMBDA_VPC_ACCESS_EC2 = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


@pytest.mark.parametrize("function", ["setup_db_users", "verify_restore"])
def test_the_database_steps_may_do_what_awss_lambda_vpc_policy_allows(dev: ProgramRun, function: str) -> None:
    document = policies(dev)[function]
    (vpc,) = [s for s in document["Statement"] if s["Sid"] == "VpcNetworkInterfaces"]
    assert set(actions(vpc)) == AWS_LAMBDA_VPC_ACCESS_EC2
    assert resources(vpc) == ["*"]  # these take no resource-level permissions


# -- check_restore_status releases the copy ---------------------------------------------------------------
def test_check_restore_status_may_describe_the_copy_it_releases_and_no_other_snapshot(
    dev: ProgramRun,
) -> None:
    # release_copy looks the copy up when its deletion found none (deleted by hand, or by an earlier run)
    copies = f"arn:aws:rds:us-west-2:{ACCOUNT}:cluster-snapshot:*-copy"
    documents = policies(dev)
    for function in ("check_restore_status", "check_copy_status", "cleanup"):
        describing = [
            s for s in documents[function]["Statement"] if "rds:DescribeDBClusterSnapshots" in actions(s)
        ]
        assert [resources(s) for s in describing] == [[copies]], function


# -- KMS keys named by alias ------------------------------------------------------------------------------
SOURCE_ALIAS = f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/production-snapshots"


@pytest.mark.parametrize(
    ("key", "resource", "alias"),
    [
        # an alias ARN: any key of the alias's own region and account that carries the alias
        (SOURCE_ALIAS, f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*", "alias/production-snapshots"),
        (
            "arn:aws:kms:eu-west-1:210987654321:alias/shared",
            "arn:aws:kms:eu-west-1:210987654321:key/*",
            "alias/shared",
        ),
        (
            "arn:aws-cn:kms:cn-north-1:123456789012:alias/x",
            "arn:aws-cn:kms:cn-north-1:123456789012:key/*",
            "alias/x",
        ),
        # an alias name or a key id alone: the target region's
        ("alias/restores", f"arn:aws:kms:us-west-2:{ACCOUNT}:key/*", "alias/restores"),
        ("1234abcd-12ab", f"arn:aws:kms:us-west-2:{ACCOUNT}:key/1234abcd-12ab", None),
        # a key ARN as it is
        (f"arn:aws:kms:us-east-1:{ACCOUNT}:key/66", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/66", None),
    ],
)
def test_a_key_is_granted_in_the_region_and_account_it_names(
    key: str, resource: str, alias: str | None
) -> None:
    granted, condition = REFS.kms_key_resources(key)
    assert granted == resource
    if alias is None:
        assert condition is None
    else:
        assert condition == {"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}}


def test_a_source_region_key_given_by_alias_arn_is_granted_to_the_copy_in_the_source_region() -> None:
    # Given the staging stack with its source region's snapshot key named by an alias ARN
    config, secret_keys = stack_config(ROOT / "Pulumi.staging.yaml.example", SECRET_DB_USERS)
    config["aurora-restore:kmsKeyArns"] = json.dumps([SOURCE_ALIAS])
    # When the program has run
    run = run_program("staging", config, secret_keys)
    # Then copy_snapshot and restore_snapshot may use the source region's keys that carry that alias
    for function, sid in (("copy_snapshot", "SnapshotKey1"), ("restore_snapshot", "RestoreKey1")):
        statement = {s["Sid"]: s for s in policies(run)[function]["Statement"]}[sid]
        assert statement["Resource"] == f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*", function
        assert statement["Condition"] == {
            "ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/production-snapshots"}
        }
        assert {"kms:Decrypt", "kms:CreateGrant", "kms:DescribeKey"} <= set(actions(statement))


@pytest.mark.parametrize("given", ["alias/production-snapshots", "66666666-7777-8888-9999-000000000000"])
def test_a_source_key_named_without_its_arn_is_refused(given: str) -> None:
    from infra.settings import kms_key_arns

    with pytest.raises(StackConfigError, match="kmsKeyArns: .* is not a KMS key or alias ARN"):
        kms_key_arns([given])
    assert kms_key_arns([SOURCE_ALIAS]) == (SOURCE_ALIAS,)


def test_refs_in_another_region_do_not_move_a_key_named_by_its_own_arn() -> None:
    elsewhere = dataclasses.replace(REFS, region="eu-central-1")
    assert elsewhere.kms_key_resources(SOURCE_ALIAS)[0] == f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*"
