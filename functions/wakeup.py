"""One-shot wake-ups: EventBridge Scheduler `at()` schedules that put an event on the environment's bus
when due, then delete themselves.

- A waiting step's RecheckDue, when the wait is next worth checking: a wait costs only the checks it
  needs (a fixed-rate poller would run every minute).
- An operation's watchdog between two waits: StallCheckDue, to the reconciler, `stall_seconds` after the
  stretch began, unless a wait or the operation's end disarms it first.

So every running operation always has a wake-up pending; the reconciler's hourly scan is only the net
for a wake-up that could not be scheduled.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions import aws
from functions.observability import logger
from functions.settings import Settings
from schemas.common import Step
from schemas.events import EVENT_SOURCE, BusEvent, RecheckDue, StallCheckDue
from schemas.state import Waiting


# Names from the environment alone: the operator's side (aurora_restore.operations) has no Settings.
def schedule_prefix(environment: str) -> str:
    """What every wake-up of the environment is named with first, and what its IAM policies allow. No
    environment name has a dot, so `dev`'s prefix takes in none of environment `dev-x`'s schedules."""
    return f"aurora-restore-{environment}."


def schedule_name(environment: str, operation_id: str, step: Step, at: datetime) -> str:
    digest = hashlib.sha256(f"{operation_id}/{step.value}".encode()).hexdigest()[:16]
    return f"{schedule_prefix(environment)}{digest}-{int(at.timestamp())}"[:64]


def watchdog_name(environment: str, operation_id: str) -> str:
    digest = hashlib.sha256(operation_id.encode()).hexdigest()[:16]
    return f"{schedule_prefix(environment)}{digest}-watchdog"


def schedule_recheck(settings: Settings, operation_id: str, step: Step, at: datetime) -> bool:
    """Ask for RecheckDue(operation_id, step) at `at`. False when wake-ups are not configured or failed:
    the reconciler then re-checks the wait instead."""
    name = schedule_name(settings.environment, operation_id, step, at)
    return _put(settings, name, at, RecheckDue(operation_id=operation_id, step=step), replace=False)


def arm_watchdog(settings: Settings, operation_id: str, at: datetime) -> bool:
    """The operation's one watchdog: StallCheckDue at `at` unless disarmed first (a wait began, or the
    operation ended). It is what notices a lost trigger or a dead invocation between two waits."""
    name = watchdog_name(settings.environment, operation_id)
    return _put(settings, name, at, StallCheckDue(operation_id=operation_id), replace=True)


def disarm_watchdog(settings: Settings, operation_id: str) -> None:
    _delete(settings, watchdog_name(settings.environment, operation_id))


def drop_all(environment: str, region: str, operation_id: str, waiting: Waiting | None) -> None:
    """Drop what an operation ended outside its steps (the operator's abort) may have pending: its
    watchdog and, if it was waiting, its wait's RecheckDue (`waiting` as the state held it before).
    Best effort: a wake-up left behind fires later and finds the operation ended."""
    _drop(region, watchdog_name(environment, operation_id))
    if waiting is not None:
        _drop(region, schedule_name(environment, operation_id, Step(waiting.step), waiting.next_check_at))


def at_expression(at: datetime) -> str:
    """The at() time: whole seconds, the most at() takes, rounded up, so a wake-up never fires before the
    moment it was asked for (a copy checked a fraction of a second before its projected end would only
    be found still copying)."""
    whole = at.replace(microsecond=0)
    return f"{whole + timedelta(seconds=1) if whole < at else whole:%Y-%m-%dT%H:%M:%S}"


def _put(settings: Settings, name: str, at: datetime, event: BusEvent, *, replace: bool) -> bool:
    if not (settings.scheduler_role_arn and settings.event_bus_arn):
        return False
    definition: dict[str, Any] = {
        "Name": name,
        "GroupName": "default",
        "ScheduleExpression": f"at({at_expression(at)})",
        # The exact time, for people and for the local runtime, whose time-scaled waits are sub-second.
        "Description": f"{event.detail_type} for {event.operation_id}, due {at.isoformat()}",
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "ActionAfterCompletion": "DELETE",
        "Target": {
            "Arn": settings.event_bus_arn,
            "RoleArn": settings.scheduler_role_arn,
            "Input": event.model_dump_json(),
            "EventBridgeParameters": {"DetailType": event.detail_type, "Source": EVENT_SOURCE},
        },
    }
    scheduler = aws.client("scheduler", settings.region)
    try:
        try:
            scheduler.create_schedule(**definition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConflictException":
                raise
            if replace:
                scheduler.update_schedule(**definition)
            # else: the same wake-up exists already
    except (ClientError, BotoCoreError) as exc:
        logger.warning("no wake-up scheduled; the reconciler will look", extra={"error": str(exc)})
        return False
    return True


def _delete(settings: Settings, name: str) -> None:
    if settings.scheduler_role_arn:
        _drop(settings.region, name)


def _drop(region: str, name: str) -> None:
    try:
        aws.client("scheduler", region).delete_schedule(Name=name, GroupName="default")
    except (ClientError, BotoCoreError):
        pass  # it fired already, or never existed: nothing to drop


def cancel(settings: Settings, operation_id: str, step: Step, at: datetime, now: datetime) -> None:
    """Drop the wake-up due at `at`, unless it is due already (then it has fired, or is about to)."""
    if at > now:
        _delete(settings, schedule_name(settings.environment, operation_id, step, at))


def reschedule(
    settings: Settings, operation_id: str, step: Step, at: datetime, replaces: datetime | None, now: datetime
) -> bool:
    """Schedule the wait's next wake-up and drop the one it replaces (a check that an RDS event brought
    forward would otherwise be followed by a second, needless one)."""
    if replaces is not None and replaces != at:
        cancel(settings, operation_id, step, replaces, now)
    return schedule_recheck(settings, operation_id, step, at)
