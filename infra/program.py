"""The whole system for one environment: `pulumi up -s <env>` runs main()."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from functions.routes import FUNCTIONS, RECONCILE, build_routes
from infra.encryption import StackKey
from infra.function import StepFunction, environment_variables
from infra.masking import MaskingKey, masking_key_secret_name, post_restore_objects
from infra.messaging import Alerts, Notifications, dead_letter_queue
from infra.monitoring import Monitoring
from infra.package import ARTIFACT, MANIFEST
from infra.parameters import RestoreParameters
from infra.policies import PolicyRefs, function_policy_text
from infra.registry import EventSchemas
from infra.routing import EventBus, Routes
from infra.schedule import declare as declare_refresh_schedule
from infra.settings import PROJECT, StackConfigError, StackSettings, load, user_secret_ids
from infra.source_account import source_role_arn
from infra.storage import LogBucket, StateTable
from schemas.common import Step, partition_of

DATABASE_STEPS = (Step.MASK_DATA.value, Step.SETUP_DB_USERS.value, Step.VERIFY_RESTORE.value)


def lambda_code(settings: StackSettings) -> pulumi.Archive:
    """The artifact `make package` built. Missing is only a warning here (tests run without it); the
    engine refuses to deploy a missing file, so `make package` comes before `pulumi up`."""
    path = Path(settings.artifact_path) if settings.artifact_path else ARTIFACT
    manifest = path.with_suffix(".json") if settings.artifact_path else MANIFEST
    if not path.exists():
        pulumi.log.warn(f"{path} does not exist: run `make package` before `pulumi up`")
    elif manifest.exists():
        check_artifact(json.loads(manifest.read_text()), settings, path)
    return pulumi.FileArchive(str(path))


def check_artifact(manifest: dict[str, Any], settings: StackSettings, path: Path) -> None:
    """The artifact must be built for what the stack deploys: its compiled libraries (pydantic-core,
    psycopg2) are per architecture and per Python version, and tracing needs the X-Ray SDK, which is
    packaged only with --tracing. Any of these wrong fails every function at its first import."""
    python_version = settings.runtime.removeprefix("python")
    traced = any(requirement.startswith("aws-xray-sdk") for requirement in manifest.get("requirements", []))
    problems = []
    if manifest.get("architecture") != settings.architecture:
        problems.append(
            f"built for {manifest.get('architecture')}, the stack deploys {settings.architecture}"
        )
    if manifest.get("python_version") != python_version:
        problems.append(
            f"built for Python {manifest.get('python_version')}, the stack runs {settings.runtime}"
        )
    if settings.tracing and not traced:
        problems.append("built without the X-Ray SDK, the stack turns tracing on")
    if problems:
        flags = f"--architecture {settings.architecture} --python-version {python_version}"
        flags += " --tracing" if settings.tracing else ""
        raise StackConfigError(f"{path}: {'; '.join(problems)}: run `python -m infra.package {flags}`")


def main() -> dict[str, Any]:
    settings = load()
    config = pulumi.Config(PROJECT)
    db_users = config.require_secret_object("dbUsers")
    account = aws.get_caller_identity_output().account_id

    key = StackKey("key", settings, account)
    state = StateTable("state", settings)
    logs = LogBucket("logs", settings, account)
    notifications = Notifications("notifications", settings, key.key.arn)
    alerts = Alerts("alerts", settings, key.key.arn, account)
    bus = EventBus("bus", settings, account)
    failures = dead_letter_queue("failed-invocations", settings.name("failed-invocations"), bus)
    refresh = declare_refresh_schedule(settings, bus, account)  # aurora-restore:refreshSchedule, if set
    parameters = RestoreParameters(
        "parameters",
        settings,
        db_users,
        notifications.topic.arn,
        notifications.queue.url,
        logs.bucket.bucket,
        key.key.arn,
    )
    EventSchemas("schemas", settings)
    MaskingKey("masking-key", settings)

    restore = settings.restore
    refs = pulumi.Output.all(
        account=account,
        table_arn=state.table.arn,
        bus_arn=bus.bus.arn,
        wakeup_role_arn=bus.wakeup_role.arn,
        config_parameter_arn=parameters.config.arn,
        db_users_parameter_arn=parameters.db_users.arn,
        bucket_name=logs.bucket.bucket,
        topic_arn=notifications.topic.arn,
        queue_arn=notifications.queue.arn,
        failure_queue_arn=failures.arn,
        key_arn=key.key.arn,
        # Secret ids are not secrets: they name what the policies allow; the passwords stay secret.
        user_secret_ids=pulumi.Output.unsecret(db_users.apply(user_secret_ids)),
    ).apply(
        lambda values: PolicyRefs(
            region=settings.region,
            partition=partition_of(settings.region),
            source_region=settings.source_region,
            log_prefix=settings.log_prefix,
            log_group_arn="",
            target_cluster_id=settings.target_cluster_id,
            source_cluster_id=str(restore["source_cluster_id"]),
            target_subnet_group=str(restore["target_subnet_group"]),
            master_secret_id=str(restore["master_credentials_secret_id"]),
            restore_kms_key_id=restore.get("kms_key_id"),
            extra_kms_key_arns=settings.extra_kms_key_arns,
            target_instance_ids=settings.target_instance_ids,
            final_snapshot=bool(restore.get("final_snapshot", False)),
            final_snapshots_kept=restore.get("final_snapshots_kept") is not None,
            masking_key_secret_id=masking_key_secret_name(settings.environment),
            post_restore_objects=post_restore_objects(restore),
            in_vpc=settings.in_vpc,
            tracing=settings.tracing,
            environment=settings.environment,
            source_role_arn=source_role_arn(restore, settings.environment, partition_of(settings.region)),
            **{**values, "user_secret_ids": tuple(values["user_secret_ids"])},
        )
    )
    environment = environment_variables(
        settings,
        state.table.name,
        bus.bus.name,
        parameters.config.name,
        parameters.db_users.name,
        bus.bus.arn,
        bus.wakeup_role.arn,
    )
    code = lambda_code(settings)

    def policy_of(function: str) -> Any:
        def policy(log_group_arn: pulumi.Output[str]) -> pulumi.Output[str]:
            return pulumi.Output.all(refs, log_group_arn).apply(
                lambda args: function_policy_text(
                    function, dataclasses.replace(args[0], log_group_arn=args[1])
                )
            )

        return policy

    functions = {
        function: StepFunction(
            function.replace("_", "-"),
            settings,
            function,
            code,
            policy_of(function),
            environment,
            failures.arn,
            alerts.topic.arn,
            vpc=function in DATABASE_STEPS,
        )
        for function in FUNCTIONS
    }
    if not settings.in_vpc:
        pulumi.log.warn(
            "aurora-restore:lambdaSubnetIds is not set: mask_data, setup_db_users and verify_restore run outside the "
            "VPC and cannot reach a private cluster"
        )
    lambdas = {function: component.function for function, component in functions.items()}
    Routes("routes", settings, build_routes(settings.region), bus, lambdas, lambdas[RECONCILE])
    Monitoring(
        "monitoring",
        settings,
        bus.bus.name,
        bus.dead_letters.arn,
        alerts.topic.arn,
        {
            "events-dlq": bus.dead_letters,
            "failed-invocations": failures,
            "notifications-dlq": notifications.dead_letters,
        },
        [component.function.name for component in functions.values()],
    )

    outputs: dict[str, Any] = {
        "environment": settings.environment,
        "region": settings.region,
        "bus_name": bus.bus.name,
        "bus_arn": bus.bus.arn,
        "state_table": state.table.name,
        "notification_topic_arn": notifications.topic.arn,
        "notification_queue_url": notifications.queue.url,
        "alerts_topic_arn": alerts.topic.arn,
        "log_bucket": logs.bucket.bucket,
        "config_parameter": parameters.config.name,
        "db_users_parameter": parameters.db_users.name,
        "function_names": {function: lambdas[function].name for function in FUNCTIONS},
        "events_dlq_url": bus.dead_letters.url,
        "failed_invocations_dlq_url": failures.url,
    }
    if refresh is not None:
        outputs["refresh_schedule"] = refresh.schedule.name
    for name, value in outputs.items():
        pulumi.export(name, value)
    return outputs
