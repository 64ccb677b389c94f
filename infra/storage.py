"""The state table (DynamoDB) and the step-record bucket (S3)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from infra.settings import StackSettings


class StateTable(pulumi.ComponentResource):
    """aurora-restore-state-<env>: one item per operation, a lease per target, the RDS resource index."""

    table: aws.dynamodb.Table

    def __init__(
        self, name: str, settings: StackSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("aurora-restore:infra:StateTable", name, None, opts)
        self.table = aws.dynamodb.Table(
            name,
            name=settings.table_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key="operation_id",
            attributes=[aws.dynamodb.TableAttributeArgs(name="operation_id", type="S")],
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            # expires_at is epoch seconds (schemas.state.OperationState, functions.state.index_resource).
            ttl=aws.dynamodb.TableTtlArgs(attribute_name="expires_at", enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"name": self.table.name, "arn": self.table.arn})


class LogBucket(pulumi.ComponentResource):
    """The per-step JSON records under <log_prefix>/<operation_id>/: private, encrypted, expiring."""

    bucket: aws.s3.Bucket

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        account: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("aurora-restore:infra:LogBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Bucket names are global: the account id keeps the default unique.
        bucket_name: pulumi.Input[str] = settings.log_bucket_name or pulumi.Output.from_input(account).apply(
            lambda value: f"{settings.name('logs')}-{value}"
        )
        self.bucket = aws.s3.Bucket(
            name, bucket=bucket_name, force_destroy=settings.force_destroy, opts=child
        )
        self.public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        self.ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    ),
                )
            ],
            opts=child,
        )
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-step-records",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(
                        prefix=f"{settings.log_prefix}/"
                    ),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=settings.log_expiration_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=7
                    ),
                )
            ],
            opts=child,
        )
        self.policy = aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=self.bucket.id,
            policy=self.bucket.arn.apply(lambda arn: json.dumps(tls_only_policy(arn))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access]),
        )
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})


def tls_only_policy(bucket_arn: str) -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
