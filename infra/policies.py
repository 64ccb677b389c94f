"""Least-privilege IAM policy documents, one per function, built as data from what each step's code calls.

Read functions/steps/*.py, functions/runner.py and the adapters beside them before widening anything here:
every statement below names the call that needs it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from functions.wakeup import schedule_prefix
from infra.masking import mask_data_policy, masking_key_statements
from infra.policy_refs import PolicyRefs
from infra.settings import StackConfigError
from infra.source_account import source_role_statements
from schemas.common import Step

# The calls that can destroy or replace the target: only ever on the target cluster and its instances, and
# under the swap strategy on the two names a swap gives beside it (`<target>-new-*`, `<target>-old-*`).
DESTRUCTIVE_RDS_ACTIONS = frozenset(
    {
        "rds:DeleteDBCluster",
        "rds:DeleteDBInstance",
        "rds:RestoreDBClusterFromSnapshot",
        "rds:ModifyDBCluster",
    }
)


# What Lambda does with a VPC function's role to attach it to the subnets (AWSLambdaVPCAccessExecutionRole).
LAMBDA_VPC_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


def _statement(
    sid: str, actions: list[str], resources: list[str], condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(set(actions)),
        "Resource": resources[0] if len(resources) == 1 else resources,
    }
    if condition:
        statement["Condition"] = condition
    return statement


def _common(function: str, refs: PolicyRefs) -> list[dict[str, Any]]:
    """What every function does: its own logs, the state table, the bus, the step record, its DLQ."""
    statements = [
        _statement("OwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{refs.log_group_arn}:*"]),
        _statement("FailedInvocations", ["sqs:SendMessage"], [refs.failure_queue_arn]),
        _statement("PublishEvents", ["events:PutEvents"], [refs.bus_arn]),
        # functions.notify.StepLog.write after every step (and after a failure the reconciler records).
        _statement(
            "StepRecords",
            ["s3:PutObject"],
            [f"arn:{refs.partition}:s3:::{refs.bucket_name}/{refs.log_prefix}/*"],
        ),
    ]
    if function == "reconcile":
        # functions.reconcile: scan_operations (hourly), get (a watchdog's operation), then save (PutItem).
        statements.append(
            _statement(
                "StateTable", ["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:PutItem"], [refs.table_arn]
            )
        )
    else:
        # The runner: get, create/save (PutItem), the resource index and the lease; cleanup deletes.
        actions = ["dynamodb:GetItem", "dynamodb:PutItem"]
        if function in (Step.CHECK_RESTORE_STATUS.value, Step.CLEANUP.value):
            actions.append("dynamodb:DeleteItem")  # leave_copy's count goes with its last user; the lease
        if function in (Step.COPY_SNAPSHOT.value, Step.CHECK_RESTORE_STATUS.value, Step.CLEANUP.value):
            actions.append("dynamodb:UpdateItem")  # join_copy / leave_copy: who still uses a shared copy
        statements.append(_statement("StateTable", actions, [refs.table_arn]))
        # functions.config.resolve reads the config document while the operation has none recorded.
        statements.append(_statement("ConfigParameter", ["ssm:GetParameter"], [refs.config_parameter_arn]))
    if refs.in_vpc and function in (
        Step.MASK_DATA.value,
        Step.SETUP_DB_USERS.value,
        Step.VERIFY_RESTORE.value,
    ):
        # Lambda's VPC attachment, made with the function's role: the actions of AWS's own
        # AWSLambdaVPCAccessExecutionRole (its logs actions are OwnLogs above), which take no resource-level
        # permissions. https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaVPCAccessExecutionRole.html
        statements.append(_statement("VpcNetworkInterfaces", list(LAMBDA_VPC_ACTIONS), ["*"]))
    if refs.tracing:
        statements.append(_statement("Tracing", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]))
    return statements + _wakeups(refs)


def _db_users(refs: PolicyRefs) -> list[dict[str, Any]]:
    """functions.config.load_db_users: GetParameter WithDecryption on the (SecureString) users document."""
    return [
        _statement("DbUsersParameter", ["ssm:GetParameter"], [refs.db_users_parameter_arn]),
        _statement(
            "DbUsersDecrypt",
            ["kms:Decrypt"],
            [refs.key_arn],
            {"StringEquals": {"kms:ViaService": f"ssm.{refs.region}.amazonaws.com"}},
        ),
    ]


def _restore_key(refs: PolicyRefs, sid: str) -> list[dict[str, Any]]:
    """RDS uses the configured KMS key on our behalf (copy of an encrypted snapshot, restore)."""
    statements = []
    keys = ([refs.restore_kms_key_id] if refs.restore_kms_key_id else []) + list(refs.extra_kms_key_arns)
    for index, key_id in enumerate(keys):
        resource, condition = refs.kms_key_resources(key_id)
        statements.append(
            _statement(
                f"{sid}{index}",
                ["kms:CreateGrant", "kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKey"],
                [resource],
                condition,
            )
        )
    return statements


def _snapshot_check(refs: PolicyRefs) -> list[dict[str, Any]]:
    secrets = [refs.master_secret_arn, *refs.user_secret_arns]
    return [
        # RdsAdapter.find_snapshot_for_date: by name, then every snapshot of the source cluster.
        _statement(
            "SourceSnapshots",
            ["rds:DescribeDBClusterSnapshots"],
            [
                refs.rds("cluster", refs.source_cluster_id, refs.source_region),
                refs.rds("cluster-snapshot", "*", refs.source_region),
            ],
        ),
        # functions.secrets: the master secret and each user's, read to be checked before anything is
        # deleted (a password RDS or PostgreSQL would refuse fails the operation here); never kept.
        _statement("SecretsChecked", ["secretsmanager:GetSecretValue"], secrets),
        # The subnet group the restore will use, checked before anything is deleted.
        _statement(
            "SubnetGroupChecked",
            ["rds:DescribeDBSubnetGroups"],
            [refs.rds("subgrp", refs.target_subnet_group)],
        ),
        # And the security groups the restore will use, and the writer's instance class: these describe
        # calls take no resource ARN, so the region is what narrows them.
        _statement(
            "SecurityGroupsChecked",
            ["ec2:DescribeSecurityGroups"],
            ["*"],
            {"StringEquals": {"aws:RequestedRegion": refs.region}},
        ),
        _statement(
            "InstanceClassChecked",
            ["rds:DescribeOrderableDBInstanceOptions"],
            ["*"],
            {"StringEquals": {"aws:RequestedRegion": refs.region}},
        ),
        # functions.target_settings: the target, its writer and their parameter groups, read to be put back.
        _statement("TargetSettingsRead", ["rds:DescribeDBClusters"], [refs.target_cluster_arn]),
        _statement("TargetWriterRead", ["rds:DescribeDBInstances"], refs.target_instance_arns),
        _statement(
            "ParameterGroupsChecked",
            ["rds:DescribeDBClusterParameterGroups", "rds:DescribeDBParameterGroups"],
            [refs.rds("cluster-pg", "*"), refs.rds("pg", "*")],
        ),
        *_db_users(refs),
        *_key_checked(refs),
    ]


def _key_checked(refs: PolicyRefs) -> list[dict[str, Any]]:
    """target_checks.kms_key: snapshot_check describes the configured kms_key_id in the target region (an alias
    resolved by KMS) before anything changes; nothing when no key is configured."""
    if not refs.restore_kms_key_id:
        return []
    resource, condition = refs.kms_key_resources(refs.restore_kms_key_id)
    return [_statement("RestoreKeyChecked", ["kms:DescribeKey"], [resource], condition)]


def _copy_snapshot(refs: PolicyRefs) -> list[dict[str, Any]]:
    return [
        _statement(
            "CopySnapshot",
            ["rds:CopyDBClusterSnapshot"],
            [refs.rds("cluster-snapshot", "*", refs.source_region), refs.copy_snapshot_arn],
        ),
        _statement(
            "TagAndDescribeCopy",
            ["rds:AddTagsToResource", "rds:DescribeDBClusterSnapshots"],
            [refs.copy_snapshot_arn],
        ),
        *_restore_key(refs, "SnapshotKey"),
    ]


def _wakeups(refs: PolicyRefs) -> list[dict[str, Any]]:
    """functions.wakeup, in every function: a waiting step's one-shot RecheckDue (and dropping the one it
    replaces), and the operation's watchdog that any step may arm, move or disarm."""
    schedules = f"arn:{refs.partition}:scheduler:{refs.region}:{refs.account}:schedule/default/{schedule_prefix(refs.environment)}*"
    return [
        _statement(
            "WakeUps",
            ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"],
            [schedules],
        ),
        _statement(
            "PassWakeUpRole",
            ["iam:PassRole"],
            [refs.wakeup_role_arn],
            {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
        ),
    ]


def _check_copy_status(refs: PolicyRefs) -> list[dict[str, Any]]:
    return [
        _statement("DescribeCopy", ["rds:DescribeDBClusterSnapshots"], [refs.copy_snapshot_arn]),
    ]


def _delete_rds(refs: PolicyRefs) -> list[dict[str, Any]]:
    # The cluster it deletes: the target (replace), or the old target renamed `<target>-old-<hash>` (swap).
    clusters = [refs.target_cluster_arn, refs.old_cluster_arn]
    statements = [
        # DescribeDBClusters returns the cluster's tags too (the deletion guard reads them).
        _statement("DescribeTarget", ["rds:DescribeDBClusters"], clusters),
        # The old cluster's members keep their names through a rename: `<target>-writer`, or after an
        # earlier swap `<target>-new-<hash>-writer`, and readers named after the target. `<target>-*`
        # (target_instance_arns) is the narrowest pattern holding both writers' names; a narrower pair
        # (`-writer`, `-new-*-writer`) would still match this operation's new writer, so it would protect
        # nothing more. Which instances are deleted is the old cluster's DBClusterMembers, behind the guard.
        _statement("DeleteTargetInstances", ["rds:DeleteDBInstance"], refs.target_instance_arns),
        # ModifyDBCluster: only to turn deletion protection off, when allow_deletion_protected says so.
        _statement("DeleteTargetCluster", ["rds:DeleteDBCluster", "rds:ModifyDBCluster"], clusters),
    ]
    if refs.final_snapshot:
        final = refs.rds("cluster-snapshot", f"{refs.target_cluster_id}-final-*")
        statements += [
            _statement("FinalSnapshot", ["rds:CreateDBClusterSnapshot"], [*clusters, final]),
            # DeleteDBCluster with FinalDBSnapshotIdentifier is authorized on the snapshot it makes too, and
            # the restored cluster copies its tags to snapshots (CopyTagsToSnapshot): tagging it is asked.
            _statement("FinalSnapshotOfDeletion", ["rds:DeleteDBCluster", "rds:AddTagsToResource"], [final]),
        ]
    return statements


def _restore_snapshot(refs: PolicyRefs) -> list[dict[str, Any]]:
    # It restores under the target's name (replace) or beside it as `<target>-new-<hash>` (swap).
    clusters = [refs.target_cluster_arn, refs.restored_cluster_arn]
    return [
        # Only when a cluster of that name exists already: is it this operation's (its tags)?
        _statement("DescribeTarget", ["rds:DescribeDBClusters"], clusters),
        _statement("RestoreTarget", ["rds:RestoreDBClusterFromSnapshot", "rds:AddTagsToResource"], clusters),
        # RestoreDBClusterFromSnapshot is also authorized on what it reads: the copy, the subnet group and
        # the parameter group the new cluster gets. None of these is the target cluster or an instance.
        _statement(
            "RestoreInputs",
            ["rds:RestoreDBClusterFromSnapshot"],
            [
                refs.copy_snapshot_arn,
                refs.rds("subgrp", refs.target_subnet_group),
                refs.rds("cluster-pg", "*"),
            ],
        ),
        *_restore_key(refs, "RestoreKey"),
    ]


def _check_restore_status(refs: PolicyRefs) -> list[dict[str, Any]]:
    # The restored cluster and its writer: the target's (replace), or `<target>-new-<hash>`'s (swap).
    clusters = [refs.target_cluster_arn, refs.restored_cluster_arn]
    writers = [refs.writer_arn, refs.restored_writer_arn]
    return [
        # DescribeDBClusters returns the tags: the master-password tag says an earlier run already set it.
        _statement("DescribeTarget", ["rds:DescribeDBClusters"], clusters),
        # check_restore_status: ModifyDBCluster(MasterUserPassword) on the restored cluster only.
        _statement("SetMasterPassword", ["rds:ModifyDBCluster"], clusters),
        _statement("DescribeWriter", ["rds:DescribeDBInstances"], writers),
        # The copy goes once the restore is done (functions.steps.snapshot.release_copy: leave_copy, then
        # delete it when no operation uses it, and describe it when the delete found none: deleted by hand,
        # or by this step's earlier run that died before recording it).
        _statement(
            "DeleteCopy",
            ["rds:DeleteDBClusterSnapshot", "rds:DescribeDBClusterSnapshots"],
            [refs.copy_snapshot_arn],
        ),
        _statement("CreateWriter", ["rds:CreateDBInstance", "rds:AddTagsToResource"], [*writers, *clusters]),
        _statement(
            "WriterInputs",
            ["rds:CreateDBInstance"],
            [refs.rds("pg", "*"), refs.rds("subgrp", refs.target_subnet_group)],
        ),
        _statement("MasterSecret", ["secretsmanager:GetSecretValue"], [refs.master_secret_arn]),
        # The old writer's enhanced monitoring is put back on the new one: RDS assumes its monitoring role.
        _statement(
            "PassMonitoringRole",
            ["iam:PassRole"],
            [f"arn:{refs.partition}:iam::{refs.account}:role/*"],
            {"StringEquals": {"iam:PassedToService": "monitoring.rds.amazonaws.com"}},
        ),
    ]


def _database_step(refs: PolicyRefs) -> list[dict[str, Any]]:
    """setup_db_users and verify_restore: the endpoint, the master and user passwords, the users."""
    return [
        # Under swap, before the switch, the endpoint is the restored cluster's (functions.steps.db).
        _statement(
            "DescribeTarget", ["rds:DescribeDBClusters"], [refs.target_cluster_arn, refs.restored_cluster_arn]
        ),
        _statement(
            "Passwords", ["secretsmanager:GetSecretValue"], [refs.master_secret_arn, *refs.user_secret_arns]
        ),
        *_db_users(refs),
    ]


def _swap_clusters(refs: PolicyRefs) -> list[dict[str, Any]]:
    """functions.steps.swap: the target renamed `<target>-old-<hash>`, `<target>-new-<hash>` renamed into the
    target's name, and on a failure between them the old one renamed back. A rename is ModifyDBCluster
    (NewDBClusterIdentifier) on the cluster's ARN: exactly these three names, nothing else."""
    clusters = [refs.target_cluster_arn, refs.restored_cluster_arn, refs.old_cluster_arn]
    return [
        # Which cluster holds each name, its status and its tags (is it this operation's?).
        _statement("DescribeSwapped", ["rds:DescribeDBClusters"], clusters),
        _statement("RenameSwapped", ["rds:ModifyDBCluster"], clusters),
    ]


def _notify_completion(refs: PolicyRefs) -> list[dict[str, Any]]:
    return [
        _statement("Notify", ["sns:Publish"], [refs.topic_arn]),
        _statement("NotifyQueue", ["sqs:SendMessage"], [refs.queue_arn]),
        # The topic is encrypted with the stack's key: a publisher needs a data key.
        _statement(
            "TopicKey",
            ["kms:GenerateDataKey", "kms:Decrypt"],
            [refs.key_arn],
            {"StringEquals": {"kms:ViaService": f"sns.{refs.region}.amazonaws.com"}},
        ),
    ]


def _cleanup(refs: PolicyRefs) -> list[dict[str, Any]]:
    pruning = []
    if refs.final_snapshots_kept:
        # prune_final_snapshots: the target's snapshots, then its older `<target>-final-*` ones deleted.
        final = refs.rds("cluster-snapshot", f"{refs.target_cluster_id}-final-*")
        pruning = [
            _statement(
                "ListTargetSnapshots",
                ["rds:DescribeDBClusterSnapshots"],
                # Under swap, the old targets' final snapshots carry their `<target>-old-*` names.
                [refs.target_cluster_arn, refs.old_cluster_arn, refs.rds("cluster-snapshot", "*")],
            ),
            _statement("DeleteOlderFinalSnapshots", ["rds:DeleteDBClusterSnapshot"], [final]),
        ]
    return pruning + [
        _statement(
            "DeleteCopy",
            ["rds:DeleteDBClusterSnapshot", "rds:DescribeDBClusterSnapshots"],
            [refs.copy_snapshot_arn],
        ),
        # StepLog.delete_all: list then delete this operation's records, under the log prefix only.
        _statement(
            "ListStepRecords",
            ["s3:ListBucket"],
            [f"arn:{refs.partition}:s3:::{refs.bucket_name}"],
            {"StringLike": {"s3:prefix": [f"{refs.log_prefix}/*"]}},
        ),
        _statement(
            "DeleteStepRecords",
            ["s3:DeleteObject"],
            [f"arn:{refs.partition}:s3:::{refs.bucket_name}/{refs.log_prefix}/*"],
        ),
    ]


_SPECIFIC: dict[str, Callable[[PolicyRefs], list[dict[str, Any]]]] = {
    Step.SNAPSHOT_CHECK.value: _snapshot_check,
    Step.COPY_SNAPSHOT.value: _copy_snapshot,
    Step.CHECK_COPY_STATUS.value: _check_copy_status,
    Step.DELETE_RDS.value: _delete_rds,
    Step.RESTORE_SNAPSHOT.value: _restore_snapshot,
    Step.CHECK_RESTORE_STATUS.value: _check_restore_status,
    Step.MASK_DATA.value: mask_data_policy,
    Step.SETUP_DB_USERS.value: _database_step,
    Step.VERIFY_RESTORE.value: lambda refs: [*_database_step(refs), *masking_key_statements(refs)],
    Step.SWAP_CLUSTERS.value: _swap_clusters,
    Step.NOTIFY_COMPLETION.value: _notify_completion,
    Step.CLEANUP.value: _cleanup,
    "reconcile": lambda refs: [],
}


def function_policy(function: str, refs: PolicyRefs) -> dict[str, Any]:
    """The inline policy of `function`'s role."""
    source_role = source_role_statements(function, refs.source_role_arn)  # a cross-account source's
    return {
        "Version": "2012-10-17",
        "Statement": [*_common(function, refs), *_SPECIFIC[function](refs), *source_role],
    }


# IAM's limit on a role's inline policies together, white space not counted. Each function's role has one.
ROLE_INLINE_POLICY_MAX = 10_240


def function_policy_text(function: str, refs: PolicyRefs) -> str:
    """The policy as the role gets it, refused here when IAM would refuse it at `pulumi up`: every DB user
    with a secret of its own adds that secret's ARN to the database steps' and snapshot_check's policies."""
    document = function_policy(function, refs)
    size = len(json.dumps(document, separators=(",", ":")))
    if size > ROLE_INLINE_POLICY_MAX:
        raise StackConfigError(
            f"the {function} role's policy would be {size:,} characters, over IAM's {ROLE_INLINE_POLICY_MAX:,}"
            f" for a role's inline policies; it names {len(refs.user_secret_ids)} DB users' secrets:"
            " shorten the secret ids or list fewer users with a secret of their own"
        )
    return json.dumps(document, indent=2)


def assume_role_policy(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"},
        ],
    }
