"""The environment's event bus (with its archive) and every rule, built from the one route table."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from functions.routes import Route
from infra.messaging import dead_letter_queue
from infra.policies import assume_role_policy
from infra.settings import StackSettings
from schemas.common import partition_of

# EventBridge retries a failed delivery with backoff for at most this long, then dead-letters it.
MAX_RETRY_ATTEMPTS = 8
MAX_EVENT_AGE_SECONDS = 3600


def rule_name(settings: StackSettings, route_name: str) -> str:
    return f"aurora-restore-{route_name}-{settings.environment}"


def dlq_policy(queue_arn: str, account: str, region: str, bus_name: str, environment: str) -> dict[str, Any]:
    """Our rules (on our bus or on the default bus) may dead-letter into the queue; nothing else."""
    rules = f"arn:{partition_of(region)}:events:{region}:{account}:rule"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OurRulesDeadLetter",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {
                    "ArnLike": {
                        "aws:SourceArn": [
                            f"{rules}/{bus_name}/aurora-restore-*-{environment}",
                            f"{rules}/aurora-restore-*-{environment}",
                        ]
                    }
                },
            }
        ],
    }


class EventBus(pulumi.ComponentResource):
    """aurora-restore-<env>, archived for replay, and the DLQ every rule target dead-letters into."""

    bus: aws.cloudwatch.EventBus
    dead_letters: aws.sqs.Queue

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        account: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("aurora-restore:infra:EventBus", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bus = aws.cloudwatch.EventBus(name, name=settings.bus_name, opts=child)
        self.archive = aws.cloudwatch.EventArchive(
            f"{name}-archive",
            name=settings.bus_name[:48],
            description=f"every event on {settings.bus_name}, for `aws events start-replay`",
            event_source_arn=self.bus.arn,
            retention_days=settings.archive_retention_days,
            opts=child,
        )
        self.dead_letters = dead_letter_queue(f"{name}-dlq", settings.name("events-dlq"), self)
        self.dead_letters_policy = aws.sqs.QueuePolicy(
            f"{name}-dlq-policy",
            queue_url=self.dead_letters.url,
            policy=pulumi.Output.all(self.dead_letters.arn, account).apply(
                lambda args: json.dumps(
                    dlq_policy(args[0], args[1], settings.region, settings.bus_name, settings.environment)
                )
            ),
            opts=child,
        )
        # EventBridge Scheduler assumes this role to put a waiting step's one-shot wake-up (RecheckDue) on
        # the bus (functions/wakeup.py); it may do nothing else.
        self.wakeup_role = aws.iam.Role(
            f"{name}-wakeups",
            name=settings.name("wakeups"),
            assume_role_policy=json.dumps(assume_role_policy("scheduler.amazonaws.com")),
            opts=child,
        )
        self.wakeup_policy = aws.iam.RolePolicy(
            f"{name}-wakeups-policy",
            name=settings.name("wakeups") + "-put-events",
            role=self.wakeup_role.id,
            policy=self.bus.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": arn}],
                    }
                )
            ),
            opts=child,
        )
        self.register_outputs(
            {
                "name": self.bus.name,
                "arn": self.bus.arn,
                "dlq_url": self.dead_letters.url,
                "wakeup_role_arn": self.wakeup_role.arn,
            }
        )


def lambda_target(
    name: str,
    rule: aws.cloudwatch.EventRule,
    function_arn: pulumi.Input[str],
    dead_letter_arn: pulumi.Input[str],
    parent: pulumi.Resource,
    bus_name: pulumi.Input[str] | None = None,
) -> aws.cloudwatch.EventTarget:
    return aws.cloudwatch.EventTarget(
        name,
        rule=rule.name,
        event_bus_name=bus_name,
        arn=function_arn,
        retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
            maximum_retry_attempts=MAX_RETRY_ATTEMPTS, maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS
        ),
        dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=dead_letter_arn),
        opts=pulumi.ResourceOptions(parent=parent),
    )


class Routes(pulumi.ComponentResource):
    """One rule per route (environment bus or the region's default bus for RDS), one Lambda target each,
    and the reconciler's schedule."""

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        routes: list[Route],
        bus: EventBus,
        functions: Mapping[str, aws.lambda_.Function],
        reconcile: aws.lambda_.Function,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("aurora-restore:infra:Routes", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.rules: dict[str, aws.cloudwatch.EventRule] = {}
        self.targets: dict[str, aws.cloudwatch.EventTarget] = {}
        for route in routes:
            bus_name = bus.bus.name if route.bus == "environment" else None
            function = functions[route.function]
            rule = aws.cloudwatch.EventRule(
                f"{name}-{route.name}",
                name=rule_name(settings, route.name),
                description=route.description,
                event_bus_name=bus_name,
                event_pattern=json.dumps(route.pattern),
                opts=child,
            )
            self.rules[route.name] = rule
            self.targets[route.name] = lambda_target(
                f"{name}-{route.name}-target", rule, function.arn, bus.dead_letters.arn, self, bus_name
            )
            aws.lambda_.Permission(
                f"{name}-{route.name}-invoke",
                action="lambda:InvokeFunction",
                function=function.name,
                principal="events.amazonaws.com",
                source_arn=rule.arn,
                opts=child,
            )
        self.schedule = aws.cloudwatch.EventRule(
            f"{name}-reconcile-schedule",
            name=rule_name(settings, "reconcile-schedule"),
            description="the reconciler re-checks overdue waits",
            schedule_expression=settings.reconcile_schedule,
            opts=child,
        )
        self.schedule_target = lambda_target(
            f"{name}-reconcile-schedule-target", self.schedule, reconcile.arn, bus.dead_letters.arn, self
        )
        aws.lambda_.Permission(
            f"{name}-reconcile-schedule-invoke",
            action="lambda:InvokeFunction",
            function=reconcile.name,
            principal="events.amazonaws.com",
            source_arn=self.schedule.arn,
            opts=child,
        )
        self.register_outputs({"rules": {key: rule.name for key, rule in self.rules.items()}})
