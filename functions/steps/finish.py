"""Steps 9-10: tell people the outcome (SNS and SQS), then clean up what the operation made."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from functions import notify, sequence, source_account
from functions.engine.contract import Done, Finished, Outcome, StepContext, Trigger, TriggerKind
from functions.errors import AwsError
from functions.observability import logger
from functions.steps.snapshot import release_copy
from schemas.common import Step
from schemas.config import SWAP_OLD_INFIX
from schemas.outputs import StepOutputs

if TYPE_CHECKING:
    from functions.engine.contract import Services


def notify_completion(ctx: StepContext) -> Outcome:
    config = ctx.config
    state = ctx.state
    failed = ctx.trigger.kind is TriggerKind.STEP_FAILED or state.status == "failed"
    outcome = "failed" if failed else "completed"
    details: dict[str, Any] = {
        "cluster_endpoint": state.outputs.get("cluster_endpoint"),
        "cluster_port": state.outputs.get("cluster_port"),
        "users": state.outputs.get("users", []),
    }
    if failed:
        error = ctx.trigger.payload.get("error") or (state.error.model_dump() if state.error else {})
        details["failed_step"] = ctx.trigger.payload.get("step") or state.failed_step
        details["error"] = error
        details["left_in_place"] = ctx.trigger.payload.get("left_in_place") or notify.left_in_place(state)
        # A refused request is not resumed (OperationState.request_refused): a new one is put instead.
        details["resume"] = None if state.request_refused else f"aurora-restore resume {ctx.operation_id}"
    outcome_notice = notify.outcome_notice(state, outcome, config.target_cluster_id, **details)
    if failed:
        # StepFailed comes at least once: a failure already notified is not sent again. A failure after a
        # resume is another one (one more failed entry in the history).
        failures = sum(1 for entry in state.history if entry.outcome == "failed")
        key = f"{outcome_notice.failed_step}#{failures}"
        if key in state.outputs.get("failures_notified", []):
            return Finished(
                message=f"Failure at {outcome_notice.failed_step} already notified",
                status="failed",
                fields={"target_cluster_id": config.target_cluster_id, "outcome": outcome},
            )
    # The SNS message id is written to the state as soon as SNS took the message, before SQS is asked: a
    # run again after SQS failed, or after the function died before its transition was written, sends to
    # SQS alone, never to SNS twice. Only the queue can get the notice twice (a death between its send and
    # the transition's write); a failed write here fails the run with SQS not yet asked.
    notice = f"sns:{key}" if failed else "sns:completed"

    def published(message_id: str) -> None:
        ctx.outputs[notice] = message_id
        ctx.services.store.save(state)

    sns_id, sqs_id = notify.send(
        config.notification_topic_arn,
        config.notification_queue_url,
        outcome_notice,
        config.target_region,
        published=published,
        sns_id=state.outputs.get(notice),
    )
    fields = {
        "target_cluster_id": config.target_cluster_id,
        "outcome": outcome,
        "sns_message_id": sns_id,
        "sqs_message_id": sqs_id,
    }
    if failed:
        # The operation stays failed: nothing routes on, and the result is not the step's final one.
        sent = list(state.outputs.get("failure_notifications", [])) + [sns_id]
        return Finished(
            message=f"Sent failure notifications for cluster {config.target_cluster_id}",
            status="failed",
            fields=fields,
            outputs=StepOutputs(
                failure_notifications=sent,
                failures_notified=[*state.outputs.get("failures_notified", []), key],
            ),
        )
    # The direct answer names no next step (the runbook's script invokes cleanup itself): DIRECT_ENDS.
    return Done(
        message=f"Successfully sent completion notifications for cluster {config.target_cluster_id}",
        next_step=sequence.after(Step.NOTIFY_COMPLETION, config),
        fields=fields,
    )


def prune_final_snapshots(ctx: StepContext) -> dict[str, list[str]] | None:
    """With `final_snapshots_kept` N: delete the target's final snapshots (`<target>-final-<operation>`, what
    delete_rds names them) beyond the N newest, once the refresh is done. Only snapshots of the target
    cluster, named so, and `available` are deleted (one being made counts among the newest); a snapshot
    already going is not asked for again, so a second run deletes nothing more. None when not configured.

    Housekeeping of a refresh that is done: a snapshot RDS refuses to delete for good (being copied or
    shared, a policy) is kept and named (`final_snapshots_not_deleted`, and the log), not a failed refresh;
    a throttle is retried as any step's is."""
    kept = ctx.config.final_snapshots_kept
    if kept is None:
        return None
    cluster = ctx.config.target_cluster_id
    prefix = f"{cluster}-final-".lower()  # RDS keeps identifiers in lower case
    finals = [
        item
        for item in _target_snapshots(ctx, cluster)
        if str(item.get("DBClusterSnapshotIdentifier", "")).lower().startswith(prefix)
        and item.get("Status") != "deleting"
    ]
    # Newest first; one still being made has no creation time yet, and is the newest.
    finals.sort(
        key=lambda item: item.get("SnapshotCreateTime") or datetime.max.replace(tzinfo=UTC), reverse=True
    )
    # Kept in the outputs as they go: a retried cleanup reports what its first try deleted too.
    deleted: list[str] = ctx.outputs.setdefault("final_snapshots_deleted", [])
    refused: list[str] = []
    for item in finals[kept:]:
        name = str(item["DBClusterSnapshotIdentifier"])
        if item.get("Status") != "available":
            continue
        try:
            if ctx.target_rds.delete_cluster_snapshot(name):
                deleted.append(name)
        except AwsError as exc:
            if exc.retryable:
                raise
            logger.warning(
                "an older final snapshot was not deleted", extra={"snapshot": name, "error": exc.message}
            )
            refused.append(name)
    found = {"final_snapshots_deleted": sorted(deleted)}
    return found | ({"final_snapshots_not_deleted": refused} if refused else {})


def _target_snapshots(ctx: StepContext, cluster: str) -> list[dict[str, Any]]:
    """The target's snapshots (RDS filters); under swap also those of the old targets a switch renamed
    `<target>-old-<hash>` before deleting them, which is whose name their final snapshots carry."""
    found = ctx.target_rds.snapshots_of_cluster(cluster)
    if sequence.swaps(ctx.config):
        renamed = f"{cluster}{SWAP_OLD_INFIX}".lower()
        found += [
            item
            for item in ctx.target_rds.snapshots_of_cluster(None)
            if str(item.get("DBClusterIdentifier", "")).lower().startswith(renamed)
        ]
    return found


def cleanup(ctx: StepContext) -> Outcome:
    config = ctx.config
    # The copy goes with the last operation that uses it (others restoring the same day may still need it);
    # check_restore_status has usually given it up already.
    snapshot_deleted = release_copy(ctx)
    source_account.unshare(ctx)  # another account's snapshot: shared no more
    pruned = prune_final_snapshots(ctx)
    logs_deleted = False
    if config.delete_logs:
        notify.StepLog(config.log_bucket, config.log_prefix, config.target_region).delete_all(
            ctx.operation_id
        )
        logs_deleted = True
    # Last: until here a failure leaves the lease held, as the failure notification says (left_in_place).
    ctx.services.store.release_lease(config.target_cluster_id, ctx.operation_id)
    results: dict[str, Any] = {
        "snapshot_deleted": snapshot_deleted,
        "state_data_deleted": config.delete_state,
        "logs_deleted": logs_deleted,
    }
    if pruned is not None:  # the runbook's shape unless final_snapshots_kept is set
        results |= pruned
    # With delete_state, the writer then keeps its results only (Writer.purge_if_due).
    return Finished(
        message=f"Successfully completed cleanup for operation {ctx.operation_id}",
        status="completed",
        fields={"target_cluster_id": config.target_cluster_id, "cleanup_results": results},
    )


def notify_rejection(trigger: Trigger, services: Services) -> dict[str, Any]:
    """notify_completion's run for a RequestRejected: no operation to read or record; the notice goes to the
    topic and queue the environment and SSM configure. What stops it (no configuration, SNS or SQS out of
    reach) is raised, so that the event is delivered again and, at the last try, lands in the DLQ."""
    from functions import config as config_resolver
    from schemas.notice import RejectedNotice

    config = config_resolver.resolve(services.settings).config
    fields = {key: value for key, value in trigger.payload.items() if key in RejectedNotice.model_fields}
    notice = RejectedNotice.model_validate(fields)
    sns_id, sqs_id = notify.send(
        config.notification_topic_arn, config.notification_queue_url, notice, config.target_region
    )
    logger.info("sent the notice of a refused request", extra={"reason": notice.reason})
    return {
        "operation_id": None,
        "status": "success",
        "message": f"Sent the notice of a refused {notice.request}",
        "sns_message_id": sns_id,
        "sqs_message_id": sqs_id,
        "next_step": None,
    }
