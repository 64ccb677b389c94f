"""The SSM parameters the functions read: /aurora-restore/<env>/config and /aurora-restore/<env>/db_users."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.masking import masking_key_secret_name
from infra.settings import PROJECT, StackConfigError, StackSettings, validate_db_users

# Parameter Store's largest value (the Advanced tier; Standard holds 4,096). Both parameters are
# Intelligent-Tiering: Standard (free) while they fit 4 KB, Advanced once they grow past it.
PARAMETER_MAX_CHARS = 8_192
TIER = "Intelligent-Tiering"


def config_document(
    restore: dict[str, Any], topic_arn: str, queue_url: str, log_bucket: str, masking_key_secret_id: str = ""
) -> str:
    """The runbook's config JSON: the stack's `restore` values plus what the stack itself created."""
    document = {
        **restore,
        "notification_topic_arn": topic_arn,
        "notification_queue_url": queue_url,
        "log_bucket": log_bucket,
        "masking_key_secret_id": masking_key_secret_id,
    }
    return json.dumps(document, indent=2, sort_keys=True)


def db_users_document(users: Any) -> str:
    """Compact JSON: it is a secret nobody reads in a diff, and every character counts towards the limit.
    Too large is refused here, at preview, with the count and size only (the value holds passwords)."""
    count = len(validate_db_users(users).users)
    document = json.dumps(users, separators=(",", ":"), sort_keys=True)
    if len(document) > PARAMETER_MAX_CHARS:
        raise StackConfigError(
            f"{PROJECT}:dbUsers is {len(document):,} characters as JSON ({count} users), over Parameter"
            f" Store's {PARAMETER_MAX_CHARS:,}: shorten it (secret ids instead of inline passwords) or list"
            " fewer users"
        )
    return document


class RestoreParameters(pulumi.ComponentResource):
    config: aws.ssm.Parameter
    db_users: aws.ssm.Parameter

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        db_users: pulumi.Output[Any],
        topic_arn: pulumi.Input[str],
        queue_url: pulumi.Input[str],
        log_bucket: pulumi.Input[str],
        key_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("aurora-restore:infra:RestoreParameters", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.config = aws.ssm.Parameter(
            f"{name}-config",
            name=settings.config_parameter,
            type="String",
            tier=TIER,
            description="aurora-restore configuration (runbook keys); managed by Pulumi",
            # Not a secret (it holds secret ids, never values): shown in previews and diffs.
            insecure_value=pulumi.Output.all(topic_arn, queue_url, log_bucket).apply(
                lambda args: config_document(
                    settings.restore, args[0], args[1], args[2], masking_key_secret_name(settings.environment)
                )
            ),
            opts=child,
        )
        # db_users is a Pulumi secret: the value stays secret in the state and reaches AWS only here.
        self.db_users = aws.ssm.Parameter(
            f"{name}-db-users",
            name=settings.db_users_parameter,
            type="SecureString",
            tier=TIER,
            key_id=key_arn,
            description="aurora-restore DB users; managed by Pulumi (pulumi config set --secret dbUsers)",
            value=pulumi.Output.secret(db_users).apply(db_users_document),
            opts=child,
        )
        self.register_outputs({"config": self.config.name, "db_users": self.db_users.name})
