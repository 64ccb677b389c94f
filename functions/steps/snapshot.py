"""Steps 1-3: find the source snapshot, copy it to the target region, wait for the copy."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from functions import config as config_resolver
from functions import secrets, sequence, source_account, target_checks, target_settings
from functions.engine.contract import Done, Outcome, StepContext, Wait, Waiting
from functions.errors import AwsError, ConfigError, InvalidRequest, NotFound, StepError, shown
from functions.identifiers import copy_name, final_snapshot_id, identifier_problem, writer_id
from functions.steps import latest
from functions.steps.preflight import Preflight
from schemas.common import Step, utcnow
from schemas.config import CONFIG_FIELDS, DbUsers, environment_only_problem
from schemas.events import LATEST
from schemas.outputs import StepOutputs
from schemas.rds_event_ids import CLUSTER_SNAPSHOT

OPERATION_TAG = "aurora-restore:operation-id"


def snapshot_check(ctx: StepContext) -> Outcome:
    """Check everything that can be checked, then take the lease on the target: nothing else changes."""
    config = ctx.config
    found = preflight(ctx)
    snapshot = found.snapshot or {}
    name = snapshot["DBClusterSnapshotIdentifier"]
    ctx.services.store.acquire_lease(config.target_cluster_id, ctx.operation_id)
    return Done(
        message="Snapshot exists",
        fields={"snapshot_exists": True, "snapshot_name": name},
        next_step=sequence.after(Step.SNAPSHOT_CHECK, config),
        outputs=StepOutputs(
            snapshot_name=name,
            snapshot_arn=snapshot["DBClusterSnapshotArn"],
            snapshot_encrypted=bool(snapshot.get("StorageEncrypted")),
            engine_version=found.version,
            target_cluster_id=config.target_cluster_id,
            target_settings=found.settings,
            warnings=ctx.warnings,
        ),
    )


def preflight(ctx: StepContext, collect: bool = False) -> Preflight:
    """snapshot_check's checks, in its order, before it takes the lease: to the first failure (raised), or
    with `collect` (`aurora-restore plan`) each one recorded, those needing a failed one's answer skipped."""
    found = Preflight(collect)
    found.run("request", lambda: _check_request(ctx))
    found.users = found.run("users and secrets", lambda: _check_users(ctx))
    found.run("subnet group and security groups", lambda: _check_network(ctx))
    snapshot = found.snapshot = found.run("snapshot", lambda: _source_snapshot(ctx))
    if snapshot is None:
        found.skip(
            (
                "master user",
                "target settings",
                "instance class",
                "parameter groups",
                "KMS key",
                "source account",
                "identifiers",
            ),
            "needs the snapshot",
        )
        return found
    users = found.users
    if users is not None:
        # The restored cluster's master is the source's: the snapshot names it.
        found.run(
            "master user",
            lambda: config_resolver.refuse_master_as_user(
                users, snapshot.get("MasterUsername"), ctx.settings.db_users_parameter
            ),
        )
    # The version the restore asks for, and the writer's class is checked against: RDS restores at the
    # region's default version when RestoreDBClusterFromSnapshot names none, not at the snapshot's.
    found.version = ctx.config.engine_version or snapshot.get("EngineVersion")
    # What the target has now is what the refresh puts back (recorded before anything changes).
    found.settings = found.run(
        "target settings", lambda: target_settings.current(ctx.target_rds, ctx.config.target_cluster_id)
    )
    instance_class = target_settings.instance_class(found.settings, ctx.config, ctx.config_sources)
    found.run("instance class", lambda: _check_instance_class(ctx, found.version, instance_class))
    found.run(
        "parameter groups",
        lambda: target_settings.check_parameter_groups(
            ctx.target_rds, found.settings, ctx.config, found.version
        ),
    )
    found.run("KMS key", lambda: _check_key(ctx, snapshot))
    # Another account's snapshot: can the target account copy it (its key, the role)?
    found.run("source account", lambda: source_account.check_snapshot(ctx, snapshot))
    found.run("identifiers", lambda: _check_identifiers(ctx, snapshot["DBClusterSnapshotIdentifier"]))
    return found


def _check_users(ctx: StepContext) -> DbUsers:
    """The DB users and every secret: read and checked now, before anything is deleted (values not kept)."""
    config = ctx.config
    users, warnings = config_resolver.load_db_users(ctx.settings)
    ctx.warnings.extend(warnings)
    master = secrets.master_credentials(config.master_credentials_secret_id, config.target_region)
    config_resolver.refuse_master_as_user(users, master.username, ctx.settings.db_users_parameter)
    for user in users.users:
        secrets.user_password(user, config.target_region)
    return users


def _check_security_groups(ctx: StepContext, vpc_id: str | None) -> None:
    """The restored cluster's security groups must exist in the target region, in the subnet group's VPC:
    RDS checks that only when restoring, after the target cluster was deleted."""
    config = ctx.config
    wanted = list(dict.fromkeys(config.target_security_groups))
    found = {
        group["GroupId"]: group.get("VpcId")
        for group in target_checks.security_groups(config.target_region, wanted)
    }
    missing = [group_id for group_id in wanted if group_id not in found]
    if missing:
        raise ConfigError(
            f"target_security_groups: no security group {', '.join(missing)} in {config.target_region}: the"
            " restore would be refused after the target cluster was deleted"
        )
    elsewhere = [group_id for group_id in wanted if vpc_id and found[group_id] != vpc_id]
    if elsewhere:
        raise ConfigError(
            f"target_security_groups: {', '.join(f'{g} is in {found[g]}' for g in elsewhere)}, not in"
            f" {vpc_id}, the VPC of target_subnet_group {config.target_subnet_group}: the restore would be"
            " refused after the target cluster was deleted"
        )


def copy_snapshot(ctx: StepContext) -> Outcome:
    config = ctx.config
    source_name = ctx.value("snapshot_name")
    if not source_name:
        raise InvalidRequest("snapshot_name is missing (run snapshot_check first)")
    if source_name != ctx.outputs.get("snapshot_name"):
        raise InvalidRequest(
            f"snapshot_name {shown(source_name)} is not the snapshot this operation found ({ctx.outputs.get('snapshot_name')})"
        )
    target_name = copy_name(source_name)
    ctx.services.store.index_resource(CLUSTER_SNAPSHOT, target_name, ctx.operation_id)
    # Operations restoring the same day's snapshot share its copy; the last one to finish deletes it. Its
    # name is recorded before joining, kept even if the copy call fails the step: `abort` gives up the
    # share it names (else the copy outlived every later operation, counted as still used).
    ctx.outputs["target_snapshot"] = target_name
    ctx.services.store.join_copy(target_name, ctx.operation_id)
    source_account.share(ctx)  # another account's snapshot: shared with this one first
    created = ctx.target_rds.copy_cluster_snapshot(
        source_arn=ctx.outputs["snapshot_arn"],
        source_region=config.source_region,
        target_snapshot_id=target_name,
        tags=ctx.tags(),
        kms_key_id=config.kms_key_id if ctx.outputs.get("snapshot_encrypted") else None,
    )
    message = "Snapshot copy initiated" if created else "Snapshot copy initiated (the copy already existed)"
    ctx.services.store.index_resource(CLUSTER_SNAPSHOT, target_name, ctx.operation_id)
    return Done(
        message=message,
        fields={"source_snapshot": source_name, "target_snapshot": target_name},
        next_step=sequence.after(Step.COPY_SNAPSHOT, config),
        # When the copy was asked for: its progress is measured from here (a copy's SnapshotCreateTime
        # may be the original snapshot's).
        outputs=StepOutputs(
            target_snapshot=target_name,
            copy_requested_at=ctx.outputs.get("copy_requested_at") or utcnow().isoformat(),
        ),
    )


TRUSTED_PROGRESS = 5.0  # below this, a projection from whole percents is too coarse to wait on


def _copy_recheck(snapshot: dict[str, Any], shortest: float, requested_at: str | None) -> float:
    """Aurora sends no event for a copy: check again when its progress says it will be done.

    PercentProgress is a whole number (the true progress is up to one more), so the projection uses the
    middle of that range. Below half way it stops at 90% of the projected time and projects again from
    the finer figure there; past half way it lands just after the projected end (1% later: a margin in
    proportion to the copy, never a fixed number of seconds, which a time-scaled run would magnify; the
    wake-up's at() is rounded up, never down). Below TRUSTED_PROGRESS the wait is never longer than the
    copy has run so far.
    """
    progress = float(snapshot.get("PercentProgress") or 0)
    started = datetime.fromisoformat(requested_at) if requested_at else snapshot.get("SnapshotCreateTime")
    if not started or not 0 < progress < 100:
        return shortest
    elapsed = max(0.0, (utcnow() - started).total_seconds())
    middle = min(progress + 0.5, 99.9)
    remaining = elapsed * (100 - middle) / middle
    # Early on a percent is a coarse unit: stop short of the projection and project again from there.
    remaining = remaining * 0.9 if progress < 50 else remaining * 1.01
    if progress < TRUSTED_PROGRESS:
        remaining = min(remaining, elapsed)
    return max(shortest, remaining)


def check_copy_status(ctx: StepContext) -> Outcome:
    target_name = ctx.value("target_snapshot")
    if target_name != ctx.outputs.get("target_snapshot"):
        raise InvalidRequest(f"target_snapshot {shown(target_name)} is not this operation's copy")
    snapshot = ctx.target_rds.cluster_snapshot(target_name)
    if snapshot is None:
        raise NotFound(f"the snapshot copy {target_name} does not exist in {ctx.config.target_region}")
    status = snapshot.get("Status")
    if status == "available":
        return Done(
            message="Snapshot copy completed",
            fields={"target_snapshot": target_name, "copy_status": "available"},
            next_step=sequence.after(Step.CHECK_COPY_STATUS, ctx.config),
            outputs=StepOutputs(target_snapshot_arn=snapshot.get("DBClusterSnapshotArn")),
        )
    if status in ("copying", "creating", "pending"):
        # A copy can sit queued at 0% before it moves (RDS runs a few copies at a time per region): its
        # progress is measured from the last check that still found it there, not from the request, or a
        # long queue would project a far too late end.
        queued = not float(snapshot.get("PercentProgress") or 0)
        since = ctx.outputs.get("copy_queued_until") or ctx.outputs.get("copy_requested_at")
        recheck = _copy_recheck(snapshot, ctx.config.recheck_interval_seconds, since)
        return Waiting(
            message="Snapshot copy in progress",
            fields={"target_snapshot": target_name, "copy_status": "in-progress"},
            wait=Wait(
                f"snapshot copy {target_name}", ctx.config.copy_timeout_minutes, recheck_after_seconds=recheck
            ),
            outputs=StepOutputs(copy_queued_until=utcnow().isoformat()) if queued else StepOutputs(),
        )
    raise StepError(f"the snapshot copy {target_name} is {status}")


def release_copy(ctx: StepContext) -> bool:
    """Give up this operation's share of the copy, and delete the copy when no operation uses it any more
    (and `delete_copied_snapshot`). Once per operation, recorded: check_restore_status does it as soon as
    the restore is done, cleanup only if that did not. Whether the copy is gone."""
    if ctx.outputs.get("copy_released"):
        return bool(ctx.outputs.get("copy_deleted"))
    copy = ctx.outputs.get("target_snapshot")
    deleted = False
    if copy:
        still_used = ctx.services.store.leave_copy(copy, ctx.operation_id)
        if ctx.config.delete_copied_snapshot and not still_used:
            rds = ctx.target_rds
            deleted = rds.delete_cluster_snapshot(copy) or rds.cluster_snapshot(copy) is None
    ctx.outputs["copy_released"], ctx.outputs["copy_deleted"] = True, deleted
    return deleted


def _check_request(ctx: StepContext) -> None:
    """The request itself: known overrides, no stray direct field (a misspelt one would be ignored and the
    configured target refreshed), a real date."""
    requested = ctx.trigger.payload.get("overrides") or {}
    unknown = sorted(set(requested) - set(CONFIG_FIELDS)) if isinstance(requested, dict) else ["overrides"]
    if unknown:
        raise InvalidRequest(f"unknown override(s): {', '.join(unknown)}")
    refused = environment_only_problem(requested) or (
        environment_only_problem(ctx.trigger.payload) if ctx.trigger.is_direct else None
    )
    if refused:
        raise InvalidRequest(refused)
    if ctx.trigger.is_direct:
        stray = sorted(
            set(ctx.trigger.payload) - {"operation_id", "target_date", "overrides", *CONFIG_FIELDS}
        )
        if stray:
            raise InvalidRequest(
                f"unknown field(s) in the payload: {', '.join(stray)} (it takes operation_id, target_date,"
                " overrides and configuration fields)"
            )
    raw_date = ctx.trigger.payload.get("target_date")
    if raw_date is not None and raw_date != LATEST:
        try:
            date.fromisoformat(str(raw_date))
        except ValueError as exc:
            raise InvalidRequest(f"target_date {shown(raw_date)} is not a date (YYYY-MM-DD)") from exc


def _check_network(ctx: StepContext) -> None:
    """What the restore needs and RDS only checks then, after the target is gone (a misspelt name, another
    region's group, one the functions may not use: AccessDenied fails the operation here, as there)."""
    config = ctx.config
    subnet_group = ctx.target_rds.subnet_group(config.target_subnet_group)
    if subnet_group is None:
        raise ConfigError(
            f"target_subnet_group {config.target_subnet_group} does not exist in {config.target_region}:"
            " the restore would be refused after the target cluster was deleted"
        )
    _check_security_groups(ctx, subnet_group.get("VpcId"))


def _source_snapshot(ctx: StepContext) -> dict[str, Any]:
    """The source cluster's snapshot for the target date: available, and copyable with the configured key."""
    config, day = ctx.config, ctx.state.target_date
    source_rds = source_account.rds(ctx)  # ctx.source_rds, or another account's through its role
    snapshot: dict[str, Any] | None
    if ctx.state.latest_snapshot:  # target_date `latest`: the day recorded is the newest snapshot's
        snapshot = latest.newest_snapshot(source_rds, config.source_cluster_id, config.source_region)
        ctx.state.target_date = latest.snapshot_day(snapshot)
    else:
        snapshot = source_rds.find_snapshot_for_date(
            config.source_cluster_id, day, config.snapshot_name_pattern
        )
    if snapshot is None:
        raise NotFound(
            f"no snapshot of {config.source_cluster_id} in {config.source_region} for {day.isoformat()} "
            f"(looked for {config.snapshot_name_pattern.format(source_cluster_id=config.source_cluster_id, date=day)}"
            " and any snapshot created that day)"
        )
    if snapshot.get("Status") != "available":
        raise StepError(
            f"snapshot {snapshot['DBClusterSnapshotIdentifier']} is {snapshot.get('Status')}, not available"
        )
    cross_region = config.source_region != config.target_region
    if snapshot.get("StorageEncrypted") and cross_region and not config.kms_key_id:
        raise ConfigError(
            f"snapshot {snapshot['DBClusterSnapshotIdentifier']} is encrypted: set kms_key_id to a key in {config.target_region}"
        )
    return snapshot


def _check_instance_class(ctx: StepContext, version: str | None, instance_class: str) -> None:
    """The writer is created after the target was deleted: a class RDS does not offer for the engine version
    the restore will have (the snapshot's, unless engine_version says otherwise) is refused here instead."""
    config = ctx.config
    if not ctx.target_rds.offers_instance_class(config.engine, version, instance_class):
        raise ConfigError(
            f"instance_class {instance_class} is not offered for {config.engine}"
            f"{f' {version}' if version else ''} in {config.target_region}: the writer would be refused after"
            " the target cluster was deleted"
        )


def _check_key(ctx: StepContext, snapshot: dict[str, Any]) -> None:
    """kms_key_id is the key the copy of an encrypted snapshot and the restore use in the target region: one
    that is not there, another region's (a KMS key serves only its own region), not enabled, not a
    symmetric encryption key, or one the functions may not describe is refused here, before anything
    changes, not by CopyDBClusterSnapshot or RestoreDBClusterFromSnapshot after the target was deleted.
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html (KmsKeyId),
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.Encryption.Keys.html (symmetric keys)."""
    config = ctx.config
    key_id, region = config.kms_key_id, config.target_region
    if not key_id:
        return
    used_for = "the copy and the restore" if snapshot.get("StorageEncrypted") else "the restore"
    named_region = key_id.split(":")[3] if key_id.startswith("arn:") and key_id.count(":") >= 5 else region
    if named_region != region:
        raise ConfigError(
            f"kms_key_id {key_id} is in {named_region}: {used_for} take a key in {region}, the target region"
        )
    try:
        key = target_checks.kms_key(ctx.config.target_region, key_id)
    except AwsError as exc:
        if exc.retryable:
            raise
        raise ConfigError(
            f"kms_key_id {key_id}: the functions cannot use it in {region} ({exc.message})"
        ) from exc
    problem = _key_problem(key, region)
    if problem:
        raise ConfigError(f"kms_key_id {key_id} {problem}: {used_for} would be refused")


def _key_problem(key: dict[str, Any] | None, region: str) -> str | None:
    """Why RDS could not encrypt with `key` in `region` (None: it can)."""
    if key is None:
        return f"does not exist in {region}"
    arn = str(key.get("Arn", ""))
    if arn.startswith("arn:") and arn.split(":")[3] != region:
        return f"is a key in {arn.split(':')[3]}, not in {region}"
    if key.get("KeyState", "Enabled") != "Enabled":
        return f"is {key.get('KeyState')}, not Enabled"
    if (
        key.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT"
        or key.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT"
    ):
        return "is not a symmetric encryption key, the only kind RDS encrypts with"
    return None


def _check_identifiers(ctx: StepContext, snapshot_name: str) -> None:
    """Every identifier this operation will give RDS fits RDS's rules, or nothing changes: the copy's, the
    writer's and the final snapshot's (functions/identifiers.py)."""
    config = ctx.config
    names = {"the copy": copy_name(snapshot_name), "the writer": writer_id(config.target_cluster_id)}
    if config.final_snapshot:
        final = final_snapshot_id(config.target_cluster_id, ctx.operation_id)
        names["the final snapshot"] = final or f"{config.target_cluster_id}-final-{ctx.operation_id}"
    for what, name in names.items():
        problem = identifier_problem(name)
        if problem:
            raise ConfigError(f"{what}'s identifier {name} {problem}: RDS would refuse it")
