"""The RDS identifiers we derive (the copy, the writer, the final snapshot), each within RDS's limits.

RDS takes a DB cluster, DB instance or DB cluster snapshot identifier of 1 to 63 letters, digits and
hyphens, beginning with a letter, with no two hyphens in a row and no hyphen at the end:
- https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html
  (TargetDBClusterSnapshotIdentifier)
- https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html (DBInstanceIdentifier)
- https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBClusterFromSnapshot.html
  (DBClusterIdentifier)
- https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html (NewDBClusterIdentifier,
  for the swap's renames)
DeleteDBCluster documents 255 characters for FinalDBSnapshotIdentifier
(https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBCluster.html), but what it names is a
DB cluster snapshot, which CreateDBClusterSnapshot and CopyDBClusterSnapshot hold to 63: the final snapshot
is kept to 63 too, which satisfies both readings.
"""

from __future__ import annotations

import hashlib
import re

from schemas.config import (
    FINAL_SNAPSHOT_INFIX,
    IDENTIFIER_HASH_LENGTH,
    RDS_IDENTIFIER_MAX,
    SWAP_HASH_LENGTH,
    SWAP_NEW_INFIX,
    SWAP_OLD_INFIX,
    WRITER_SUFFIX,
)
from schemas.rds_event_ids import COPY_SUFFIX

IDENTIFIER_MAX = RDS_IDENTIFIER_MAX
# Hex digits of the hash that keeps a shortened name unique (of what was cut) and the same on every retry.
HASH_LENGTH = IDENTIFIER_HASH_LENGTH
_RULES = re.compile(r"[A-Za-z](-?[A-Za-z0-9])*")


def as_identifier(text: str, limit: int = 255) -> str:
    """`text` as an RDS identifier may be: letters, digits and single hyphens, no hyphen at either end,
    at most `limit` characters. Anything else becomes a hyphen."""
    name = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9-]", "-", text)).strip("-")
    return name[:limit].rstrip("-")


def identifier_problem(name: str, limit: int = IDENTIFIER_MAX) -> str | None:
    """Why RDS would refuse `name` as an identifier (None: it takes it)."""
    if len(name) > limit:
        return f"has {len(name)} characters, more than the {limit} RDS takes"
    if not _RULES.fullmatch(name):
        return (
            "is not what RDS takes (letters, digits and hyphens, beginning with a letter, no two hyphens in a"
            " row, no hyphen at the end)"
        )
    return None


def fitted(prefix: str, variable: str, suffix: str = "", *, unique: str | None = None) -> str | None:
    """`<prefix><variable><suffix>` as an RDS identifier of at most IDENTIFIER_MAX characters.

    `variable` is made an identifier (as_identifier). When the whole is too long, it is cut and followed by a
    hash of `unique` (default: `variable` as given): two different values never share the shortened name,
    and the same value gets the same name on every retry. `prefix` and `suffix` are kept as they are (the
    IAM policies and the event rules match them). None when they leave no room for the hash.
    """
    part = as_identifier(variable)
    name = f"{prefix}{part}{suffix}"
    if part and len(name) <= IDENTIFIER_MAX:
        return name
    digest = hashlib.sha256((variable if unique is None else unique).encode()).hexdigest()[:HASH_LENGTH]
    room = IDENTIFIER_MAX - len(prefix) - len(suffix) - HASH_LENGTH
    if room < 0:
        return None
    cut = part[: max(room - 1, 0)].rstrip("-")
    return f"{prefix}{cut}-{digest}{suffix}" if cut else f"{prefix}{digest}{suffix}"


def copy_name(source_name: str) -> str:
    """The copy's identifier: `<source snapshot>-copy`, as the runbook names it. A snapshot found by date
    rather than by name can be automated (`rds:<cluster>-<yyyy-mm-dd-hh-mm>`) or AWS Backup's
    (`awsbackup:job-...`): the service's prefix is dropped and anything an identifier cannot hold becomes a
    hyphen. The source's name is not ours to choose (an automated snapshot of a 63-character cluster has 80):
    one too long is cut and followed by a hash of the whole source name, so the copy still ends in `-copy`
    (the IAM policy's `*-copy` and the copy event's rule match it), differs for every source and is the
    same on every retry."""
    tail = source_name.rpartition(":")[2]
    prefix = "" if as_identifier(tail)[:1].isalpha() else "snapshot-"
    name = fitted(prefix, tail, COPY_SUFFIX, unique=source_name)
    assert name is not None  # the suffix leaves room for the hash
    return name


def writer_id(cluster_id: str) -> str:
    """`<target_cluster_id>-writer`: RestoreConfig keeps the cluster id short enough for it to fit."""
    return f"{cluster_id}{WRITER_SUFFIX}"


def final_snapshot_id(cluster_id: str, operation_id: str) -> str | None:
    """`<target_cluster_id>-final-<operation>`, the operation cut and hashed when the whole is too long;
    None when the target leaves no room (RestoreConfig refuses final_snapshot with such a target)."""
    return fitted(f"{cluster_id}{FINAL_SNAPSHOT_INFIX}", operation_id)


def swap_names(cluster_id: str, operation_id: str) -> tuple[str, str]:
    """Under the swap strategy, (the cluster restored beside the target, the old target's name once renamed
    away): `<target>-new-<hash>` and `<target>-old-<hash>`, the hash the operation's, so the same on every
    retry and different for every operation. RestoreConfig keeps the target short enough for both and the
    new cluster's writer."""
    digest = hashlib.sha256(operation_id.encode()).hexdigest()[:SWAP_HASH_LENGTH]
    return f"{cluster_id}{SWAP_NEW_INFIX}{digest}", f"{cluster_id}{SWAP_OLD_INFIX}{digest}"
