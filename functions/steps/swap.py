"""Step swap_clusters (the swap strategy): the old target renamed away, the restored cluster into its name.

Each run looks at the two names and does what is left, so a run again (a crash, a duplicate event, a
resume) continues where the last stopped:
- the target's name held by the cluster this operation restored: the switch is done once it is available;
- held by the old target: once both it and the restored cluster `<target>-new-<hash>` are available, it is
  renamed `<target>-old-<hash>` (RDS frees the name at once) and, in the same run with no call between,
  the restored cluster into the name, so the name is without a cluster only for one rename ("about two
  minutes", aurora_restore.local.rds_profiles cites it);
- free: the restored cluster is renamed into it.
A failure between the two renames renames the old target back (waiting for its first rename to take
effect, as RDS renames an available cluster only) and then fails the step: a failed switch leaves the
environment as it was. RDS-EVENT-0172 ("Renamed cluster from X to Y") ends the
wait, the re-check and the reconciler behind it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions import sequence
from functions.engine.contract import Done, Outcome, StepContext, Wait, Waiting
from functions.errors import NotFound, StepError
from functions.identifiers import swap_names
from functions.observability import logger
from functions.steps.snapshot import OPERATION_TAG
from schemas.common import Step
from schemas.outputs import StepOutputs
from schemas.rds_event_ids import CLUSTER

if TYPE_CHECKING:
    from functions.rds import RdsAdapter

RENAMING = "renaming"


def restored_cluster_id(ctx: StepContext) -> str:
    """The cluster the restore makes and the steps up to the switch act on: the target itself under replace,
    `<target>-new-<hash>` beside it under swap."""
    target = ctx.config.target_cluster_id
    return swap_names(target, ctx.operation_id)[0] if sequence.swaps(ctx.config) else target


def old_cluster_id(ctx: StepContext) -> str:
    """The cluster delete_rds deletes: the target under replace, the old target renamed away under swap."""
    target = ctx.config.target_cluster_id
    return swap_names(target, ctx.operation_id)[1] if sequence.swaps(ctx.config) else target


def rename_cluster(rds: RdsAdapter, cluster_id: str, new_id: str) -> bool:
    """Rename a cluster now: the old name is free at once, the cluster `renaming` until the new one takes
    effect. False when RDS refused it for now (busy); a name another cluster holds is an error."""
    return rds.modify_cluster(
        cluster_id, f"renaming cluster {cluster_id} to {new_id}", NewDBClusterIdentifier=new_id
    )


def _ours(ctx: StepContext, cluster: dict[str, Any]) -> bool:
    tags = {tag["Key"]: tag["Value"] for tag in cluster.get("TagList", [])}
    return tags.get(OPERATION_TAG) == ctx.operation_id


def swap_clusters(ctx: StepContext) -> Outcome:
    target = ctx.config.target_cluster_id
    new_id, old_id = swap_names(target, ctx.operation_id)
    if ctx.outputs.get("switch_failure"):
        return _roll_back(ctx, old_id)
    rds = ctx.target_rds
    holder = rds.cluster(target)
    if holder is not None and _ours(ctx, holder):
        return _switched(ctx, holder, old_id)
    new = rds.cluster(new_id)
    if holder is not None:
        # The old target is renamed away only when both are ready, so that the name is without a cluster
        # for one rename and no longer: nothing has changed yet when this fails or waits.
        if new is None:
            raise NotFound(
                f"the restored cluster {new_id} does not exist: the target {target} is left as it is"
            )
        if holder.get("Status") != "available" or new.get("Status") != "available":
            return _switching(ctx, f"clusters {target} and {new_id} to be available before the switch")
        # Both names indexed first: RDS-EVENT-0172 names the cluster by its new name.
        for name in (old_id, target):
            ctx.services.store.index_resource(CLUSTER, name, ctx.operation_id)
        if not rename_cluster(rds, target, old_id):
            return _switching(ctx, f"cluster {target} to accept its rename to {old_id}")
        ctx.outputs["switch_started"] = True  # taken: the target's name is without a cluster from now
        logger.info("old target renamed away", extra={"from": target, "to": old_id})
    try:
        return _bring_in(ctx, new, new_id, indexed=holder is not None)
    except StepError as exc:
        if exc.retryable:  # the same run again may get through (throttling): no rollback for that
            raise
        # Recorded before anything else: every later run rolls back, and the step fails with this error.
        ctx.outputs["switch_failure"] = exc.message
        logger.warning("switch failed: renaming the old target back", extra={"cluster": target})
        return _roll_back(ctx, old_id)


def _bring_in(ctx: StepContext, new: dict[str, Any] | None, new_id: str, *, indexed: bool) -> Outcome:
    """The restored cluster (as described before the old target was renamed away, or in this run when the
    name was free already) renamed into the target's name, now free: right after the first rename, with
    no call between the two."""
    target = ctx.config.target_cluster_id
    if new is None:
        raise NotFound(f"the restored cluster {new_id} does not exist: it cannot take the name {target}")
    if new.get("Status") != "available":
        return _switching(ctx, f"cluster {new_id} to be available before it is renamed")
    if not indexed:
        ctx.services.store.index_resource(CLUSTER, target, ctx.operation_id)
        ctx.outputs["switch_started"] = True  # the name is free (renamed away before, or there was none)
    if not rename_cluster(ctx.target_rds, new_id, target):
        return _switching(ctx, f"cluster {new_id} to accept its rename to {target}")
    return _switching(ctx, f"cluster {new_id} to answer as {target}")


def _roll_back(ctx: StepContext, old_id: str) -> Outcome:
    """After a failure between the renames: the old target back under its name, each run a look and what is
    left to do (RDS renames an available cluster only, so the old target's own rename must take effect
    first). Once it serves again under its name, the step fails with the switch's error."""
    target, failure = ctx.config.target_cluster_id, str(ctx.outputs["switch_failure"])
    rds = ctx.target_rds
    holder = rds.cluster(target)
    if holder is not None and _ours(ctx, holder):  # the restored cluster got the name after all
        ctx.outputs.pop("switch_failure")
        return _switched(ctx, holder, old_id)
    if holder is not None:
        if holder.get("Status") != "available":
            return _switching(ctx, f"cluster {target} (the old target) to finish renaming back")
        ctx.outputs["switch_rolled_back"] = True
        del ctx.outputs["switch_failure"]  # rolled back: a resume switches afresh
        raise StepError(f"{failure}; the switch was rolled back: {target} is the old target again")
    old = rds.cluster(old_id)
    if old is None:
        raise StepError(
            f"{failure}; no old target under {target} or {old_id} to rename back (there may have been none)"
        )
    if old.get("Status") != "available" or not rename_cluster(rds, old_id, target):
        return _switching(ctx, f"cluster {old_id} to be renamed back to {target}")
    return _switching(ctx, f"cluster {old_id} to answer as {target} again")


def _switched(ctx: StepContext, holder: dict[str, Any], old_id: str) -> Outcome:
    """The restored cluster holds the target's name: done once the rename has taken effect."""
    target = ctx.config.target_cluster_id
    if holder.get("Status") != "available":
        return _switching(ctx, f"cluster {target} (the restored cluster) to finish renaming")
    return Done(
        message="Clusters swapped",
        fields={"target_cluster_id": target, "swap_status": "completed", "old_cluster_id": old_id},
        next_step=sequence.after(Step.SWAP_CLUSTERS, ctx.config),
        outputs=StepOutputs.of(
            {
                "switched": True,
                "old_cluster_id": old_id,
                # Where the target answers now: the notice and `status` give this endpoint.
                "cluster_endpoint": holder.get("Endpoint"),
                "cluster_port": holder.get("Port") or 5432,
            }
        ),
    )


def _switching(ctx: StepContext, what: str) -> Outcome:
    """Wait for a rename: RDS-EVENT-0172 ends it. The target's name may be without a cluster meanwhile, so
    it is looked at again at the short interval (not the safety re-check) when the event is late or lost,
    or when RDS refused a rename for now."""
    config = ctx.config
    return Waiting(
        message="Cluster switch in progress",
        fields={"target_cluster_id": config.target_cluster_id, "swap_status": "in-progress"},
        wait=Wait(what, config.swap_timeout_minutes, config.recheck_interval_seconds),
        outputs=StepOutputs.of(
            {key: ctx.outputs[key] for key in ("switch_started", "switch_failure") if key in ctx.outputs}
        ),
    )
