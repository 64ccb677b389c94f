"""The Pulumi program under mocks: names, functions, rules from the route table, least privilege, secrets."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from pulumi_harness import (
    ACCOUNT,
    ROOT,
    SECRET_DB_USERS,
    SECRET_PASSWORDS,
    ProgramRun,
    is_secret,
    plain_strings,
    run_program,
    stack_config,
)

from functions.routes import FUNCTIONS, RECONCILE_SCHEDULE, build_routes, handler_path
from infra.monitoring import failed_operations_pattern
from infra.policies import DESTRUCTIVE_RDS_ACTIONS
from schemas.config import RestoreConfig
from schemas.events import BUS_EVENTS

pytestmark = pytest.mark.infra

FUNCTION = "aws:lambda/function:Function"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
QUEUE = "aws:sqs/queue:Queue"


def kebab(function: str) -> str:
    return function.replace("_", "-")


def policies(run: ProgramRun) -> dict[str, dict[str, Any]]:
    """function -> its role's policy document."""
    found = {}
    for resource in run.of_type(ROLE_POLICY):
        if not resource.inputs["name"].endswith("-least-privilege"):
            continue  # not a function's role (the wake-up role is tested on its own)
        name = resource.inputs["name"].removesuffix("-least-privilege")
        function = name.removeprefix("aurora-restore-").removesuffix(f"-{run.stack}").replace("-", "_")
        found[function] = json.loads(resource.inputs["policy"])
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else list(value)


def resources(statement: dict[str, Any]) -> list[str]:
    value = statement["Resource"]
    return [value] if isinstance(value, str) else list(value)


def granted(document: dict[str, Any]) -> set[str]:
    return {action for statement in document["Statement"] for action in actions(statement)}


# -- functions ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_exists_with_its_name_handler_runtime_and_environment(
    dev: ProgramRun, function: str
) -> None:
    # Given the dev stack
    # When the program has run
    declared = dev.one(FUNCTION, name=f"aurora-restore-{kebab(function)}-dev")
    inputs = declared.inputs
    # Then the function is there as the runbook names it, running the step's handler
    assert inputs["handler"] == handler_path(function) == f"functions.{function}.handler"
    assert inputs["runtime"] in ("python3.12", "python3.13")
    assert inputs["architectures"] == ["arm64"]
    database_step = function in ("mask_data", "setup_db_users", "verify_restore")
    assert inputs["memorySize"] == {"mask_data": 1769, "setup_db_users": 1769, "verify_restore": 512}.get(
        function, 256
    )
    assert inputs["timeout"] == {"mask_data": 900}.get(function, 300 if database_step else 60)
    assert inputs["role"] == f"arn:aws:iam::{ACCOUNT}:role/aurora-restore-{kebab(function)}-dev"
    assert isinstance(inputs["code"], pulumi.FileArchive)
    assert inputs["code"].path.endswith("build/lambda/aurora-restore-lambda.zip")
    assert inputs["environment"]["variables"] == {
        "AURORA_RESTORE_ENV": "dev",
        "AURORA_RESTORE_STATE_TABLE": "aurora-restore-state-dev",
        "AURORA_RESTORE_EVENT_BUS": "aurora-restore-dev",
        "AURORA_RESTORE_CONFIG_PARAMETER": "/aurora-restore/dev/config",
        "AURORA_RESTORE_DB_USERS_PARAMETER": "/aurora-restore/dev/db_users",
        "AURORA_RESTORE_STATE_TTL_DAYS": "30",
        "AURORA_RESTORE_EVENT_BUS_ARN": f"arn:aws:events:us-west-2:{ACCOUNT}:event-bus/aurora-restore-dev",
        "AURORA_RESTORE_SCHEDULER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/aurora-restore-wakeups-dev",
        "AURORA_RESTORE_CLAIM_SECONDS": str(int(inputs["timeout"])),
        "POWERTOOLS_SERVICE_NAME": "aurora-restore",
        "POWERTOOLS_METRICS_NAMESPACE": "AuroraRestore",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }
    assert inputs["deadLetterConfig"]["targetArn"].endswith(":aurora-restore-failed-invocations-dev")
    assert inputs["loggingConfig"]["logGroup"] == f"/aws/lambda/aurora-restore-{kebab(function)}-dev"
    # and only the database steps sit in the VPC
    assert ("vpcConfig" in inputs) == database_step


def test_each_function_has_its_log_group_with_retention_and_an_error_alarm(dev: ProgramRun) -> None:
    for function in FUNCTIONS:
        name = f"aurora-restore-{kebab(function)}-dev"
        group = dev.one("aws:cloudwatch/logGroup:LogGroup", name=f"/aws/lambda/{name}")
        assert group.inputs["retentionInDays"] == 30
        alarm = dev.one(ALARM, name=f"{name}-errors")
        assert alarm.inputs["metricName"] == "Errors"
        assert alarm.inputs["dimensions"] == {"FunctionName": name}
        assert alarm.inputs["alarmActions"] == [f"arn:aws:sns:us-west-2:{ACCOUNT}:aurora-restore-alerts-dev"]


def test_the_database_steps_get_the_stacks_subnets_and_security_groups(dev: ProgramRun) -> None:
    for function in ("mask_data", "setup_db_users", "verify_restore"):
        vpc = dev.one(FUNCTION, name=f"aurora-restore-{kebab(function)}-dev").inputs["vpcConfig"]
        assert vpc["subnetIds"] == ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
        assert vpc["securityGroupIds"] == ["sg-0a1b2c3d4e5f60718"]


# -- rules ----------------------------------------------------------------------------------------------
def test_every_route_is_a_rule_with_the_route_tables_pattern_on_its_bus(dev: ProgramRun) -> None:
    routes = build_routes("us-west-2")
    for route in routes:
        rule = dev.one(RULE, name=f"aurora-restore-{route.name}-dev")
        assert rule.inputs["eventPattern"] == json.dumps(route.pattern)
        if route.bus == "environment":
            assert rule.inputs["eventBusName"] == "aurora-restore-dev"
        else:
            assert "eventBusName" not in rule.inputs  # the region's default bus, where RDS events arrive
        target = dev.one(TARGET, rule=f"aurora-restore-{route.name}-dev")
        assert (
            target.inputs["arn"]
            == f"arn:aws:lambda:us-west-2:{ACCOUNT}:aurora-restore-{kebab(route.function)}-dev"
        )
        assert target.inputs.get("eventBusName") == rule.inputs.get("eventBusName")
        permission = dev.one(
            "aws:lambda/permission:Permission",
            sourceArn=f"arn:aws:events:us-west-2:{ACCOUNT}:rule/"
            + ("aurora-restore-dev/" if route.bus == "environment" else "")
            + f"aurora-restore-{route.name}-dev",
        )
        assert permission.inputs["function"] == f"aurora-restore-{kebab(route.function)}-dev"
        assert permission.inputs["principal"] == "events.amazonaws.com"


def test_the_rds_routes_match_the_target_regions_arns(dev: ProgramRun) -> None:
    rule = dev.one(RULE, name="aurora-restore-rds-deleted-dev")
    assert "arn:aws:rds:us-west-2:" in rule.inputs["eventPattern"]


def test_the_reconciler_runs_on_its_schedule(dev: ProgramRun) -> None:
    schedule = dev.one(RULE, name="aurora-restore-reconcile-schedule-dev")
    assert schedule.inputs["scheduleExpression"] == RECONCILE_SCHEDULE
    target = dev.one(TARGET, rule="aurora-restore-reconcile-schedule-dev")
    assert target.inputs["arn"].endswith(":aurora-restore-reconcile-dev")


def test_every_target_has_a_retry_policy_and_a_dead_letter_queue(dev: ProgramRun) -> None:
    targets = dev.of_type(TARGET)
    assert len(targets) == len(build_routes()) + 2  # + the schedule and the failed-operation alert
    for target in targets:
        assert target.inputs["retryPolicy"]["maximumRetryAttempts"] > 0, target.name
        assert target.inputs["retryPolicy"]["maximumEventAgeInSeconds"] > 0, target.name
        assert target.inputs["deadLetterConfig"]["arn"].endswith(":aurora-restore-events-dlq-dev"), (
            target.name
        )


def test_the_bus_is_archived_and_its_dlq_takes_only_our_rules(dev: ProgramRun) -> None:
    bus = dev.one("aws:cloudwatch/eventBus:EventBus", name="aurora-restore-dev")
    archive = dev.one("aws:cloudwatch/eventArchive:EventArchive")
    assert (
        archive.inputs["eventSourceArn"] == f"arn:aws:events:us-west-2:{ACCOUNT}:event-bus/aurora-restore-dev"
    )
    assert archive.inputs["retentionDays"] == 30
    assert bus is not None
    policy = json.loads(dev.one("aws:sqs/queuePolicy:QueuePolicy").inputs["policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"]


# -- IAM --------------------------------------------------------------------------------------------------
def test_every_function_has_its_own_role_and_policy(dev: ProgramRun) -> None:
    assert set(policies(dev)) == set(FUNCTIONS)
    # one role per function, and the wake-up role EventBridge Scheduler assumes
    assert len(dev.of_type("aws:iam/role:Role")) == len(FUNCTIONS) + 1
    assert not dev.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")  # no managed policies


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_no_iam_statement_allows_wildcard_actions(stack: str, request: pytest.FixtureRequest) -> None:
    run: ProgramRun = request.getfixturevalue(stack)
    for function, document in policies(run).items():
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            for action in actions(statement):
                assert "*" not in action, f"{function}: {action}"
    # Resource policies (key, queue, topic, bucket) never allow a bare "*" action either.
    for token, key in (
        ("aws:kms/key:Key", "policy"),
        ("aws:sqs/queuePolicy:QueuePolicy", "policy"),
        ("aws:sns/topicPolicy:TopicPolicy", "policy"),
    ):
        for resource in run.of_type(token):
            for statement in json.loads(resource.inputs[key])["Statement"]:
                assert "*" not in actions(statement), resource.name


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_destructive_rds_actions_are_limited_to_the_target_cluster_and_its_instances(
    stack: str, request: pytest.FixtureRequest
) -> None:
    run: ProgramRun = request.getfixturevalue(stack)
    target = "dev-target-cluster" if stack == "dev" else "staging-cluster"
    region = run.region
    cluster_arn = f"arn:aws:rds:{region}:{ACCOUNT}:cluster:{target}"
    # Under swap: the cluster restored beside the target, and the old target once renamed away.
    restored, old = f"{cluster_arn}-new-*", f"{cluster_arn}-old-*"
    clusters = {
        "delete_rds": {cluster_arn, old},
        "restore_snapshot": {cluster_arn, restored},
        "check_restore_status": {cluster_arn, restored},
        "swap_clusters": {cluster_arn, restored, old},
    }
    instance_prefix = f"arn:aws:rds:{region}:{ACCOUNT}:db:{target}-"
    extra_instances = {f"arn:aws:rds:{region}:{ACCOUNT}:db:staging-db-1"} if stack == "staging" else set()
    holders: dict[str, set[str]] = {}
    for function, document in policies(run).items():
        for statement in document["Statement"]:
            destructive = DESTRUCTIVE_RDS_ACTIONS & set(actions(statement))
            for action in destructive:
                holders.setdefault(action, set()).add(function)
            if not destructive:
                continue
            for arn in resources(statement):
                assert arn != "*", f"{function}: {destructive} on *"
                assert arn.startswith(f"arn:aws:rds:{region}:{ACCOUNT}:"), arn
                kind = arn.split(":")[5]
                if kind == "cluster":
                    assert arn in clusters[function], f"{function}: {arn}"
                elif kind == "db":
                    assert arn.startswith(instance_prefix) or arn in extra_instances, f"{function}: {arn}"
                elif destructive == {"rds:DeleteDBCluster"}:
                    # The final snapshot a deletion makes (final_snapshot: true), named after the target.
                    assert arn == f"arn:aws:rds:{region}:{ACCOUNT}:cluster-snapshot:{target}-final-*", arn
                else:
                    # What RestoreDBClusterFromSnapshot reads (never a cluster or an instance).
                    assert destructive == {"rds:RestoreDBClusterFromSnapshot"}, f"{function}: {arn}"
                    assert kind in ("cluster-snapshot", "subgrp", "cluster-pg"), arn
    assert holders == {
        "rds:DeleteDBCluster": {"delete_rds"},
        "rds:DeleteDBInstance": {"delete_rds"},
        "rds:RestoreDBClusterFromSnapshot": {"restore_snapshot"},
        "rds:ModifyDBCluster": {"delete_rds", "check_restore_status", "swap_clusters"},
    }


# Every function may schedule, move or drop a wake-up or the operation's watchdog (functions/wakeup.py).
WAKEUP_ACTIONS = {
    "scheduler:CreateSchedule",
    "scheduler:UpdateSchedule",
    "scheduler:DeleteSchedule",
    "iam:PassRole",
}
EXPECTED_ACTIONS: dict[str, set[str]] = {
    "snapshot_check": {
        "rds:DescribeDBClusterSnapshots",
        "rds:DescribeDBSubnetGroups",
        "ec2:DescribeSecurityGroups",
        "rds:DescribeOrderableDBInstanceOptions",
        "secretsmanager:GetSecretValue",
        "ssm:GetParameter",
        "kms:Decrypt",
        "rds:DescribeDBClusters",
        "rds:DescribeDBInstances",
        "rds:DescribeDBClusterParameterGroups",
        "rds:DescribeDBParameterGroups",
    },
    "copy_snapshot": {
        "rds:CopyDBClusterSnapshot",
        "rds:AddTagsToResource",
        "rds:DescribeDBClusterSnapshots",
        "dynamodb:UpdateItem",
    },
    "check_copy_status": {"rds:DescribeDBClusterSnapshots"},
    "delete_rds": {
        "rds:DescribeDBClusters",
        "rds:DeleteDBInstance",
        "rds:DeleteDBCluster",
        "rds:ModifyDBCluster",
    },
    "restore_snapshot": {
        "rds:DescribeDBClusters",
        "rds:RestoreDBClusterFromSnapshot",
        "rds:AddTagsToResource",
    },
    "check_restore_status": {
        "rds:DescribeDBClusters",
        "rds:ModifyDBCluster",
        "rds:DescribeDBInstances",
        "rds:CreateDBInstance",
        "rds:AddTagsToResource",
        "rds:DeleteDBClusterSnapshot",
        "rds:DescribeDBClusterSnapshots",
        "secretsmanager:GetSecretValue",
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",
    },
    "setup_db_users": {
        "rds:DescribeDBClusters",
        "secretsmanager:GetSecretValue",
        "ssm:GetParameter",
        "kms:Decrypt",
    },
    "swap_clusters": {"rds:DescribeDBClusters", "rds:ModifyDBCluster"},
    "notify_completion": {"sns:Publish", "sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt"},
    "cleanup": {
        "rds:DeleteDBClusterSnapshot",
        "rds:DescribeDBClusterSnapshots",
        "s3:ListBucket",
        "s3:DeleteObject",
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",
    },
    "reconcile": {"dynamodb:Scan", "dynamodb:GetItem"},
}
EXPECTED_ACTIONS["verify_restore"] = EXPECTED_ACTIONS["setup_db_users"]
# mask_data: the endpoint, the master password and the masking key (no post_restore_sql in the dev stack).
EXPECTED_ACTIONS["mask_data"] = {"rds:DescribeDBClusters", "secretsmanager:GetSecretValue"}
COMMON_ACTIONS = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "sqs:SendMessage",
    "events:PutEvents",
    "s3:PutObject",
    "dynamodb:PutItem",
    *WAKEUP_ACTIONS,
}
VPC_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_role_allows_exactly_what_its_step_calls(dev: ProgramRun, function: str) -> None:
    expected = COMMON_ACTIONS | EXPECTED_ACTIONS[function]
    if function != "reconcile":
        expected |= {"dynamodb:GetItem", "ssm:GetParameter"}
    if function in ("mask_data", "setup_db_users", "verify_restore"):
        expected |= VPC_ACTIONS
    assert granted(policies(dev)[function]) == expected


def test_only_the_vpc_attachment_and_snapshot_checks_describe_calls_use_a_wildcard_resource(
    dev: ProgramRun,
) -> None:
    unscoped = {  # describe calls that take no resource ARN: held to the target region instead
        "SecurityGroupsChecked": ["ec2:DescribeSecurityGroups"],
        "InstanceClassChecked": ["rds:DescribeOrderableDBInstanceOptions"],
    }
    for function, document in policies(dev).items():
        for statement in document["Statement"]:
            if "*" not in resources(statement):
                continue
            if statement["Sid"] in unscoped:
                assert function == "snapshot_check" and actions(statement) == unscoped[statement["Sid"]]
                assert statement["Condition"] == {"StringEquals": {"aws:RequestedRegion": "us-west-2"}}
            else:
                assert set(actions(statement)) <= VPC_ACTIONS, f"{function}: {statement['Sid']}"


def test_policies_name_the_stacks_own_resources(dev: ProgramRun) -> None:
    snapshot_check = policies(dev)["snapshot_check"]
    by_sid = {statement["Sid"]: statement for statement in snapshot_check["Statement"]}
    assert (
        by_sid["StateTable"]["Resource"]
        == f"arn:aws:dynamodb:us-west-2:{ACCOUNT}:table/aurora-restore-state-dev"
    )
    assert (
        by_sid["PublishEvents"]["Resource"]
        == f"arn:aws:events:us-west-2:{ACCOUNT}:event-bus/aurora-restore-dev"
    )
    assert by_sid["StepRecords"]["Resource"] == "arn:aws:s3:::dev-aurora-restore-logs/aurora-restore-logs/*"
    assert by_sid["SourceSnapshots"]["Resource"] == [
        f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:dev-source-cluster",
        f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster-snapshot:*",
    ]
    # The master secret and the secret a user names (read from the dbUsers secret; ids, not passwords).
    assert by_sid["SecretsChecked"]["Resource"] == [
        f"arn:aws:secretsmanager:us-west-2:{ACCOUNT}:secret:dev/master-credentials-??????",
        f"arn:aws:secretsmanager:us-west-2:{ACCOUNT}:secret:dev/db-users/report_user-??????",
    ]
    assert by_sid["OwnLogs"]["Resource"] == (
        f"arn:aws:logs:us-west-2:{ACCOUNT}:log-group:/aws/lambda/aurora-restore-snapshot-check-dev:*"
    )


def test_staging_adds_the_kms_keys_the_final_snapshot_and_the_listed_instances(staging: ProgramRun) -> None:
    documents = policies(staging)
    copy = {statement["Sid"]: statement for statement in documents["copy_snapshot"]["Statement"]}
    assert copy["SnapshotKey0"]["Resource"].endswith(":key/11111111-2222-3333-4444-555555555555")
    assert copy["SnapshotKey1"]["Resource"].startswith("arn:aws:kms:us-east-1:")
    delete = {statement["Sid"]: statement for statement in documents["delete_rds"]["Statement"]}
    assert "rds:CreateDBClusterSnapshot" in actions(delete["FinalSnapshot"])
    # DeleteDBCluster(FinalDBSnapshotIdentifier) is authorized on the snapshot, and tags it (CopyTagsToSnapshot).
    final = f"arn:aws:rds:eu-west-1:{ACCOUNT}:cluster-snapshot:staging-cluster-final-*"
    assert resources(delete["FinalSnapshotOfDeletion"]) == [final]
    assert set(actions(delete["FinalSnapshotOfDeletion"])) == {"rds:DeleteDBCluster", "rds:AddTagsToResource"}
    assert f"arn:aws:rds:eu-west-1:{ACCOUNT}:db:staging-db-1" in resources(delete["DeleteTargetInstances"])
    # final_snapshots_kept: cleanup lists the target's snapshots and deletes older final ones, those only
    cleanup = {statement["Sid"]: statement for statement in documents["cleanup"]["Statement"]}
    assert resources(cleanup["DeleteOlderFinalSnapshots"]) == [final]
    assert actions(cleanup["DeleteOlderFinalSnapshots"]) == ["rds:DeleteDBClusterSnapshot"]
    assert f"arn:aws:rds:eu-west-1:{ACCOUNT}:cluster:staging-cluster" in resources(
        cleanup["ListTargetSnapshots"]
    )


def test_dev_has_no_final_snapshot_permission(dev: ProgramRun) -> None:
    assert "rds:CreateDBClusterSnapshot" not in granted(policies(dev)["delete_rds"])
    assert {"ListTargetSnapshots", "DeleteOlderFinalSnapshots"}.isdisjoint(
        statement["Sid"] for statement in policies(dev)["cleanup"]["Statement"]
    )


# -- data -------------------------------------------------------------------------------------------------
def test_the_state_table_has_pitr_ttl_and_encryption(dev: ProgramRun) -> None:
    table = dev.one("aws:dynamodb/table:Table", name="aurora-restore-state-dev")
    assert table.inputs["hashKey"] == "operation_id"
    assert table.inputs["attributes"] == [{"name": "operation_id", "type": "S"}]
    assert table.inputs["pointInTimeRecovery"] == {"enabled": True}
    assert table.inputs["ttl"] == {"attributeName": "expires_at", "enabled": True}
    assert table.inputs["serverSideEncryption"]["enabled"] is True


def test_the_log_bucket_blocks_public_access_is_encrypted_and_expires_records(dev: ProgramRun) -> None:
    bucket = dev.one("aws:s3/bucket:Bucket", bucket="dev-aurora-restore-logs")
    block = dev.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert block.inputs["bucket"] == f"{bucket.inputs['bucket']}-id"  # the mock's id of the bucket
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block.inputs[flag] is True
    encryption = dev.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    (rule,) = encryption.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] in ("AES256", "aws:kms")
    lifecycle = dev.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    (expiry,) = lifecycle.inputs["rules"]
    assert expiry["status"] == "Enabled"
    assert expiry["filter"]["prefix"] == "aurora-restore-logs/"
    assert expiry["expiration"]["days"] == 90
    tls = json.loads(dev.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    assert tls["Statement"][0]["Effect"] == "Deny"


def test_topics_and_queues_are_encrypted_and_the_queue_has_its_dlq(dev: ProgramRun) -> None:
    for topic in dev.of_type("aws:sns/topic:Topic"):
        assert topic.inputs["kmsMasterKeyId"].startswith(f"arn:aws:kms:us-west-2:{ACCOUNT}:key/")
    for queue in dev.of_type(QUEUE):
        assert queue.inputs["sqsManagedSseEnabled"] is True
    queue = dev.one(QUEUE, name="aurora-restore-notifications-dev")
    redrive = json.loads(queue.inputs["redrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":aurora-restore-notifications-dlq-dev")
    key = dev.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True


def test_the_config_parameter_is_the_runbooks_document_with_what_the_stack_created(dev: ProgramRun) -> None:
    parameter = dev.one("aws:ssm/parameter:Parameter", name="/aurora-restore/dev/config")
    assert parameter.inputs["type"] == "String"
    document = json.loads(parameter.inputs["insecureValue"])
    config = RestoreConfig.model_validate(document)
    assert config.source_cluster_id == "dev-source-cluster"
    assert config.target_cluster_id == "dev-target-cluster"
    assert (
        document["notification_topic_arn"]
        == f"arn:aws:sns:us-west-2:{ACCOUNT}:aurora-restore-notifications-dev"
    )
    assert document["notification_queue_url"].endswith(f"/{ACCOUNT}/aurora-restore-notifications-dev")
    assert document["log_bucket"] == "dev-aurora-restore-logs"


def test_db_users_are_a_secure_string_whose_value_stays_secret(dev: ProgramRun) -> None:
    parameter = dev.one("aws:ssm/parameter:Parameter", name="/aurora-restore/dev/db_users")
    assert parameter.inputs["type"] == "SecureString"
    # Standard (free) while it fits 4 KB, Advanced (8 KB) past it: a Standard-only parameter failed the deploy.
    assert parameter.inputs["tier"] == "Intelligent-Tiering"
    assert parameter.inputs["keyId"].startswith(f"arn:aws:kms:us-west-2:{ACCOUNT}:key/")
    assert is_secret(parameter.inputs["value"])


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_the_secret_config_never_appears_in_plain_text_in_any_resource_input(
    stack: str, request: pytest.FixtureRequest
) -> None:
    run: ProgramRun = request.getfixturevalue(stack)
    for resource in run.resources:
        for text in plain_strings(resource.inputs):
            for password in SECRET_PASSWORDS:
                assert password not in text, f"{resource.type} {resource.name} shows a DB password"


def test_the_schema_registry_holds_every_event_we_put_on_the_bus(dev: ProgramRun) -> None:
    registry = dev.one("aws:schemas/registry:Registry")
    assert registry.inputs["name"] == "aurora-restore-dev"
    schemas = {schema.inputs["name"]: schema for schema in dev.of_type("aws:schemas/schema:Schema")}
    assert set(schemas) == {f"aurora-restore@{model.detail_type}" for model in BUS_EVENTS}
    for name, schema in schemas.items():
        assert schema.inputs["type"] == "JSONSchemaDraft4"
        content = schema.inputs["content"]
        assert "$defs" not in content and '"const"' not in content, name
        document = json.loads(content)
        detail_type = name.split("@")[1]
        assert document["properties"]["detail"] == {"$ref": f"#/definitions/{detail_type}"}
        assert "operation_id" in document["definitions"][detail_type]["properties"]


def test_alarms_cover_failed_operations_dlq_depth_overdue_waits_and_function_errors(dev: ProgramRun) -> None:
    names = {alarm.inputs["name"] for alarm in dev.of_type(ALARM)}
    assert {
        "aurora-restore-failed-operations-dev",
        "aurora-restore-overdue-waits-dev",
        "aurora-restore-events-dlq-depth-dev",
        "aurora-restore-failed-invocations-depth-dev",
        "aurora-restore-notifications-dlq-depth-dev",
    } <= names
    assert {f"aurora-restore-{kebab(function)}-dev-errors" for function in FUNCTIONS} <= names
    failed = dev.one(RULE, name="aurora-restore-operation-failed-dev")
    assert json.loads(failed.inputs["eventPattern"]) == failed_operations_pattern()
    subscription = dev.one("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.inputs["protocol"] == "email"
    assert subscription.inputs["endpoint"] == "aurora-restore-dev@example.com"
    dashboard = dev.one("aws:cloudwatch/dashboard:Dashboard", dashboardName="aurora-restore-dashboard-dev")
    body = json.loads(dashboard.inputs["dashboardBody"])
    assert len(body["widgets"]) >= 4


def test_the_overdue_alarm_and_the_dashboard_watch_the_metrics_the_reconciler_publishes(
    dev: ProgramRun, capsys: pytest.CaptureFixture[str]
) -> None:
    """CloudWatch keeps each combination of dimensions apart: the alarm must name exactly what the
    reconciler's EMF records carry, or it never sees a timeout."""
    from aws_lambda_powertools.metrics import MetricUnit
    from unit.fakes import SETTINGS as settings  # the dev environment's

    from functions.observability import record_metric
    from functions.routes import RECONCILE

    capsys.readouterr()
    record_metric("WaitTimedOut", MetricUnit.Count, 1, step=RECONCILE, settings=settings)
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    published = {
        name: record[name] for (dimension_set,) in [directive["Dimensions"]] for name in dimension_set
    }

    alarm = dev.one(ALARM, name="aurora-restore-overdue-waits-dev")
    assert alarm.inputs["namespace"] == directive["Namespace"]
    assert alarm.inputs["metricName"] == "WaitTimedOut"
    assert alarm.inputs["dimensions"] == published
    dashboard = dev.one("aws:cloudwatch/dashboard:Dashboard", dashboardName="aurora-restore-dashboard-dev")
    metrics = [
        m
        for widget in json.loads(dashboard.inputs["dashboardBody"])["widgets"]
        for m in widget["properties"]["metrics"]
    ]
    (timed_out,) = [m for m in metrics if m[1] == "WaitTimedOut"]
    assert timed_out[0] == directive["Namespace"]
    assert dict(zip(timed_out[2::2], timed_out[3::2], strict=True)) == published


def test_the_stack_exports_what_an_operator_needs(dev: ProgramRun) -> None:
    outputs = dev.outputs
    assert outputs["bus_name"] == "aurora-restore-dev"
    assert outputs["bus_arn"] == f"arn:aws:events:us-west-2:{ACCOUNT}:event-bus/aurora-restore-dev"
    assert outputs["state_table"] == "aurora-restore-state-dev"
    assert outputs["notification_topic_arn"].endswith(":aurora-restore-notifications-dev")
    assert outputs["notification_queue_url"].endswith("/aurora-restore-notifications-dev")
    assert outputs["function_names"] == {
        function: f"aurora-restore-{kebab(function)}-dev" for function in FUNCTIONS
    }


def test_a_second_environment_gets_its_own_names(staging: ProgramRun) -> None:
    assert staging.outputs["bus_name"] == "aurora-restore-staging"
    names = {function.inputs["name"] for function in staging.of_type(FUNCTION)}
    assert names == {f"aurora-restore-{kebab(function)}-staging" for function in FUNCTIONS}
    verify = staging.one(FUNCTION, name="aurora-restore-verify-restore-staging")
    assert verify.inputs["timeout"] == 600
    # A default bucket name is made unique with the account id.
    assert staging.outputs["log_bucket"] == f"aurora-restore-logs-staging-{ACCOUNT}"
    assert {s.inputs["protocol"] for s in staging.of_type("aws:sns/topicSubscription:TopicSubscription")} == {
        "email",
        "https",
    }


def test_the_wakeup_role_may_only_put_events_on_the_bus(dev: ProgramRun) -> None:
    # Given the dev stack
    # When the program has run
    role = dev.one("aws:iam/role:Role", name="aurora-restore-wakeups-dev")
    policy = dev.one(ROLE_POLICY, name="aurora-restore-wakeups-dev-put-events")
    # Then EventBridge Scheduler, and nothing else, assumes the wake-up role
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "scheduler.amazonaws.com"}]
    # And all it may do is put events on the environment's bus
    document = json.loads(policy.inputs["policy"])
    assert document["Statement"] == [
        {
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": f"arn:aws:events:us-west-2:{ACCOUNT}:event-bus/aurora-restore-dev",
        }
    ]


def test_wake_up_permission_covers_this_environments_schedules_and_no_other_environments(
    dev: ProgramRun,
) -> None:
    """Environment `dev-x`'s names start with `aurora-restore-dev-` as well: dev's functions must not be
    able to delete its wake-ups."""
    from datetime import UTC, datetime
    from fnmatch import fnmatchcase

    from functions import wakeup
    from schemas.common import Step

    def names(environment: str) -> list[str]:
        at = datetime(2099, 12, 31, tzinfo=UTC)
        return [
            wakeup.schedule_name(environment, "op", Step.CHECK_COPY_STATUS, at),
            wakeup.watchdog_name(environment, "op"),
        ]

    prefix = f"arn:aws:scheduler:us-west-2:{ACCOUNT}:schedule/default/"
    for function, document in policies(dev).items():
        (patterns,) = [
            resources(s) for s in document["Statement"] if "scheduler:DeleteSchedule" in actions(s)
        ]
        for name in names("dev"):
            assert any(fnmatchcase(prefix + name, pattern) for pattern in patterns), f"{function}: {name}"
        for name in names("dev-x"):
            assert not any(fnmatchcase(prefix + name, pattern) for pattern in patterns), f"{function}: {name}"


def test_every_aws_name_fits_with_the_longest_environment_name_allowed() -> None:
    """EventBridge rule, Lambda function and IAM role names stop at 64 characters, the scheduler's group at
    64 and a schedule's name at 64: each ends with the environment, so its length is bounded for all."""
    from functions.settings import ENVIRONMENT_MAX_CHARS

    environment = "e" * ENVIRONMENT_MAX_CHARS
    config, secret_keys = stack_config(ROOT / "Pulumi.dev.yaml", SECRET_DB_USERS)
    run = run_program(environment, config, secret_keys)
    limited = {RULE: "name", "aws:lambda/function:Function": "name", "aws:iam/role:Role": "name"}
    checked = 0
    for resource in run.resources:
        key = limited.get(resource.type)
        if key and isinstance(resource.inputs.get(key), str):
            assert environment in resource.inputs[key]
            assert len(resource.inputs[key]) <= 64, f"{resource.type}: {resource.inputs[key]}"
            checked += 1
    assert checked >= 3 * len(FUNCTIONS)
    from datetime import UTC, datetime

    from functions import wakeup
    from schemas.common import Step

    at = datetime(2099, 12, 31, tzinfo=UTC)
    recheck = wakeup.schedule_name(environment, "0" * 36, Step.CHECK_RESTORE_STATUS, at)
    assert recheck.endswith(str(int(at.timestamp())))  # whole: not cut to 64
    assert len(wakeup.watchdog_name(environment, "0" * 36)) <= 64


def test_the_snapshot_rule_takes_only_our_copies_events_in_the_target_region() -> None:
    """Every backup in the region sends cluster-snapshot events: each was an invocation for nothing."""
    from moto.events.models import EventPattern

    (route,) = [route for route in build_routes("us-west-2") if route.name == "rds-snapshot"]
    pattern = EventPattern.load(json.dumps(route.pattern))

    def event(identifier: str, region: str = "us-west-2") -> dict[str, Any]:
        return {
            "source": "aws.rds",
            "detail-type": "RDS DB Cluster Snapshot Event",
            "detail": {
                "SourceIdentifier": identifier,
                "SourceArn": f"arn:aws:rds:{region}:{ACCOUNT}:cluster-snapshot:{identifier}",
                "EventID": "RDS-EVENT-0169",
            },
        }

    assert pattern.matches_event(event("dev-source-cluster-snapshot-2026-11-30-copy"))
    assert not pattern.matches_event(event("rds:dev-target-cluster-2026-11-30-03-10"))
    assert not pattern.matches_event(event("dev-source-cluster-snapshot-2026-11-30-copy", "eu-west-1"))


def test_a_stack_in_china_builds_its_own_arns_in_the_aws_cn_partition() -> None:
    """ARNs we build took `arn:aws:` everywhere: in China (and GovCloud) the RDS rules never matched an event,
    the policies granted nothing and the key policy named a root that does not exist."""
    config, secret_keys = stack_config(ROOT / "Pulumi.dev.yaml", SECRET_DB_USERS)
    restore = json.loads(config["aurora-restore:restore"])
    restore.update(source_region="cn-northwest-1", target_region="cn-north-1")
    config.update({"aws:region": "cn-north-1", "aurora-restore:restore": json.dumps(restore)})
    run = run_program("dev", config, secret_keys)

    for route in build_routes("cn-north-1"):
        if route.pattern.get("source") == ["aws.rds"]:
            rule = run.one(RULE, name=f"aurora-restore-{route.name}-dev")
            assert "arn:aws-cn:rds:cn-north-1:" in rule.inputs["eventPattern"], route.name
            assert "arn:aws:rds:" not in rule.inputs["eventPattern"], route.name
    rds_arns = [
        arn
        for document in policies(run).values()
        for statement in document["Statement"]
        for arn in resources(statement)
        if ":rds:" in arn or ":secretsmanager:" in arn
    ]
    assert rds_arns and all(arn.startswith("arn:aws-cn:") for arn in rds_arns)
    assert f"arn:aws-cn:rds:cn-northwest-1:{ACCOUNT}:cluster:dev-source-cluster" in rds_arns
    (key,) = run.of_type("aws:kms/key:Key")
    assert f'"arn:aws-cn:iam::{ACCOUNT}:root"' in key.inputs["policy"]
    dead_letters = [
        policy.inputs["policy"]
        for policy in run.of_type("aws:sqs/queuePolicy:QueuePolicy")
        if "events.amazonaws.com" in policy.inputs["policy"]
    ]
    assert dead_letters and all(f"arn:aws-cn:events:cn-north-1:{ACCOUNT}:rule" in p for p in dead_letters)
    govcloud = json.dumps([route.pattern for route in build_routes("us-gov-west-1")])
    assert "arn:aws-us-gov:rds:us-gov-west-1:" in govcloud and "arn:aws:" not in govcloud


def test_the_alerts_hear_of_failed_operations_and_refused_requests_only() -> None:
    """A request with no usable operation id never becomes an operation: its RequestRejected is its alert."""
    from moto.events.models import EventPattern

    pattern = EventPattern.load(json.dumps(failed_operations_pattern()))

    def event(detail_type: str, **detail: Any) -> dict[str, Any]:
        return {"source": "aurora-restore", "detail-type": detail_type, "detail": detail}

    assert pattern.matches_event(event("OperationFinished", outcome="failed"))
    assert pattern.matches_event(event("RequestRejected", reason="target_date: not a date"))
    assert not pattern.matches_event(event("OperationFinished", outcome="completed"))
    assert not pattern.matches_event(event("StepFailed", step="delete_rds"))
