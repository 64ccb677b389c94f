"""The refresh schedule: an EventBridge Scheduler schedule putting RestoreRequested (latest) on the bus."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
from pydantic import ValidationError

from infra.routing import MAX_EVENT_AGE_SECONDS, MAX_RETRY_ATTEMPTS, EventBus
from infra.settings import PROJECT, StackConfigError, StackSettings
from schemas.schedule import DETAIL_TYPE, SOURCE, RefreshSchedule, request_input

CONFIG_KEY = "refreshSchedule"


def refresh_schedule() -> RefreshSchedule | None:
    """`aurora-restore:refreshSchedule` as a JSON object `{"expression": ..., "timezone": ...}`, checked
    (a wrong one fails `pulumi preview` naming the key); None when the key is not set."""
    try:
        value = pulumi.Config(PROJECT).get_object(CONFIG_KEY)
    except (pulumi.ConfigTypeError, ValueError) as exc:
        raise StackConfigError(f"{PROJECT}:{CONFIG_KEY} must be a JSON object: {exc}") from exc
    if value is None:
        return None
    try:
        return RefreshSchedule.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
        raise StackConfigError(
            f'{PROJECT}:{CONFIG_KEY} ({{"expression": "cron(...)" or "rate(...)", "timezone": "Area/City"}}):'
            f" {problems}"
        ) from exc


def put_events_policy(bus_arn: str, dead_letter_arn: str) -> dict[str, Any]:
    """What Scheduler may do with the schedule's role: put events on this one bus, and dead-letter a firing
    it could not deliver into the bus's DLQ."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus_arn},
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": dead_letter_arn},
        ],
    }


def scheduler_trust(account: str) -> dict[str, Any]:
    """Scheduler may assume the role, for this account's schedules only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ],
    }


class RefreshScheduleResources(pulumi.ComponentResource):
    """The schedule, and the role Scheduler assumes to put its RestoreRequested on the environment's bus.

    Each firing puts `{"operation_id": "scheduled-<execution id>", "target_date": "latest"}`: a new
    operation restoring the newest available snapshot; a firing while a refresh runs is refused by the
    lease on the target (a failed operation and its notice). No flexible window: a refresh starts when it
    was scheduled. Retries as the bus's rules retry, then the bus's DLQ (its alarm watches it)."""

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        schedule: RefreshSchedule,
        bus: EventBus,
        account: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("aurora-restore:infra:RefreshSchedule", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role",
            name=settings.name("refresh-schedule"),
            assume_role_policy=pulumi.Output.from_input(account).apply(
                lambda value: json.dumps(scheduler_trust(value))
            ),
            opts=child,
        )
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy",
            name=settings.name("refresh-schedule") + "-put-events",
            role=self.role.id,
            policy=pulumi.Output.all(bus.bus.arn, bus.dead_letters.arn).apply(
                lambda args: json.dumps(put_events_policy(args[0], args[1]))
            ),
            opts=child,
        )
        self.schedule = aws.scheduler.Schedule(
            name,
            name=settings.name("refresh"),
            group_name="default",
            description=f"refresh {settings.target_cluster_id} from the newest snapshot (RestoreRequested latest)",
            schedule_expression=schedule.expression,
            schedule_expression_timezone=schedule.timezone,
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            state="ENABLED",
            target=aws.scheduler.ScheduleTargetArgs(
                arn=bus.bus.arn,
                role_arn=self.role.arn,
                input=request_input(),
                eventbridge_parameters=aws.scheduler.ScheduleTargetEventbridgeParametersArgs(
                    detail_type=DETAIL_TYPE, source=SOURCE
                ),
                retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                    maximum_retry_attempts=MAX_RETRY_ATTEMPTS,
                    maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS,
                ),
                dead_letter_config=aws.scheduler.ScheduleTargetDeadLetterConfigArgs(arn=bus.dead_letters.arn),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy]),
        )
        self.register_outputs({"name": self.schedule.name, "role_arn": self.role.arn})


def declare(
    settings: StackSettings, bus: EventBus, account: pulumi.Input[str]
) -> RefreshScheduleResources | None:
    """The refresh schedule when `aurora-restore:refreshSchedule` is set, else nothing."""
    schedule = refresh_schedule()
    return RefreshScheduleResources("refresh", settings, schedule, bus, account) if schedule else None
