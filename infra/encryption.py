"""The stack's KMS key: the SecureString DB users, the SNS topics (alarms and EventBridge publish to them)."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.settings import StackSettings
from schemas.common import partition_of


def key_policy(account: str, alerts_topic_arn: str, partition: str = "aws") -> dict[str, Any]:
    """The default key policy (the account administers the key through IAM) plus the two AWS services that
    publish to our encrypted alerts topic and so need a data key: CloudWatch alarms and EventBridge rules.

    EventBridge has a statement of its own, without aws:SourceAccount or aws:SourceArn: AWS documents that
    these are not supported in a KMS key policy for EventBridge publishing to an encrypted SNS topic
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sns-permissions),
    so under them the failed-operation rule's publish was refused and the alert never arrived. It is held
    to the alerts topic instead by the encryption context SNS asks KMS for, `aws:sns:topicArn`
    (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html)."""
    use = ["kms:Decrypt", "kms:GenerateDataKey*"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministersTheKeyThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "AlarmsPublishToEncryptedTopics",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": use,
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            },
            {
                "Sid": "RulesPublishToTheAlertsTopic",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": use,
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": alerts_topic_arn}},
            },
        ],
    }


def alerts_topic_arn(settings: StackSettings, account: str) -> str:
    """The alerts topic's ARN, known before the topic exists (the topic is encrypted with this key)."""
    partition = partition_of(settings.region)
    return f"arn:{partition}:sns:{settings.region}:{account}:{settings.name('alerts')}"


class StackKey(pulumi.ComponentResource):
    key: aws.kms.Key

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        account: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("aurora-restore:infra:StackKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.key = aws.kms.Key(
            name,
            description=f"aurora-restore {settings.environment}: DB users parameter and SNS topics",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.from_input(account).apply(
                lambda value: json.dumps(
                    key_policy(value, alerts_topic_arn(settings, value), partition_of(settings.region))
                )
            ),
            opts=child,
        )
        self.alias = aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{settings.name('key')}",
            target_key_id=self.key.key_id,
            opts=child,
        )
        self.register_outputs({"key_arn": self.key.arn})
