"""The dashboard and the system-wide alarms: failed operations, DLQ depth, overdue waits."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from functions.observability import NAMESPACE as METRICS_NAMESPACE
from functions.observability import metric_dimensions
from functions.routes import RECONCILE
from infra.routing import MAX_EVENT_AGE_SECONDS, MAX_RETRY_ATTEMPTS, rule_name
from infra.settings import StackSettings
from schemas.events import EVENT_SOURCE


def reconciler_metric_dimensions(environment: str) -> dict[str, str]:
    """The dimensions of the reconciler's metrics (functions.reconcile), exactly as it publishes them."""
    return metric_dimensions(environment, RECONCILE)


def failed_operations_pattern() -> dict[str, Any]:
    """What the alerts topic hears of: an operation that failed, and a request refused before it could be
    one (RequestRejected: no usable operation id). EventBridge content filtering's `$or`:
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html"""
    return {
        "source": [EVENT_SOURCE],
        "$or": [
            {"detail-type": ["OperationFinished"], "detail": {"outcome": ["failed"]}},
            {"detail-type": ["RequestRejected"]},
        ],
    }


def dashboard_body(
    region: str,
    function_names: list[str],
    queue_names: list[str],
    failed_rule: str,
    bus_name: str,
    environment: str,
) -> str:
    def widget(title: str, metrics: list[list[Any]], x: int, y: int, stat: str = "Sum") -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "stat": stat,
                "period": 300,
                "view": "timeSeries",
                "metrics": metrics,
            },
        }

    invocations = [["AWS/Lambda", "Invocations", "FunctionName", name] for name in function_names]
    errors = [["AWS/Lambda", "Errors", "FunctionName", name] for name in function_names]
    duration = [["AWS/Lambda", "Duration", "FunctionName", name] for name in function_names]
    depth = [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name] for name in queue_names]
    operations = [
        ["AWS/Events", "MatchedEvents", "EventBusName", bus_name, "RuleName", failed_rule],
    ]
    reconciler = [part for pair in reconciler_metric_dimensions(environment).items() for part in pair]
    operations += [[METRICS_NAMESPACE, metric, *reconciler] for metric in ("WaitTimedOut", "RecheckDue")]
    return json.dumps(
        {
            "widgets": [
                widget("Invocations", invocations, 0, 0),
                widget("Errors", errors, 12, 0),
                widget("Duration (p95)", duration, 0, 6, stat="p95"),
                widget("Dead-letter queue depth", depth, 12, 6, stat="Maximum"),
                widget("Failed operations, overdue waits, rechecks", operations, 0, 12),
            ]
        }
    )


class Monitoring(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        settings: StackSettings,
        bus_name: pulumi.Input[str],
        events_dlq_arn: pulumi.Input[str],
        alerts_topic_arn: pulumi.Input[str],
        dead_letter_queues: Mapping[str, aws.sqs.Queue],
        function_names: list[pulumi.Output[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("aurora-restore:infra:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # A failed operation: straight to the alerts topic, and counted for the alarm and the dashboard.
        self.failed_rule = aws.cloudwatch.EventRule(
            f"{name}-failed-operations",
            name=rule_name(settings, "operation-failed"),
            description="an operation finished failed",
            event_bus_name=bus_name,
            event_pattern=json.dumps(failed_operations_pattern()),
            opts=child,
        )
        self.failed_target = aws.cloudwatch.EventTarget(
            f"{name}-failed-operations-target",
            rule=self.failed_rule.name,
            event_bus_name=bus_name,
            arn=alerts_topic_arn,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_retry_attempts=MAX_RETRY_ATTEMPTS, maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS
            ),
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=events_dlq_arn),
            opts=child,
        )

        def alarm(
            key: str, description: str, namespace: str, metric: str, dimensions: Any, statistic: str = "Sum"
        ) -> aws.cloudwatch.MetricAlarm:
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{key}",
                name=settings.name(key),
                alarm_description=description,
                namespace=namespace,
                metric_name=metric,
                dimensions=dimensions,
                statistic=statistic,
                period=300,
                evaluation_periods=1,
                threshold=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[alerts_topic_arn],
                opts=child,
            )

        self.failed_alarm = alarm(
            "failed-operations",
            "an aurora-restore operation failed (the alert email has the details)",
            "AWS/Events",
            "MatchedEvents",
            {"EventBusName": bus_name, "RuleName": self.failed_rule.name},
        )
        self.overdue_alarm = alarm(
            "overdue-waits",
            "the reconciler failed a wait past its deadline (copy, delete, restore or the switch)",
            METRICS_NAMESPACE,
            "WaitTimedOut",
            reconciler_metric_dimensions(settings.environment),
        )
        self.dlq_alarms = [
            alarm(
                f"{key}-depth",
                f"messages are waiting in the {key} dead-letter queue",
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                {"QueueName": queue.name},
                statistic="Maximum",
            )
            for key, queue in dead_letter_queues.items()
        ]
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=settings.name("dashboard"),
            dashboard_body=pulumi.Output.all(
                pulumi.Output.all(*function_names),
                pulumi.Output.all(*[queue.name for queue in dead_letter_queues.values()]),
                self.failed_rule.name,
                bus_name,
            ).apply(
                lambda args: dashboard_body(
                    settings.region, list(args[0]), list(args[1]), args[2], args[3], settings.environment
                )
            ),
            opts=child,
        )
        self.register_outputs({"dashboard": self.dashboard.dashboard_name})
