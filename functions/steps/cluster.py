"""Steps 4-6: delete the old target cluster, restore the copy (under its name, or beside it under swap),
bring up the writer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from functions import secrets, sequence, target_settings
from functions.engine.contract import Done, Outcome, StepContext, Wait, Waiting
from functions.errors import ConfigError, GuardRefused, InvalidRequest, NotFound, StepError, shown
from functions.identifiers import final_snapshot_id, writer_id
from functions.observability import logger
from functions.steps.snapshot import OPERATION_TAG, release_copy
from functions.steps.swap import old_cluster_id, restored_cluster_id
from schemas.common import Step
from schemas.outputs import StepOutputs
from schemas.rds_event_ids import CLUSTER, FAILURE_EVENT_IDS, INSTANCE

GONE = ("deleting",)
STOPPED = ("stopped", "stopping")
# Statuses a restore does not come back from on its own (RDS's status tables for Aurora clusters and DB
# instances): the wait fails at once, naming it, rather than running to its deadline. RDS's failure events
# say the same, but RDS sends events on a best-effort basis.
CLUSTER_FAILED = frozenset(
    {
        "failed",
        "migration-failed",
        "cloning-failed",
        "inaccessible-encryption-credentials",
        "inaccessible-encryption-credentials-recoverable",
        "incompatible-restore",
        "incompatible-parameters",
    }
)
INSTANCE_FAILED = frozenset(
    {
        "failed",
        "incompatible-network",
        "incompatible-option-group",
        "incompatible-parameters",
        "incompatible-restore",
        "inaccessible-encryption-credentials",
        "inaccessible-encryption-credentials-recoverable",
        "insufficient-capacity",
        "restore-error",
        "storage-full",
    }
)
# Put on the restored cluster right after its master password is set, valued with the operation id: a run
# that dies before recording `master_password_set` in state leaves it, and the next run does not set it again.
MASTER_PASSWORD_TAG = "aurora-restore:master-password-set"


def _tag_dict(tags: list[dict[str, str]]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    """Tags as RDS describes them with the resource (no ListTagsForResource call)."""
    return {tag["Key"]: tag["Value"] for tag in resource.get("TagList", [])}


def deletion_guard(ctx: StepContext, cluster: dict[str, Any]) -> None:
    """The deletion guard: never the source, never a protected cluster, never one we restored ourselves."""
    config = ctx.config
    cluster_id = cluster["DBClusterIdentifier"]
    if cluster_id == config.source_cluster_id and config.source_region == config.target_region:
        raise GuardRefused(f"refusing to delete {cluster_id}: it is the source cluster")
    if cluster_id in config.protected_cluster_ids:
        raise GuardRefused(f"refusing to delete {cluster_id}: it is on the protected list")
    if tags_of(cluster).get(OPERATION_TAG) == ctx.operation_id:
        raise GuardRefused(f"refusing to delete {cluster_id}: this operation restored it")
    if cluster.get("DeletionProtection") and not config.allow_deletion_protected:
        raise GuardRefused(
            f"refusing to delete {cluster_id}: deletion protection is on (set allow_deletion_protected to allow it)"
        )
    # A direct payload may name another target_cluster_id (event > state): only the leased one is deleted
    # (under swap, the old target renamed away: the lease is on the target's name).
    leased = config.target_cluster_id if sequence.swaps(config) else cluster_id
    holder = ctx.services.store.lease_holder(leased)
    if holder != ctx.operation_id:
        whose = "its lease" if leased == cluster_id else f"the lease on {leased}"
        raise GuardRefused(
            f"refusing to delete {cluster_id}: this operation does not hold {whose} (holder: {holder or 'none'})"
        )


def delete_rds(ctx: StepContext) -> Outcome:
    config = ctx.config
    cluster_id = old_cluster_id(ctx)
    rds = ctx.target_rds
    fields = {"target_cluster_id": config.target_cluster_id}
    cluster = rds.cluster(cluster_id)
    if cluster is None:
        started = bool(ctx.outputs.get("deletion_started"))
        absent = (
            "Old cluster does not exist"
            if sequence.swaps(config)
            else "Cluster does not exist, proceeding to restore"
        )
        return Done(
            message="Cluster deletion completed" if started else absent,
            fields={**fields, "deletion_status": "completed"},
            next_step=sequence.after(Step.DELETE_RDS, ctx.config),
        )
    status = cluster.get("Status")
    if status not in GONE:
        deletion_guard(ctx, cluster)  # before anything is written: a refused cluster is not indexed as ours
    ctx.services.store.index_resource(CLUSTER, cluster_id, ctx.operation_id)
    outputs: dict[str, Any] = {"deletion_started": True}
    if status not in GONE:
        if status in STOPPED:
            # RDS refuses to delete a stopped cluster or its instances: nothing is asked for, nothing changes.
            raise StepError(
                f"cluster {cluster_id} is {status}, and RDS cannot delete a stopped cluster: start it (aws rds"
                f" start-db-cluster --db-cluster-identifier {cluster_id} --region {config.target_region}),"
                " then resume"
            )
        # Instances first. RDS accepts the cluster's deletion as soon as every instance is `deleting`, so
        # both are asked for in one run. Each check asks again for every member still there: RDS may have
        # refused one for now (the cluster busy), and one already deleting answers so, which is tolerated.
        members = [member["DBInstanceIdentifier"] for member in cluster.get("DBClusterMembers", [])]
        # Recorded in the state before the first deletion is asked for: kept even if a later call fails
        # the step, so the failure notification and `status` say the target was changed (left_in_place).
        ctx.outputs["deletion_started"] = True
        outputs["instances_deleting"] = sorted(members)
        for instance_id in members:
            rds.delete_instance(instance_id)
        if cluster.get("DeletionProtection") and not rds.modify_cluster(
            cluster_id, f"turning off deletion protection of {cluster_id}", DeletionProtection=False
        ):
            return _deleting(
                ctx,
                fields,
                outputs,
                f"cluster {cluster_id} to accept turning its deletion protection off",
                ctx.config.recheck_interval_seconds,
            )
        final = _final_snapshot(ctx) if config.final_snapshot else None
        if final:  # kept after the refresh, so the notification names it (one per refresh, never deleted)
            outputs["final_snapshot"] = final
        if not rds.delete_cluster(cluster_id, final):
            # Refused for now (an instance not yet `deleting`): only the instances' deletions would
            # follow, and no rule listens for those, so look again soon rather than at the safety re-check.
            return _deleting(
                ctx,
                fields,
                outputs,
                f"cluster {cluster_id} to accept its deletion",
                ctx.config.recheck_interval_seconds,
            )
    return _deleting(ctx, fields, outputs, f"cluster {cluster_id} to be deleted")


def _final_snapshot(ctx: StepContext) -> str:
    """The final snapshot's identifier (functions.identifiers.final_snapshot_id); RestoreConfig refuses a
    target that leaves it no room, so this only fails on a configuration recorded before that check."""
    cluster_id = ctx.config.target_cluster_id
    final = final_snapshot_id(cluster_id, ctx.operation_id)
    if final is None:
        raise ConfigError(f"target_cluster_id {cluster_id} leaves no room for a final snapshot's identifier")
    return final


def _deleting(
    ctx: StepContext, fields: dict[str, Any], outputs: dict[str, Any], what: str, recheck: float | None = None
) -> Outcome:
    return Waiting(
        message="Cluster deletion in progress",
        fields={**fields, "deletion_status": "in-progress"},
        wait=Wait(what, ctx.config.delete_timeout_minutes, recheck or ctx.config.event_wait_recheck_seconds),
        outputs=StepOutputs.of(outputs),
    )


def restore_snapshot(ctx: StepContext) -> Outcome:
    config = ctx.config
    target_snapshot = ctx.value("target_snapshot")
    if target_snapshot != ctx.outputs.get("target_snapshot"):
        raise InvalidRequest(f"target_snapshot {shown(target_snapshot)} is not this operation's copy")
    rds = ctx.target_rds
    cluster_id = restored_cluster_id(ctx)
    settings = target_settings.recorded(ctx.outputs)
    kwargs: dict[str, Any] = {
        "DBClusterIdentifier": cluster_id,
        "SnapshotIdentifier": target_snapshot,
        "Engine": config.engine,
        "DBSubnetGroupName": config.target_subnet_group,
        "VpcSecurityGroupIds": list(config.target_security_groups),
        # The target's own tags, then ours (which say what restored it) over them.
        "Tags": _tag_list({**(settings.tags if settings else {}), **_tag_dict(ctx.tags())}),
        **target_settings.restore_arguments(settings, config, ctx.config_sources),
    }
    # The version snapshot_check checked the writer's class against (engine_version, else the snapshot's):
    # named always, since without EngineVersion RDS restores at the region's default version for the engine,
    # not at the snapshot's
    # (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBClusterFromSnapshot.html).
    version = ctx.outputs.get("engine_version") or config.engine_version
    if version:
        kwargs["EngineVersion"] = version
    if config.kms_key_id:
        kwargs["KmsKeyId"] = config.kms_key_id
    ctx.services.store.index_resource(CLUSTER, cluster_id, ctx.operation_id)
    message = "Cluster restore initiated"
    if not rds.restore_cluster(**kwargs):  # a cluster of that name exists: ours already, or a stranger
        existing = rds.cluster(cluster_id)
        if existing is None or tags_of(existing).get(OPERATION_TAG) != ctx.operation_id:
            raise StepError(f"cluster {cluster_id} exists and was not restored by this operation")
        message = "Cluster restore initiated (already under way)"
    return Done(
        message=message,
        fields={"target_cluster_id": config.target_cluster_id, "target_snapshot": target_snapshot},
        next_step=sequence.after(Step.RESTORE_SNAPSHOT, ctx.config),
    )


def check_restore_status(ctx: StepContext) -> Outcome:
    """The restored cluster, then its master password, then its writer: each looked at until available."""
    cluster_id = restored_cluster_id(ctx)
    _refuse_failure_event(ctx)
    cluster = ctx.target_rds.cluster(cluster_id)
    if cluster is None:
        raise NotFound(f"the restored cluster {cluster_id} does not exist")
    fields: dict[str, Any] = {"target_cluster_id": ctx.config.target_cluster_id}
    status = cluster.get("Status")
    if status in CLUSTER_FAILED:
        raise StepError(f"the restored cluster {cluster_id} is {status}")
    if status != "available":
        return _restoring(ctx, fields, status or "creating", f"cluster {cluster_id} to be available", {})
    outputs: dict[str, Any] = {
        "cluster_endpoint": cluster.get("Endpoint"),
        "cluster_port": cluster.get("Port") or 5432,
        "master_username": cluster.get("MasterUsername"),
    }
    if not ctx.outputs.get("master_password_set") and not _set_master_password(ctx, cluster):
        what = f"cluster {cluster_id} to accept its master password"
        return _restoring(ctx, fields, "modifying", what, outputs, ctx.config.recheck_interval_seconds)
    outputs["master_password_set"] = True
    ctx.outputs["master_password_set"] = True
    return _writer_ready(ctx, fields, outputs)


def _refuse_failure_event(ctx: StepContext) -> None:
    """An RDS failure event about this restore fails the step; one from before this restore began is not
    about it (the cluster and writer keep their names from one refresh to the next, and EventBridge and
    Lambda may deliver an event again hours later) and is looked at as any check."""
    rds_event = ctx.trigger.rds
    if rds_event is None or rds_event.event_id not in FAILURE_EVENT_IDS:
        return
    if _happened_before_this_restore(ctx, rds_event.date):
        logger.info("an earlier restore's failure event ignored", extra={"rds_event": rds_event.event_id})
        return
    raise StepError(f"RDS reported a failure for {rds_event.identifier}: {rds_event.event_id}")


def _set_master_password(ctx: StepContext, cluster: dict[str, Any]) -> bool:
    """Set the target's master password on the restored cluster, once (a tag marks it done). False when RDS
    does not take it yet."""
    if tags_of(cluster).get(MASTER_PASSWORD_TAG) == ctx.operation_id:
        return True
    config = ctx.config
    credentials = secrets.master_credentials(config.master_credentials_secret_id, config.target_region)
    # The settings RestoreDBClusterFromSnapshot does not take go with the password, in one ModifyDBCluster.
    modifications = target_settings.cluster_modifications(target_settings.recorded(ctx.outputs))
    cluster_id = cluster["DBClusterIdentifier"]
    if not ctx.target_rds.modify_cluster(
        cluster_id,
        f"setting the master password of {cluster_id}",
        MasterUserPassword=credentials.password.get_secret_value(),
        **modifications,
    ):
        return False
    ctx.target_rds.add_tags(cluster["DBClusterArn"], {MASTER_PASSWORD_TAG: ctx.operation_id})
    return True


def _writer_ready(ctx: StepContext, fields: dict[str, Any], outputs: dict[str, Any]) -> Outcome:
    """Ask for the writer once, then wait for it to be available; then the restore is done."""
    writer = writer_id(restored_cluster_id(ctx))
    if not ctx.outputs.get("writer_requested"):
        ctx.services.store.index_resource(INSTANCE, writer, ctx.operation_id)
        outputs["writer_requested"] = True
        return _ask_for_writer(ctx, fields, outputs, writer)
    instance = ctx.target_rds.instance(writer)
    if instance is None:  # RDS refused it for now: asked again
        return _ask_for_writer(ctx, fields, outputs, writer)
    instance_status = instance.get("DBInstanceStatus")
    if instance_status in INSTANCE_FAILED:
        raise StepError(f"the writer instance {writer} is {instance_status}")
    if instance_status != "available":
        return _restoring(ctx, fields, "creating", f"writer instance {writer} to be available", outputs)
    if ctx.config.delete_copied_snapshot:
        # The restored cluster no longer needs the copy: it goes now (with its last user), not at cleanup,
        # so that a failure from here on (DB users, verification) leaves no full-size snapshot behind.
        release_copy(ctx)
    return Done(
        message="Cluster restore completed",
        fields={**fields, "cluster_status": "available"},
        next_step=sequence.after(Step.CHECK_RESTORE_STATUS, ctx.config),
        outputs=StepOutputs.of({**outputs, "writer_instance_id": writer}),
    )


def _happened_before_this_restore(ctx: StepContext, when: str | None) -> bool:
    """Whether an RDS event dated `when` (its detail's Date) came before this operation asked for the
    restore. Undated or unreadable: taken as current."""
    try:
        dated = datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None
    except ValueError:
        return False
    if dated is None:
        return False
    state = ctx.state
    began = next(
        (entry.started_at for entry in reversed(state.history) if entry.step == Step.RESTORE_SNAPSHOT),
        state.created_at,
    )
    return (dated if dated.tzinfo else dated.replace(tzinfo=UTC)) < began


def _ask_for_writer(
    ctx: StepContext, fields: dict[str, Any], outputs: dict[str, Any], writer: str
) -> Outcome:
    """Create the writer, then wait. Taken (or there already, a re-run after a crash), its creation's events
    end the wait. Refused for now (the cluster `resetting-master-credentials` right after its master password
    was set, or otherwise busy), no event follows: look again at the short interval and ask again, rather
    than at the safety re-check."""
    settings = target_settings.recorded(ctx.outputs)
    accepted = ctx.target_rds.create_instance(
        DBInstanceIdentifier=writer,
        DBClusterIdentifier=restored_cluster_id(ctx),
        Engine=ctx.config.engine,
        Tags=ctx.tags(),
        PubliclyAccessible=False,
        **target_settings.writer_arguments(settings, ctx.config, ctx.config_sources),
    )
    if accepted:
        return _restoring(ctx, fields, "creating", f"writer instance {writer} to be available", outputs)
    what = f"writer instance {writer} to be accepted"
    return _restoring(ctx, fields, "creating", what, outputs, ctx.config.recheck_interval_seconds)


def _restoring(
    ctx: StepContext,
    fields: dict[str, Any],
    status: str,
    what: str,
    outputs: dict[str, Any],
    recheck: float | None = None,
) -> Outcome:
    # cluster_status says "available" only once the writer is: the runbook's script moves on at that word.
    return Waiting(
        message="Cluster restore in progress",
        fields={**fields, "cluster_status": status},
        wait=Wait(what, ctx.config.restore_timeout_minutes, recheck or ctx.config.event_wait_recheck_seconds),
        outputs=StepOutputs.of(outputs),
    )
