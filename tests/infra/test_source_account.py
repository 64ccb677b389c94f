"""The cross-account source's IAM under mocks: the source account's role (infra/source/) and the target's
functions allowed to assume exactly it."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from pulumi_harness import (
    ACCOUNT,
    ROOT,
    SECRET_DB_USERS,
    ProgramRun,
    RecordingMocks,
    run_program,
    stack_config,
)

from functions.routes import FUNCTIONS

pytestmark = pytest.mark.infra

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
GRANT = "aws:kms/grant:Grant"
SOURCE_ACCOUNT = "111111111111"
TARGET_ACCOUNT = "222222222222"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def run_source_program(**extra: str) -> ProgramRun:
    """infra/source/'s program (infra.source_account.main) under the mocks, with the stack's config."""
    from infra import source_account

    config = {
        "aws:region": "us-east-1",
        "aurora-restore-source:environment": "dev",
        "aurora-restore-source:targetAccountId": TARGET_ACCOUNT,
        "aurora-restore-source:externalId": "the-external-id",
        "aurora-restore-source:sourceClusterId": "dev-source-cluster",
        **{f"aurora-restore-source:{key}": value for key, value in extra.items()},
    }
    run = ProgramRun(stack="dev", region="us-east-1")
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_all_config(config, [])
    pulumi.runtime.set_mocks(RecordingMocks(run), project="aurora-restore-source", stack="dev", preview=False)

    @pulumi.runtime.test
    def declare() -> pulumi.Output[Any]:
        return pulumi.Output.from_input(source_account.main()).apply(run.outputs.update)

    declare()
    return run


def test_the_source_role_trusts_only_the_assuming_function_roles_with_the_external_id() -> None:
    # Given the source account's program for the dev environment of account 222222222222
    run = run_source_program()

    # When its role is read
    role = run.one(ROLE, name="aurora-restore-source-dev")
    trust = json.loads(role.inputs["assumeRolePolicy"])

    # Then only snapshot_check's, copy_snapshot's and cleanup's roles may assume it, with the external id
    (statement,) = trust["Statement"]
    assert statement["Principal"]["AWS"] == [
        f"arn:aws:iam::{TARGET_ACCOUNT}:role/aurora-restore-{step}-dev"
        for step in ("snapshot-check", "copy-snapshot", "cleanup")
    ]
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "the-external-id"}}
    assert run.outputs["source_role_arn"] == f"arn:aws:iam::{ACCOUNT}:role/aurora-restore-source-dev"


def test_the_source_role_may_find_share_and_check_snapshots_and_nothing_else() -> None:
    # Given the source account's program naming the snapshots' key
    run = run_source_program(sourceKeyArn=KEY)

    # When the role's policy is read
    policy = json.loads(
        run.one(ROLE_POLICY, name="aurora-restore-source-dev-least-privilege").inputs["policy"]
    )
    statements = {statement["Sid"]: statement for statement in policy["Statement"]}

    # Then it names the source cluster, the region's cluster snapshots and that key only
    snapshots = f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster-snapshot:*"
    assert statements["FindSnapshots"]["Resource"] == [
        f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:dev-source-cluster",
        snapshots,
    ]
    assert statements["ShareSnapshots"] == {
        "Sid": "ShareSnapshots",
        "Effect": "Allow",
        "Action": "rds:ModifyDBClusterSnapshotAttribute",
        "Resource": snapshots,
    }
    assert statements["CheckSnapshotKey"]["Resource"] == KEY
    assert statements["CheckSnapshotKey"]["Action"] == [
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:ListGrants",
    ]
    assert set(statements) == {"FindSnapshots", "ShareSnapshots", "CheckSnapshotKey"}


def test_the_target_account_is_granted_the_snapshots_key_only_when_it_is_named() -> None:
    # Given the program with and without the key's ARN
    with_key, without_key = run_source_program(sourceKeyArn=KEY), run_source_program()

    # Then the grant gives the target account the copy's operations on that key, and is made only then
    grant = with_key.one(GRANT).inputs
    assert grant["keyId"] == KEY
    assert grant["granteePrincipal"] == f"arn:aws:iam::{TARGET_ACCOUNT}:root"
    assert grant["operations"] == ["CreateGrant", "Decrypt", "DescribeKey"]
    assert without_key.of_type(GRANT) == []


def _function_policies(run: ProgramRun) -> dict[str, dict[str, Any]]:
    return {
        resource.inputs["name"]
        .removesuffix("-least-privilege")
        .removeprefix("aurora-restore-")
        .removesuffix("-dev")
        .replace("-", "_"): json.loads(resource.inputs["policy"])
        for resource in run.of_type(ROLE_POLICY)
        if resource.inputs["name"].endswith("-least-privilege")
    }


def _assumes(document: dict[str, Any]) -> list[Any]:
    return [s["Resource"] for s in document["Statement"] if "sts:AssumeRole" in s["Action"]]


@pytest.mark.parametrize(
    ("restore", "role"),
    [
        (
            {"source_account_id": SOURCE_ACCOUNT, "source_external_id": "the-external-id"},
            f"arn:aws:iam::{SOURCE_ACCOUNT}:role/aurora-restore-source-dev",
        ),
        (
            {
                "source_account_id": SOURCE_ACCOUNT,
                "source_external_id": "the-external-id",
                "source_role_arn": f"arn:aws:iam::{SOURCE_ACCOUNT}:role/custom/their-role",
            },
            f"arn:aws:iam::{SOURCE_ACCOUNT}:role/custom/their-role",
        ),
    ],
    ids=["derived role", "configured role"],
)
def test_the_assuming_functions_may_assume_exactly_the_source_role(
    restore: dict[str, str], role: str
) -> None:
    # Given the dev stack with a source account
    config, secret_keys = stack_config(ROOT / "Pulumi.dev.yaml", SECRET_DB_USERS)
    config["aurora-restore:restore"] = json.dumps(json.loads(config["aurora-restore:restore"]) | restore)

    # When the program runs
    documents = _function_policies(run_program("dev", config, secret_keys))

    # Then snapshot_check, copy_snapshot and cleanup may assume that role, and no other function any role
    assumed = {function: _assumes(document) for function, document in documents.items()}
    assert assumed == {
        function: [role] if function in ("snapshot_check", "copy_snapshot", "cleanup") else []
        for function in FUNCTIONS
    }


def test_without_a_source_account_no_function_assumes_a_role(dev: ProgramRun) -> None:
    assert all(_assumes(document) == [] for document in _function_policies(dev).values())
