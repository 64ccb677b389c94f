"""The source account's side of a cross-account refresh: the role the target's functions assume there.

SourceAccountRole (deployed into the source account by the program in infra/source/) makes
`aurora-restore-source-<env>`, trusted only by the target environment's function roles that use it and only
with the external id, allowed to find the source cluster's snapshots, share them, and read the key they are
encrypted with; given the key's ARN, it also grants the target account that key's use for the copy.
docs/cross-account.md is the guide; the target's side is policies.source_role_statements.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from functions.settings import function_name
from functions.source_account import GRANT_OPERATIONS, ROLE_NAME
from schemas.common import Step, partition_of

# The target's functions that assume the source role (functions/source_account.py): snapshot_check finds
# and checks the snapshot, copy_snapshot shares it, cleanup stops sharing it.
ASSUMING_STEPS = (Step.SNAPSHOT_CHECK.value, Step.COPY_SNAPSHOT.value, Step.CLEANUP.value)


def source_role_statements(function: str, source_role_arn: str) -> list[dict[str, Any]]:
    """The target side, in the assuming functions' policies: sts:AssumeRole on exactly the source role
    (what they may do there is the role's own policy, role_policy below); nothing without a source role."""
    if not source_role_arn or function not in ASSUMING_STEPS:
        return []
    return [
        {
            "Sid": "AssumeSourceRole",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole"],
            "Resource": source_role_arn,
        }
    ]


def source_role_arn(restore: dict[str, Any], environment: str, partition: str) -> str:
    """The role a stack's `restore` config assumes in the source account: source_role_arn, else the one
    SourceAccountRole makes; "" without source_account_id."""
    account = restore.get("source_account_id")
    if not account:
        return ""
    name = ROLE_NAME.format(environment=environment)
    return str(restore.get("source_role_arn") or f"arn:{partition}:iam::{account}:role/{name}")


@dataclass(frozen=True)
class SourceRoleArgs:
    """What the source role names: the target environment, its account, the source cluster and key."""

    environment: str
    target_account_id: str
    external_id: str
    source_cluster_id: str
    source_region: str
    source_account_id: str
    # The key the source snapshots are encrypted with: its use is granted to the target account; None
    # (unencrypted snapshots, or a key policy that names the target account already): no grant.
    source_key_arn: str | None = None

    @property
    def partition(self) -> str:
        return partition_of(self.source_region)

    @property
    def role_name(self) -> str:
        return ROLE_NAME.format(environment=self.environment)

    def target_role_arns(self) -> list[str]:
        """The target's function roles that assume the source role (each role is named as its function)."""
        return [
            f"arn:{self.partition}:iam::{self.target_account_id}:role/{function_name(step, self.environment)}"
            for step in ASSUMING_STEPS
        ]


def trust_policy(args: SourceRoleArgs) -> dict[str, Any]:
    """Only the target's assuming function roles, and only with the external id (the confused deputy)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": args.target_role_arns()},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": args.external_id}},
            }
        ],
    }


def role_policy(args: SourceRoleArgs) -> dict[str, Any]:
    """What functions/source_account.py and the source RdsAdapter call through the role, and on what."""
    rds = f"arn:{args.partition}:rds:{args.source_region}:{args.source_account_id}"
    # A snapshot's ARN does not name its cluster, and find_snapshot_for_date takes the day's snapshot of the
    # cluster by name or else any of the cluster's: the region's and account's cluster snapshots.
    snapshots = f"{rds}:cluster-snapshot:*"
    key = (
        args.source_key_arn or f"arn:{args.partition}:kms:{args.source_region}:{args.source_account_id}:key/*"
    )
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "FindSnapshots",
                "Effect": "Allow",
                "Action": "rds:DescribeDBClusterSnapshots",
                "Resource": [f"{rds}:cluster:{args.source_cluster_id}", snapshots],
            },
            {
                "Sid": "ShareSnapshots",
                "Effect": "Allow",
                "Action": "rds:ModifyDBClusterSnapshotAttribute",
                "Resource": snapshots,
            },
            {
                "Sid": "CheckSnapshotKey",
                "Effect": "Allow",
                "Action": ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants"],
                "Resource": key,
            },
        ],
    }


class SourceAccountRole(pulumi.ComponentResource):
    """The source role, its policy and (given the key) the target account's grant on the snapshots' key."""

    role: aws.iam.Role

    def __init__(self, name: str, args: SourceRoleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aurora-restore:source:SourceAccountRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
            description=f"Assumed by aurora-restore {args.environment} in {args.target_account_id}",
            assume_role_policy=json.dumps(trust_policy(args)),
            max_session_duration=3600,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            name=f"{args.role_name}-least-privilege",
            role=self.role.id,
            policy=json.dumps(role_policy(args)),
            opts=child,
        )
        if args.source_key_arn:
            aws.kms.Grant(
                f"{name}-key-grant",
                name=f"aurora-restore-{args.environment}-copy",
                key_id=args.source_key_arn,
                grantee_principal=f"arn:{args.partition}:iam::{args.target_account_id}:root",
                operations=sorted(GRANT_OPERATIONS),
                opts=child,
            )
        self.register_outputs({"role_arn": self.role.arn})


def main() -> dict[str, Any]:
    """The program of infra/source/: one SourceAccountRole from the stack's `aurora-restore-source:*`."""
    config = pulumi.Config("aurora-restore-source")
    region = pulumi.Config("aws").require("region")
    args = SourceRoleArgs(
        environment=config.require("environment"),
        target_account_id=config.require("targetAccountId"),
        external_id=config.require("externalId"),
        source_cluster_id=config.require("sourceClusterId"),
        source_region=region,
        source_account_id=aws.get_caller_identity().account_id,
        source_key_arn=config.get("sourceKeyArn"),
    )
    component = SourceAccountRole("source", args)
    pulumi.export("source_role_arn", component.role.arn)
    return {"source_role_arn": component.role.arn}
