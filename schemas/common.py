"""Reusable annotated types and the step catalogue shared by every model."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PlainSerializer, StringConstraints

SCHEMA_VERSION = "1.0"


def _lower(value: str) -> str:
    """RDS's case for an identifier. A function of ours, not `str.lower`: pydantic reads a validator's
    signature, and a builtin's is parsed from its text by the tokenizer, whose patterns are compiled then
    (a few milliseconds of every cold start)."""
    return value.lower()


def empty_list() -> list[Any]:
    """A list field's `default_factory`. Not `list`: pydantic reads a factory's signature to see whether it
    takes the validated data, and a builtin's is parsed from its text, as for `_lower`."""
    return []


OperationId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"),
    Field(description="Operation identifier: letters, digits, '.', '_', ':' and '-', at most 128 characters"),
]
ClusterId = Annotated[
    str,
    StringConstraints(max_length=63, pattern=r"^[a-zA-Z](-?[a-zA-Z0-9])*$"),
    # RDS keeps identifiers in lower case and describes them so: compared as given, `Dev-Target` was not
    # the `dev-target` RDS answered with (the lease, the deletion guard, the protected list, events).
    AfterValidator(_lower),
    Field(
        description="An RDS DB cluster identifier: 1-63 letters, digits and hyphens, starting with a letter, "
        "no two hyphens in a row, no hyphen at the end (RDS stores it in lower case, and so do we)"
    ),
]
SnapshotId = Annotated[
    str,
    StringConstraints(
        pattern=r"^(arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:cluster-snapshot:)?[a-zA-Z][a-zA-Z0-9:-]{0,254}$"
    ),
    Field(description="An RDS DB cluster snapshot identifier (or ARN)"),
]
Region = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$"),
    Field(description="An AWS region name"),
]


def partition_of(region: str) -> str:
    """The ARN partition of a region `Region` accepts: China's and GovCloud's have their own."""
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


# "schema.table" (the configuration's expected_tables, a masking rule's table).
TableName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*$")]
TargetDate = Annotated[date, Field(description="The day whose snapshot is restored (YYYY-MM-DD)")]
# A time as the functions write it into state items and notices: `datetime.isoformat()` (`+00:00`, not
# pydantic's `Z`), so a value read and written again keeps its text.
IsoDateTime = Annotated[datetime, PlainSerializer(lambda value: value.isoformat(), return_type=str)]


class Step(StrEnum):
    """The steps: the runbook's ten, with mask_data between check_restore_status and setup_db_users (only
    for a configuration with masking rules or post-restore SQL) and swap_clusters after verify_restore
    (only under the swap strategy, which also moves delete_rds after it): functions.sequence says which
    steps an operation takes, and in what order."""

    SNAPSHOT_CHECK = "snapshot_check"
    COPY_SNAPSHOT = "copy_snapshot"
    CHECK_COPY_STATUS = "check_copy_status"
    DELETE_RDS = "delete_rds"
    RESTORE_SNAPSHOT = "restore_snapshot"
    CHECK_RESTORE_STATUS = "check_restore_status"
    MASK_DATA = "mask_data"
    SETUP_DB_USERS = "setup_db_users"
    VERIFY_RESTORE = "verify_restore"
    SWAP_CLUSTERS = "swap_clusters"
    NOTIFY_COMPLETION = "notify_completion"
    CLEANUP = "cleanup"

    @property
    def kebab(self) -> str:
        return self.value.replace("_", "-")


# The runbook's steps that wait on AWS (RDS events and RecheckDue end their waits).
WAITING_STEPS: frozenset[Step] = frozenset(
    {Step.CHECK_COPY_STATUS, Step.DELETE_RDS, Step.CHECK_RESTORE_STATUS}
)
# Every step whose waits RDS events and RecheckDue end: the runbook's, and the swap's switch.
EVENT_WAITING_STEPS: frozenset[Step] = WAITING_STEPS | {Step.SWAP_CLUSTERS}


def utcnow() -> datetime:
    return datetime.now(UTC)


def spoken_duration(span: timedelta) -> str:
    """A span as people say it: `45 s`, `33 min`, `24.0 h`."""
    seconds = span.total_seconds()
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"
