"""The two stand-ins moto needs for a source in another account: a shared snapshot's copy, AssumeRole refused.

source_account.py says exactly what each emulates."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from moto.rds import models as rds_models
from moto.rds.exceptions import (
    DBClusterSnapshotAlreadyExistsError,
    DBClusterSnapshotNotFoundError,
    RDSClientError,
)
from moto.rds.utils import split_arn
from moto.sts import models as sts_models
from moto.sts.exceptions import STSClientError

_lock = threading.Lock()
_originals: dict[str, Callable[..., Any]] = {}


def install() -> None:
    """Put both stand-ins on moto's backends (in this process; idempotent). Before the RDS simulator's
    install, which then holds the stand-in's copies `copying` as it holds moto's."""
    with _lock:
        if _originals:
            return
        _originals["copy"] = rds_models.RDSBackend.copy_db_cluster_snapshot
        _originals["assume"] = sts_models.STSBackend.assume_role
        rds_models.RDSBackend.copy_db_cluster_snapshot = _copy  # type: ignore[method-assign,assignment]
        sts_models.STSBackend.assume_role = _assume_role  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    """moto as it was (after the simulator's uninstall, which puts back the stand-in it found)."""
    with _lock:
        if not _originals:
            return
        rds_models.RDSBackend.copy_db_cluster_snapshot = _originals.pop("copy")  # type: ignore[method-assign]
        sts_models.STSBackend.assume_role = _originals.pop("assume")  # type: ignore[method-assign]


def _copy(backend: Any, *args: Any, **kwargs: Any) -> Any:
    """CopyDBClusterSnapshot: another account's snapshot, shared with the caller's, copied as RDS does."""
    source = kwargs.get("source_db_cluster_snapshot_identifier") or args[0]
    if not str(source).startswith("arn:") or split_arn(source)[1] == backend.account_id:
        return _originals["copy"](backend, *args, **kwargs)
    region, account, _, name = split_arn(source)
    from moto.backends import get_backend

    shared = get_backend("rds")[account][region].cluster_snapshots.get(name)
    if shared is None or not {backend.account_id, "all"} & set(shared.attributes.get("restore", [])):
        raise DBClusterSnapshotNotFoundError(source)  # RDS's answer for a snapshot not shared with the caller
    target = kwargs["target_db_cluster_snapshot_identifier"]
    if target in backend.cluster_snapshots:
        raise DBClusterSnapshotAlreadyExistsError(target)
    key = kwargs.get("kms_key_id")
    if shared.encrypted and not key:
        raise RDSClientError(
            "InvalidParameterValue", "KmsKeyId is required to copy a shared encrypted snapshot"
        )
    copy = rds_models.DBClusterSnapshot(
        backend,
        shared.cluster,
        target,
        tags=kwargs.get("tags"),
        kms_key_id=backend._validate_kms_key(key) if key else None,
    )
    backend.cluster_snapshots[target] = copy
    return copy


def _assume_role(backend: Any, **kwargs: Any) -> Any:
    """AssumeRole into another account's role: refused when the role is missing or its trust policy's
    external id is not the request's."""
    role_arn, external_id = kwargs["role_arn"], kwargs.get("external_id")
    account = role_arn.split(":")[4]
    if account != backend.account_id and not _trusted(account, role_arn, external_id):
        raise STSClientError(
            "AccessDenied", f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
        )
    return _originals["assume"](backend, **kwargs)


def _trusted(account: str, role_arn: str, external_id: str | None) -> bool:
    from moto.iam.models import iam_backends

    try:
        role = iam_backends[account]["aws"].get_role_by_arn(role_arn)
    except Exception:  # noqa: BLE001 - moto's NotFound: no such role
        return False
    for statement in json.loads(role.assume_role_policy_document).get("Statement", []):
        wanted = statement.get("Condition", {}).get("StringEquals", {}).get("sts:ExternalId")
        if statement.get("Effect") == "Allow" and wanted in (None, external_id):
            return True
    return False
