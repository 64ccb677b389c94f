"""Masking's infrastructure: the environment's masking key secret, and mask_data's policy statements."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from infra.settings import PROJECT, StackSettings

if TYPE_CHECKING:
    from infra.policies import PolicyRefs

# The key's length in hex characters: 256 bits, far over functions.secrets.MASKING_KEY_MIN.
KEY_HEX_CHARS = 64


def masking_key_secret_name(environment: str) -> str:
    """The secret the stack creates per environment and names in the config document."""
    return f"{PROJECT}/{environment}/masking-key"


class MaskingKey(pulumi.ComponentResource):
    """A random key, made once: the same environment masks the same value alike on every refresh.

    The value is drawn when the secret version is first created; later updates leave it alone
    (ignore_changes), so neither `pulumi up` nor a preview ever changes the key. Rotating it is deleting
    the version (docs/masking.md): every masked value then changes with the next refresh.
    """

    secret: aws.secretsmanager.Secret

    def __init__(
        self, name: str, settings: StackSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aurora-restore:infra:MaskingKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name=masking_key_secret_name(settings.environment),
            description="aurora-restore masking key (masking_key_secret_id); managed by Pulumi",
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-value",
            secret_id=self.secret.id,
            secret_string=pulumi.Output.secret(secrets.token_hex(KEY_HEX_CHARS // 2)),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secret_string"]),
        )
        self.register_outputs({"secret_name": self.secret.name})


def masking_key_statements(refs: PolicyRefs, sid: str = "MaskingKey") -> list[dict[str, Any]]:
    """Reading the masking key (mask_data samples and masks with it, verify_restore checks with it)."""
    from infra.policies import _statement

    if not refs.masking_key_secret_id:
        return []
    return [_statement(sid, ["secretsmanager:GetSecretValue"], [refs.secret_arn(refs.masking_key_secret_id)])]


def mask_data_policy(refs: PolicyRefs) -> list[dict[str, Any]]:
    """mask_data: the endpoint and master password (as setup_db_users), the key, the scripts' objects."""
    from infra.policies import _statement

    statements = [
        # Under swap, the restored cluster beside the target (functions.steps.db.master_target).
        _statement(
            "DescribeTarget", ["rds:DescribeDBClusters"], [refs.target_cluster_arn, refs.restored_cluster_arn]
        ),
        _statement("MasterSecret", ["secretsmanager:GetSecretValue"], [refs.master_secret_arn]),
        *masking_key_statements(refs),
    ]
    if refs.post_restore_objects:
        objects = [
            f"arn:{refs.partition}:s3:::{uri.removeprefix('s3://')}" for uri in refs.post_restore_objects
        ]
        statements.append(_statement("PostRestoreSql", ["s3:GetObject"], objects))
    return statements


def post_restore_objects(restore: dict[str, Any]) -> tuple[str, ...]:
    """The S3 URIs of the stack's post_restore_sql scripts: the only objects mask_data may read."""
    return tuple(str(script["uri"]) for script in restore.get("post_restore_sql") or [])
