"""The runbook's notification topic and queue (what notify_completion sends), and the alerts topic."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.settings import StackSettings

DLQ_RETENTION_SECONDS = 14 * 24 * 3600


def dead_letter_queue(name: str, queue_name: str, parent: pulumi.Resource) -> aws.sqs.Queue:
    """A DLQ keeps messages the longest SQS allows, encrypted with SQS-managed keys (which EventBridge and
    Lambda can write to without a key policy)."""
    return aws.sqs.Queue(
        name,
        name=queue_name,
        message_retention_seconds=DLQ_RETENTION_SECONDS,
        sqs_managed_sse_enabled=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )


class Notifications(pulumi.ComponentResource):
    """SNS topic and SQS queue (with its DLQ) that receive every operation's outcome."""

    topic: aws.sns.Topic
    queue: aws.sqs.Queue
    dead_letters: aws.sqs.Queue

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        key_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("aurora-restore:infra:Notifications", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(
            f"{name}-topic", name=settings.name("notifications"), kms_master_key_id=key_arn, opts=child
        )
        self.dead_letters = dead_letter_queue(f"{name}-dlq", settings.name("notifications-dlq"), self)
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            name=settings.name("notifications"),
            sqs_managed_sse_enabled=True,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            redrive_policy=self.dead_letters.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 5})
            ),
            opts=child,
        )
        self.redrive_allow = aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq-allow",
            queue_url=self.dead_letters.url,
            redrive_allow_policy=self.queue.arn.apply(
                lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
            ),
            opts=child,
        )
        self.register_outputs(
            {"topic_arn": self.topic.arn, "queue_url": self.queue.url, "dlq_url": self.dead_letters.url}
        )


def alerts_topic_policy(topic_arn: str, account: str) -> dict[str, Any]:
    """CloudWatch alarms and this account's EventBridge rules may publish; nobody else from outside."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AlarmsAndRulesOfThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ],
    }


class Alerts(pulumi.ComponentResource):
    """aurora-restore-alerts-<env>: alarms and failed operations, to the stack's alert emails/endpoints."""

    topic: aws.sns.Topic

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        key_arn: pulumi.Input[str],
        account: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("aurora-restore:infra:Alerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(
            f"{name}-topic", name=settings.name("alerts"), kms_master_key_id=key_arn, opts=child
        )
        self.policy = aws.sns.TopicPolicy(
            f"{name}-policy",
            arn=self.topic.arn,
            policy=pulumi.Output.all(self.topic.arn, account).apply(
                lambda args: json.dumps(alerts_topic_policy(args[0], args[1]))
            ),
            opts=child,
        )
        self.subscriptions = [
            aws.sns.TopicSubscription(
                f"{name}-{index}",
                topic=self.topic.arn,
                protocol=endpoint.protocol,
                endpoint=endpoint.endpoint,
                opts=child,
            )
            for index, endpoint in enumerate(settings.alert_endpoints)
        ]
        self.register_outputs({"topic_arn": self.topic.arn})
