"""The refresh schedule on the local runtime: created in moto's Scheduler as the stack has it, fired on demand.

moto keeps a recurring schedule but never fires it, and the runtime's SchedulerEmulator fires only one-time
`at()` wake-ups: `fire` is one firing, done as EventBridge Scheduler does it (the target's Input with the
context attributes filled in, put on the target bus with the target's source and detail-type).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aurora_restore.local.world import ACCOUNT
from schemas.schedule import DETAIL_TYPE, SOURCE, RefreshSchedule, fill, request_input

if TYPE_CHECKING:
    from aurora_restore.local.runtime import LocalRuntime

GROUP = "default"


def schedule_name(runtime: LocalRuntime) -> str:
    """The stack's name for it (infra/schedule.py): aurora-restore-refresh-<env>."""
    return f"aurora-restore-refresh-{runtime.options.environment}"


def create(runtime: LocalRuntime, schedule: RefreshSchedule) -> str:
    """The environment's refresh schedule, as the stack declares it; its name."""
    region, environment = runtime.options.target_region, runtime.options.environment
    name = schedule_name(runtime)
    runtime.client("scheduler").create_schedule(
        Name=name,
        GroupName=GROUP,
        ScheduleExpression=schedule.expression,
        ScheduleExpressionTimezone=schedule.timezone,
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": f"arn:aws:events:{region}:{ACCOUNT}:event-bus/aurora-restore-{environment}",
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/aurora-restore-refresh-schedule-{environment}",
            "Input": request_input(),
            "EventBridgeParameters": {"DetailType": DETAIL_TYPE, "Source": SOURCE},
        },
    )
    return name


def fire(runtime: LocalRuntime, name: str | None = None, execution_id: str | None = None) -> str:
    """One firing of the schedule `name` (default: the environment's refresh schedule): its RestoreRequested
    on the bus. The operation id it names."""
    found = runtime.client("scheduler").get_schedule(Name=name or schedule_name(runtime), GroupName=GROUP)
    target: dict[str, Any] = found["Target"]
    detail = fill(
        target.get("Input") or "{}",
        scheduled_time=f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
        execution_id=execution_id or uuid.uuid4().hex[:16],
        schedule_arn=found.get("Arn", ""),
    )
    parameters = target.get("EventBridgeParameters", {})
    answer = runtime.client("events").put_events(
        Entries=[
            {
                "Source": parameters.get("Source"),
                "DetailType": parameters.get("DetailType"),
                "Detail": detail,
                "EventBusName": target["Arn"],
            }
        ]
    )
    if answer.get("FailedEntryCount"):
        raise RuntimeError(f"put-events failed: {answer['Entries']}")
    return str(json.loads(detail).get("operation_id"))
