"""One function of the system: its Lambda, its own least-privilege role, its log group and its error alarm."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pulumi
import pulumi_aws as aws

from functions.routes import handler_path
from infra.settings import StackSettings


def environment_variables(
    settings: StackSettings,
    table_name: pulumi.Input[str],
    bus_name: pulumi.Input[str],
    config_parameter: pulumi.Input[str],
    db_users_parameter: pulumi.Input[str],
    bus_arn: pulumi.Input[str],
    wakeup_role_arn: pulumi.Input[str],
) -> dict[str, pulumi.Input[str]]:
    """What functions.settings reads, Powertools' own settings, and pydantic's plugin switch."""
    return {
        "AURORA_RESTORE_ENV": settings.environment,
        "AURORA_RESTORE_STATE_TABLE": table_name,
        "AURORA_RESTORE_EVENT_BUS": bus_name,
        "AURORA_RESTORE_CONFIG_PARAMETER": config_parameter,
        "AURORA_RESTORE_DB_USERS_PARAMETER": db_users_parameter,
        "AURORA_RESTORE_STATE_TTL_DAYS": str(settings.state_ttl_days),
        "AURORA_RESTORE_EVENT_BUS_ARN": bus_arn,
        "AURORA_RESTORE_SCHEDULER_ROLE_ARN": wakeup_role_arn,
        "POWERTOOLS_SERVICE_NAME": "aurora-restore",
        "POWERTOOLS_METRICS_NAMESPACE": "AuroraRestore",
        "POWERTOOLS_TRACE_DISABLED": "false" if settings.tracing else "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        # We use no pydantic plugins; without this, building the first model reads the entry points of
        # every installed distribution looking for some, in each cold start.
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }


class StepFunction(pulumi.ComponentResource):
    """aurora-restore-<step>-<env>. `policy` turns the log group's ARN into the role's policy document."""

    function: aws.lambda_.Function
    role: aws.iam.Role
    log_group: aws.cloudwatch.LogGroup

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        function: str,
        code: pulumi.Archive,
        policy: Callable[[pulumi.Output[str]], pulumi.Input[str]],
        environment: Mapping[str, pulumi.Input[str]],
        failure_queue_arn: pulumi.Input[str],
        alerts_topic_arn: pulumi.Input[str],
        vpc: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("aurora-restore:infra:StepFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        function_name = settings.function_name(function)
        sizing = settings.sizing_of(function)
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=settings.log_retention_days,
            opts=child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            name=function_name,
            description=f"aurora-restore {function} ({settings.environment}): exactly what this step calls",
            assume_role_policy=_LAMBDA_TRUST,
            opts=child,
        )
        self.role_policy = aws.iam.RolePolicy(
            f"{name}-policy",
            name=f"{function_name}-least-privilege",
            role=self.role.id,
            policy=policy(self.log_group.arn),
            opts=child,
        )
        vpc_config = (
            aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=list(settings.lambda_subnet_ids),
                security_group_ids=list(settings.lambda_security_group_ids),
            )
            if vpc and settings.in_vpc
            else None
        )
        self.function = aws.lambda_.Function(
            name,
            name=function_name,
            description=f"aurora-restore {function} ({settings.environment})",
            role=self.role.arn,
            runtime=settings.runtime,
            architectures=[settings.architecture],
            handler=handler_path(function),
            code=code,
            memory_size=sizing.memory_mb,
            timeout=sizing.timeout_s,
            # A step's claim (functions/engine/claims.py) lasts as long as the function may run.
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={**environment, "AURORA_RESTORE_CLAIM_SECONDS": str(sizing.timeout_s)}
            ),
            # Async invocations (EventBridge) that still fail after Lambda's own retries land here.
            dead_letter_config=aws.lambda_.FunctionDeadLetterConfigArgs(target_arn=failure_queue_arn),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="Text", log_group=self.log_group.name
            ),
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(
                mode="Active" if settings.tracing else "PassThrough"
            ),
            vpc_config=vpc_config,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group, self.role_policy]),
        )
        self.errors_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-errors",
            name=f"{function_name}-errors",
            alarm_description=f"{function_name} raised errors (see its log group)",
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions={"FunctionName": self.function.name},
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[alerts_topic_arn],
            opts=child,
        )
        self.register_outputs({"name": self.function.name, "arn": self.function.arn})


_LAMBDA_TRUST = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
    '"Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
)
