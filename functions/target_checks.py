"""EC2 and KMS, described in the target region before anything changes: what the restore will use."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from functions import aws
from functions.rds import rds_error


def security_groups(region: str, group_ids: list[str]) -> list[dict[str, Any]]:
    """Those of `group_ids` that exist in the region, as EC2 describes them (RDS takes VPC security groups
    by id and has no call to describe them). A filter, not GroupIds: an unknown id is left out instead of
    failing the call."""
    what = f"describing security groups {', '.join(group_ids)}"
    try:
        found = aws.client("ec2", region).describe_security_groups(
            Filters=[{"Name": "group-id", "Values": group_ids}]
        )
    except ClientError as exc:
        raise rds_error(region, what, exc) from exc
    return [dict(group) for group in found.get("SecurityGroups", [])]


def kms_key(region: str, key_id: str) -> dict[str, Any] | None:
    """The KMS key `key_id` names in the region, as DescribeKey describes it (KeyMetadata), or None when
    there is none. DescribeKey takes a key id, key ARN, alias name or alias ARN and answers with the key an
    alias points to (https://docs.aws.amazon.com/kms/latest/APIReference/API_DescribeKey.html)."""
    try:
        answer = aws.client("kms", region).describe_key(KeyId=key_id)
    except ClientError as exc:
        if aws.error_code(exc) == "NotFoundException":
            return None
        raise rds_error(region, f"describing KMS key {key_id}", exc) from exc
    return dict(answer["KeyMetadata"])
