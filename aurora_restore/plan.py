"""`aurora-restore plan`: every check a refresh's first step makes, and what the refresh would do; no change.

The checks are snapshot_check's own (functions.steps.snapshot.preflight), run with every failure collected,
against a state store and an event publisher that refuse any write; the lease is read, never taken. To
them `plan` adds the account's RDS quotas (DescribeAccountAttributes), which only `plan` checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from functions import aws, target_settings
from functions.errors import ConfigError, StepError
from functions.identifiers import copy_name, final_snapshot_id, swap_names, writer_id
from functions.steps.preflight import Check, Preflight

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aurora_restore.operations import Target
    from functions.engine.contract import StepContext
    from functions.settings import Settings
    from functions.store import StateStore
    from schemas.config import RestoreConfig

# The target's downtime, from the first deletion call to the users set up, as docs/performance.md's
# simulated AWS durations model it (AWS-like: delete 8 min = writer 5 + cluster 3, restore 15 min, writer
# instance 10 min), which its measured runs match to within a minute. An estimate: RDS's own times vary
# with the snapshot's size, the instance class and the region's load.
DOWNTIME_MODEL_S = {"delete target": 8 * 60, "restore cluster": 15 * 60, "create writer": 10 * 60}
# Under swap the old target serves until the switch: the downtime is one rename of the restored cluster into
# the target's name ("about two minutes", aurora_restore.bench.pipeline.AWS_MINUTES.rename; renaming the old
# target away frees the name at once), and a little for RDS-EVENT-0172 or the re-check that ends the wait.
SWAP_DOWNTIME_MODEL_S = {"rename into the target's name": 2 * 60, "rename event or re-check": 30}
# The account quotas a refresh uses (RDS DescribeAccountAttributes' AccountQuotaName).
QUOTAS = ("DBClusters", "DBInstances", "ManualClusterSnapshots")


class PlanChanged(Exception):
    """`plan` asked to change something: a bug, refused before it reached AWS."""


class ReadOnlyStore:
    """The state store with its reads only: any write raises PlanChanged before reaching DynamoDB."""

    READS = frozenset({"get", "scan_operations", "lease_holder", "lease_refusal", "lookup_resource"})

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name in self.READS:
            return getattr(self._store, name)
        raise PlanChanged(f"plan changes nothing, yet the state store was asked to {name}")


class LeasedStore(ReadOnlyStore):
    """The store as delete_rds's guard reads it once the operation took the target's lease, still read-only."""

    def __init__(self, store: Any, cluster: str, operation_id: str) -> None:
        super().__init__(store)
        self._leased = (cluster, operation_id)

    def lease_holder(self, cluster: str) -> str | None:
        leased, holder = self._leased
        return holder if cluster == leased else self._store.lease_holder(cluster)  # type: ignore[no-any-return]


class NoPublisher:
    """An event publisher that refuses every event: `plan` puts nothing on the bus."""

    def publish(self, events: Sequence[Any]) -> None:
        raise PlanChanged(f"plan changes nothing, yet {len(events)} event(s) were to be put on the bus")


@dataclass(frozen=True)
class Quotas:
    """The account's usage and maximum of each quota a refresh uses; or why they could not be read."""

    usage: dict[str, tuple[int, int]]
    unavailable: str | None = None


def _settings(target: Target) -> Settings:
    """The environment's settings, as `config show` finds them (the environment's table, bus, parameters)."""
    from functions.settings import get_settings

    os.environ["AURORA_RESTORE_ENV"] = target.environment
    os.environ.setdefault("AWS_REGION", target.region)
    get_settings.cache_clear()
    return get_settings()


def build_context(target: Target, target_date: date | str, overrides: dict[str, Any]) -> StepContext:
    """snapshot_check's context for a request started now, with a store and a publisher that write nothing.

    ConfigError when the configuration does not resolve (the first check, as at snapshot_check)."""
    from aurora_restore.operations import default_operation_id
    from functions import config as resolver
    from functions.engine.contract import StepContext, Trigger, TriggerKind
    from functions.engine.services import Services
    from schemas.common import Step, utcnow
    from schemas.state import OperationState

    settings = _settings(target)
    # The environment layer is the functions' own environment, not this shell's (as `config show`).
    resolved = resolver.resolve(settings, event_values=overrides, environ={})
    operation_id = default_operation_id(target.environment, target_date)
    payload: dict[str, Any] = {"operation_id": operation_id, "target_date": str(target_date)}
    if overrides:
        payload["overrides"] = overrides
    now = utcnow()
    # `latest`: the day is the newest snapshot's, which the snapshot check finds and records (as at the start).
    latest = not isinstance(target_date, date)
    day = now.date() if latest else target_date
    state = OperationState(
        operation_id=operation_id, target_date=day, latest_snapshot=latest, created_at=now, updated_at=now
    )
    services = Services(
        settings, publisher=NoPublisher(), store=cast("StateStore", ReadOnlyStore(target.store()))
    )
    trigger = Trigger(TriggerKind.RESTORE_REQUESTED, "plan", operation_id, payload)
    return StepContext(
        Step.SNAPSHOT_CHECK,
        state,
        resolved.config,
        resolved.sources,
        trigger,
        services,
        list(resolved.warnings),
    )


def plan(target: Target, target_date: date | str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plan's report (render.plan_text and plan_json word it): every check, and what a refresh started
    now for `target_date` (a day, or `latest`) would do. Reads only."""
    from functions.steps.snapshot import preflight

    try:
        ctx = build_context(target, target_date, overrides or {})
    except ConfigError as exc:
        refused = Preflight(collect=True)
        refused.add("configuration", "failed", exc.message)
        return refused_report(target_date, refused)
    found = preflight(ctx, collect=True)
    found.checks.insert(0, Check("configuration", "passed"))
    found.run("lease", lambda: _check_lease(ctx))
    cluster = found.run("target cluster", lambda: ctx.target_rds.cluster(ctx.config.target_cluster_id))
    if cluster is not None:
        found.run("deletion guard", lambda: _check_guard(ctx, cluster))
    _check_quotas(ctx, found, cluster)
    return report(ctx, found, cluster)


def _check_guard(ctx: StepContext, cluster: dict[str, Any]) -> None:
    """delete_rds's guard on the target (never the source, a protected cluster, one with deletion protection
    unless allowed), as it runs once the operation holds the lease: else the refresh fails after the copy."""
    from dataclasses import replace

    from functions.engine.services import Services
    from functions.steps.cluster import deletion_guard

    store = LeasedStore(ctx.services.store, ctx.config.target_cluster_id, ctx.operation_id)
    services = Services(ctx.settings, publisher=NoPublisher(), store=cast("StateStore", store))
    deletion_guard(replace(ctx, services=services), cluster)


def _check_quotas(ctx: StepContext, found: Preflight, cluster: dict[str, Any] | None) -> None:
    """The account's quotas against what the refresh adds at its peak (unknown when RDS does not say)."""
    quotas = account_quotas(ctx.config.target_region)
    if quotas.unavailable:
        found.add("quotas", "unknown", quotas.unavailable)
        return
    copy = copy_name(found.snapshot["DBClusterSnapshotIdentifier"]) if found.snapshot else None
    copy_exists = copy is not None and ctx.target_rds.cluster_snapshot(copy) is not None
    swap = ctx.config.strategy == "swap"
    needs = quota_needs(cluster, copy_exists, ctx.config.final_snapshot, swap=swap)
    problems = quota_problems(quotas.usage, needs)
    found.add(
        "quotas", "failed" if problems else "passed", "; ".join(problems) or quota_note(needs, swap=swap)
    )


def _check_lease(ctx: StepContext) -> None:
    """The lease on the target, read: held by an operation that still counts, a refresh would be refused."""
    store = ctx.services.store
    cluster = ctx.config.target_cluster_id
    holder = store.lease_holder(cluster)
    refusal = store.lease_refusal(cluster, holder) if holder else None
    if refusal:
        raise StepError(refusal)


def account_quotas(region: str) -> Quotas:
    """The account's usage and maximum of QUOTAS in `region`; `unavailable` says why when RDS did not say."""
    try:
        answer = aws.client("rds", region).describe_account_attributes()
    except ClientError as exc:
        return Quotas({}, f"DescribeAccountAttributes failed: {aws.error_code(exc)} (not checked)")
    except NotImplementedError:  # moto in-process has no such call
        return Quotas({}, "DescribeAccountAttributes is not offered here (not checked)")
    except BotoCoreError as exc:
        return Quotas({}, f"DescribeAccountAttributes failed: {type(exc).__name__} (not checked)")
    usage = {
        str(quota["AccountQuotaName"]): (int(quota.get("Used", 0)), int(quota.get("Max", 0)))
        for quota in answer.get("AccountQuotas", [])
        if quota.get("AccountQuotaName") in QUOTAS
    }
    return Quotas(usage)


def quota_needs(
    target: dict[str, Any] | None, copy_exists: bool, final_snapshot: bool, *, swap: bool = False
) -> dict[str, int]:
    """How many more of each quota the refresh holds at its peak. Under replace the target is deleted before
    the restore, so its cluster and instances make room for the restored ones; under swap the restored
    cluster and its writer stand beside the target until the switch. The copy is shared when it exists
    already; a final snapshot of the target is one more manual cluster snapshot."""
    members = len(target.get("DBClusterMembers", [])) if target and not swap else 0
    return {
        "DBClusters": 0 if target and not swap else 1,
        "DBInstances": max(0, 1 - members),
        "ManualClusterSnapshots": (0 if copy_exists else 1) + (1 if final_snapshot and target else 0),
    }


def quota_problems(usage: dict[str, tuple[int, int]], needs: dict[str, int]) -> list[str]:
    """Each quota the refresh would exceed, as `<name>: <used> of <max> used, the refresh needs <n> more`."""
    problems = []
    for name, more in needs.items():
        used, most = usage.get(name, (0, 0))
        if name in usage and more and used + more > most:
            problems.append(f"{name}: {used} of {most} used, the refresh needs {more} more")
    return problems


def quota_note(needs: dict[str, int], *, swap: bool = False) -> str:
    why = (
        "the restored cluster stands beside the target until the switch"
        if swap
        else "the target is deleted first"
    )
    return (
        f"room for {needs['DBClusters']} more cluster(s), {needs['DBInstances']} more instance(s) and"
        f" {needs['ManualClusterSnapshots']} more manual cluster snapshot(s) ({why})"
    )


def refused_report(target_date: date | str, found: Preflight) -> dict[str, Any]:
    """The report when the configuration itself does not resolve: nothing else could be checked."""
    return {
        "would_start": False,
        "reasons": found.reasons,
        "target_date": str(target_date),
        "strategy": None,  # the configuration did not resolve
        "snapshot": None,
        "copy": None,
        "target": None,
        "settings_carried": {},
        "users": [],
        "masking_rules": [],
        "expected_downtime_s": None,
        "downtime_model": DOWNTIME_MODEL_S,
        "warnings": [],
        "checks": [check.as_dict() for check in found.checks],
    }


def report(ctx: StepContext, found: Preflight, cluster: dict[str, Any] | None) -> dict[str, Any]:
    """The plan: what the checks found and what the refresh would do (pure: from what was read)."""
    config, snapshot = ctx.config, found.snapshot
    model = SWAP_DOWNTIME_MODEL_S if config.strategy == "swap" else DOWNTIME_MODEL_S
    return {
        "would_start": not found.reasons,
        "reasons": found.reasons,
        "target_date": ctx.state.target_date.isoformat(),  # `latest`: the newest snapshot's day
        "strategy": config.strategy,
        "snapshot": snapshot_part(snapshot),
        "copy": copy_part(config, snapshot),
        "target": target_part(ctx, cluster),
        "settings_carried": settings_carried(ctx, found),
        "users": [_user(user) for user in (found.users.users if found.users else [])],
        "masking_rules": masking_rules(config),
        "expected_downtime_s": sum(model.values()),
        "downtime_model": model,
        "warnings": list(ctx.warnings),
        "checks": [check.as_dict() for check in found.checks],
    }


def snapshot_part(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    created = snapshot.get("SnapshotCreateTime")
    return {
        "name": snapshot["DBClusterSnapshotIdentifier"],
        "arn": snapshot.get("DBClusterSnapshotArn"),
        "size_gb": snapshot.get("AllocatedStorage"),
        "created": created.isoformat() if isinstance(created, datetime) else created,
        "encrypted": bool(snapshot.get("StorageEncrypted")),
        "engine_version": snapshot.get("EngineVersion"),
    }


def copy_part(config: RestoreConfig, snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    encrypted = bool(snapshot.get("StorageEncrypted"))
    return {
        "name": copy_name(snapshot["DBClusterSnapshotIdentifier"]),
        "region": config.target_region,
        "kms_key": config.kms_key_id if encrypted else None,
        "deleted_after_restore": config.delete_copied_snapshot,
    }


def target_part(ctx: StepContext, cluster: dict[str, Any] | None) -> dict[str, Any]:
    """The target: what becomes of it, and the names the refresh gives. Under swap it is restored beside it
    under a name of its own, switched in by rename, and the old target (renamed away) deleted after the
    switch; the names' hash is the operation's, so a `start` gives other ones than this plan's."""
    config = ctx.config
    target = config.target_cluster_id
    final = final_snapshot_id(target, ctx.operation_id) if config.final_snapshot and cluster else None
    part = {
        "cluster": target,
        "region": config.target_region,
        "exists": cluster is not None,
        "status": cluster.get("Status") if cluster else None,
        "instances": [m.get("DBInstanceIdentifier") for m in (cluster or {}).get("DBClusterMembers", [])],
        "action": "deleted then restored" if cluster else "restored (it does not exist now)",
        "final_snapshot": final,
        "writer": writer_id(target),
    }
    if config.strategy != "swap":
        return part
    new_id, old_id = swap_names(target, ctx.operation_id)
    action = (
        f"keeps serving; restored beside it as {new_id}, then switched by rename (the old one renamed"
        f" {old_id}, then deleted)"
        if cluster
        else f"restored as {new_id}, then renamed to {target} (it does not exist now)"
    )
    return part | {
        "action": action,
        "writer": writer_id(new_id),
        "restored_as": new_id,
        "old_renamed_to": old_id if cluster else None,
    }


def settings_carried(ctx: StepContext, found: Preflight) -> dict[str, Any]:
    """What the restored cluster and its writer are given (restore_snapshot, check_restore_status): the
    configuration's, and the target's own settings recorded before the refresh (functions.target_settings)."""
    config, settings, sources = ctx.config, found.settings, ctx.config_sources
    carried: dict[str, Any] = {
        "engine": config.engine,
        "engine_version": found.version,
        "subnet_group": config.target_subnet_group,
        "security_groups": list(config.target_security_groups),
        "kms_key": config.kms_key_id,
        "publicly_accessible": False,
        "database_name": config.database_name,
        "cluster": target_settings.restore_arguments(settings, config, sources)
        | target_settings.cluster_modifications(settings),
        "writer": target_settings.writer_arguments(settings, config, sources),
        "tags": dict(settings.tags) if settings else {},
        "from_target": settings is not None,
    }
    return carried


def _user(user: Any) -> dict[str, Any]:
    """A DB user as the plan shows it: the password named by where it comes from, never its value."""
    secret = getattr(user, "password_secret_id", None)
    return {
        "username": user.username,
        "privileges": list(user.privileges),
        "password": f"secret {secret}" if secret else "literal (hidden)",
    }


def masking_rules(config: RestoreConfig) -> list[Any]:
    """The environment's masking rules when the configuration has them (the rules, not the key)."""
    rules = getattr(config, "masking_rules", None) or []
    return [rule.model_dump(mode="json") if hasattr(rule, "model_dump") else rule for rule in rules]
