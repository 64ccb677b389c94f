"""The stack's KMS key: the SecureString DB users, the SNS topics (alarms and EventBridge publish to them)."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.settings import StackSettings
from schemas.common import partition_of


def key_policy(account: str, partition: str = "aws") -> dict[str, Any]:
    """The default key policy (the account administers the key through IAM) plus the two AWS services that
    publish to our encrypted topics and so need a data key: CloudWatch alarms and EventBridge rules."""
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
                "Sid": "AlarmsAndRulesPublishToEncryptedTopics",
                "Effect": "Allow",
                "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
                "Action": use,
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            },
        ],
    }


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
                lambda value: json.dumps(key_policy(value, partition_of(settings.region)))
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
