"""One-shot wake-ups for waiting steps: an EventBridge Scheduler `at()` schedule that puts RecheckDue on the
environment's bus when the wait is next worth checking, then deletes itself.

This is what makes a wait cost only the checks it needs (a fixed-rate poller would run every minute);
the reconciler stays as the safety net for a wake-up that never came.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from botocore.exceptions import BotoCoreError, ClientError

from functions import aws
from functions.observability import logger
from functions.settings import Settings
from schemas.common import Step
from schemas.events import EVENT_SOURCE, RecheckDue


def schedule_name(settings: Settings, operation_id: str, step: Step, at: datetime) -> str:
    digest = hashlib.sha256(f"{operation_id}/{step.value}".encode()).hexdigest()[:16]
    return f"aurora-restore-{settings.environment}-{digest}-{int(at.timestamp())}"[:64]


def schedule_recheck(settings: Settings, operation_id: str, step: Step, at: datetime) -> bool:
    """Ask for RecheckDue(operation_id, step) at `at`. False when wake-ups are not configured or failed:
    the reconciler then re-checks the wait instead."""
    if not (settings.scheduler_role_arn and settings.event_bus_arn):
        return False
    event = RecheckDue(operation_id=operation_id, step=step)
    try:
        aws.client("scheduler", settings.region).create_schedule(
            Name=schedule_name(settings, operation_id, step, at),
            GroupName="default",
            ScheduleExpression=f"at({at:%Y-%m-%dT%H:%M:%S})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target={
                "Arn": settings.event_bus_arn,
                "RoleArn": settings.scheduler_role_arn,
                "Input": event.model_dump_json(),
                "EventBridgeParameters": {"DetailType": RecheckDue.detail_type, "Source": EVENT_SOURCE},
            },
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConflictException":
            return True  # the same wake-up exists already
        logger.warning("no wake-up scheduled; the reconciler will re-check", extra={"error": str(exc)})
        return False
    except BotoCoreError as exc:
        logger.warning("no wake-up scheduled; the reconciler will re-check", extra={"error": str(exc)})
        return False
    return True


def reschedule(
    settings: Settings, operation_id: str, step: Step, at: datetime, replaces: datetime | None
) -> bool:
    """Schedule the wait's next wake-up and drop the one it replaces (a check that an RDS event brought
    forward would otherwise be followed by a second, needless one)."""
    if replaces is not None and replaces != at and settings.scheduler_role_arn:
        try:
            aws.client("scheduler", settings.region).delete_schedule(
                Name=schedule_name(settings, operation_id, step, replaces), GroupName="default"
            )
        except (ClientError, BotoCoreError):
            pass  # it fired already, or never existed: nothing to drop
    return schedule_recheck(settings, operation_id, step, at)
