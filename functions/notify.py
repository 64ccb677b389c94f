"""The notifier (SNS and SQS) and the per-step JSON record in the log bucket."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from functions import aws
from functions.errors import AwsError
from schemas.common import Step, utcnow

if TYPE_CHECKING:
    from schemas.notice import OutcomeNotice, RejectedNotice
    from schemas.state import OperationState


def region_of_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else None


def region_of_queue(url: str) -> str | None:
    # https://sqs.<region>.amazonaws.com/<account>/<name>; a local endpoint carries no region.
    host = url.split("/")[2] if "//" in url else ""
    pieces = host.split(".")
    return pieces[1] if len(pieces) > 2 and pieces[0] == "sqs" else None


def outcome_notice(state: OperationState, outcome: str, cluster: str | None, **details: Any) -> OutcomeNotice:
    """An operation's outcome notice (completed, failed, aborted): the common part from its state, and the
    sender's `details` (OutcomeNotice's other fields). One shape for subscribers, whoever sends it
    (notify_completion, or the operator's abort)."""
    # Imported here: every handler imports this module (StepLog); only notify_completion and abort notify.
    from schemas.notice import OutcomeNotice

    message: dict[str, Any] = {
        "operation_id": state.operation_id,
        "outcome": outcome,
        "target_cluster_id": cluster,
        "target_date": state.target_date,
        "source_snapshot": state.outputs.get("snapshot_name"),
        "strategy": state.strategy,
    }
    if state.outputs.get("final_snapshot"):
        message["final_snapshot"] = state.outputs["final_snapshot"]  # the old target's, kept by RDS
    return OutcomeNotice.model_validate(message | timing(state) | details)


def out_of_use(state: OperationState) -> tuple[datetime, datetime | None] | None:
    """Since when the target has been out of use, and until when (None: not back yet); None when the
    operation took it out of use at no point.
    - replace: from the run of delete_rds that started the deletion to setup_db_users' success on the
      restored cluster;
    - swap: the switch (the old target served until then, and delete_rds deletes it only afterwards)."""
    if state.outputs.get("switch_started"):
        return _switch(state)
    if not state.outputs.get("deletion_started"):
        return None
    down = next(
        (e for e in state.history if e.step == Step.DELETE_RDS and e.outcome in ("waiting", "success")), None
    )
    if down is None:
        return None
    # Steps only go forward (a resume re-runs the failed step), so any success of setup_db_users follows it.
    ready = [e.finished_at for e in state.history if e.step == Step.SETUP_DB_USERS and e.outcome == "success"]
    return down.started_at, ready[-1] if ready else None


def _switch(state: OperationState) -> tuple[datetime, datetime | None] | None:
    """The switch's span: swap_clusters' latest attempt (after its last failure, when it was resumed), from
    its first run to its success. An attempt that failed and rolled back ends at its failure, the old
    target serving again; one that failed otherwise is not over."""
    runs = [e for e in state.history if e.step == Step.SWAP_CLUSTERS]
    failed = [index for index, e in enumerate(runs) if e.outcome == "failed"]
    if failed and failed[-1] == len(runs) - 1:  # the last attempt failed
        attempt = runs[failed[-2] + 1 if len(failed) > 1 else 0 :]
        back = attempt[-1].finished_at if state.outputs.get("switch_rolled_back") else None
        return (attempt[0].started_at, back) if len(attempt) > 1 or back else None
    attempt = runs[failed[-1] + 1 :] if failed else runs
    if not attempt:
        return None
    done = next((e.finished_at for e in attempt if e.outcome == "success"), None)
    return attempt[0].started_at, done


def timing(state: OperationState, now: datetime | None = None) -> dict[str, Any]:
    """An outcome notice's times: when the operation started and how long it has taken; and, once it deleted
    the target, since when the target has been out of use and, once it is back, for how long it was."""
    now = now or utcnow()
    times: dict[str, Any] = {
        "started_at": state.created_at.isoformat(),
        "took_s": round((now - state.created_at).total_seconds()),
    }
    span = out_of_use(state)
    if span is not None:
        since, until = span
        times["target_down_since"] = since.isoformat()
        if until is not None:
            times["target_downtime_s"] = round((until - since).total_seconds())
    return times


def send(
    topic_arn: str,
    queue_url: str,
    notice: OutcomeNotice | RejectedNotice,
    default_region: str,
    published: Callable[[str], None] | None = None,
    sns_id: str | None = None,
) -> tuple[str, str]:
    """Publish the notice to SNS and SQS; returns both message ids. `published` is told the SNS message
    id before SQS is asked; given that id back (`sns_id`, a retry after SQS failed), SNS is not asked again."""
    body, subject = notice.body(), notice.subject[:99]  # SNS takes a subject of fewer than 100 characters
    try:
        if sns_id is None:
            sns = aws.client("sns", region_of_arn(topic_arn) or default_region)
            sns_id = str(sns.publish(TopicArn=topic_arn, Subject=subject, Message=body)["MessageId"])
            if published is not None:
                published(sns_id)
        sqs = aws.client("sqs", region_of_queue(queue_url) or default_region)
        sqs_id = sqs.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        raise AwsError(f"sending the notification failed: {code}", retryable=aws.is_transient(exc)) from exc
    return str(sns_id), str(sqs_id)


class StepLog:
    """One JSON object per step run under s3://<log_bucket>/<log_prefix>/<operation_id>/."""

    def __init__(self, bucket: str, prefix: str, region: str) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.region = region

    def key(self, operation_id: str, name: str) -> str:
        return f"{self.prefix}/{operation_id}/{name}.json"

    def write(self, operation_id: str, name: str, record: dict[str, Any]) -> None:
        try:
            aws.client("s3", self.region).put_object(
                Bucket=self.bucket,
                Key=self.key(operation_id, name),
                Body=json.dumps(record, default=str, indent=2, sort_keys=True).encode(),
                ContentType="application/json",
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            raise AwsError(
                f"writing the step record to s3://{self.bucket}: {code}", retryable=aws.is_transient(exc)
            ) from exc

    def delete_all(self, operation_id: str) -> int:
        s3 = aws.client("s3", self.region)
        prefix = f"{self.prefix}/{operation_id}/"
        deleted = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted


def left_in_place(state: OperationState) -> dict[str, Any]:
    """What a failed operation leaves behind, for the failure notification. The lease only when it holds
    one: snapshot_check records the target among its outputs once it has taken the lease, so an operation
    that failed before (no snapshot, LeaseHeld: another operation holds it) names none. Under swap, the
    cluster restored beside the target until the switch (kept: `resume` goes on with it, rather than
    restoring again; `abort` then leaves it to be deleted by hand), and the old target renamed away after."""
    keep: tuple[str, ...] = (
        "target_snapshot",
        "snapshot_name",
        "target_cluster_id",
        "cluster_endpoint",
        "deletion_started",
        "switch_started",
        "switch_rolled_back",
        "old_cluster_id",
    )
    if state.outputs.get("copy_released"):  # given up once the restore was done (check_restore_status)
        keep = tuple(key for key in keep if key != "target_snapshot")
    found = {key: state.outputs[key] for key in keep if key in state.outputs}
    restored = restored_beside(state)
    if restored and not state.outputs.get("switched"):
        found["restored_cluster_id"] = restored
    return found | {"lease": state.outputs.get("target_cluster_id") if state.status != "aborted" else None}


def restored_beside(state: OperationState) -> str | None:
    """Under swap, once restore_snapshot has run: the cluster it restored beside the target."""
    if state.strategy != "swap" or not any(e.step == Step.RESTORE_SNAPSHOT for e in state.history):
        return None
    from functions.identifiers import swap_names

    return swap_names(str(state.config["target_cluster_id"]), state.operation_id)[0]
