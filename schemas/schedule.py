"""The refresh schedule: its Pulumi configuration, and the RestoreRequested its every firing puts on the bus."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.events import EVENT_SOURCE, LATEST, RestoreRequested

# EventBridge Scheduler replaces these in a target's Input at each firing:
# https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"  # e.g. 2022-03-22T18:59:43Z
EXECUTION_ID = "<aws.scheduler.execution-id>"  # e.g. d32c5kddcf5bb8c3
SCHEDULE_ARN = "<aws.scheduler.schedule-arn>"
ATTEMPT_NUMBER = "<aws.scheduler.attempt-number>"
# Each firing's operation id: Scheduler's execution id is unique to each invocation and made of letters and
# digits (d32c5kddcf5bb8c3), which OperationId takes. The scheduled time is not used: the documentation
# shows it in UTC (2022-03-22T18:59:43Z) but does not promise that for a schedule with a time zone, and a `+`
# in it would make every firing a RequestRejected. Should a delivery Scheduler thought failed have reached
# the bus, its retry is a second operation, which the lease on the target refuses.
OPERATION_ID_TEMPLATE = f"scheduled-{EXECUTION_ID}"
EXPRESSION_KINDS = ("cron(", "rate(", "at(")


class RefreshSchedule(BaseModel):
    """`aurora-restore:refreshSchedule`: when the environment refreshes itself (absent: never)."""

    model_config = ConfigDict(extra="forbid")

    expression: str = Field(
        description="An EventBridge Scheduler expression: cron(...), rate(...) or at(...)",
        min_length=6,
        max_length=256,
    )
    timezone: str = Field(
        default="UTC", description="The IANA time zone the expression is read in (Area/City, or UTC)"
    )

    @field_validator("expression")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if not (value.startswith(EXPRESSION_KINDS) and value.endswith(")")):
            raise ValueError(
                f"{value!r} is not a Scheduler expression: cron(...), rate(...) or at(...), e.g."
                " cron(0 3 ? * MON-FRI *) or rate(1 day)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"{value!r} is not an IANA time zone name (Area/City, e.g. Europe/Berlin)"
            ) from exc
        if value not in available_timezones() and value != "UTC":
            raise ValueError(f"{value!r} is not an IANA time zone name (Area/City, e.g. Europe/Berlin)")
        return value


def request_input() -> str:
    """The target's Input: a RestoreRequested detail for the newest snapshot, its operation id left for
    Scheduler to fill in (validated first with a stand-in time, so the template is one the trigger takes)."""
    detail = {"operation_id": OPERATION_ID_TEMPLATE, "target_date": LATEST}
    RestoreRequested.model_validate({**detail, "operation_id": fill(OPERATION_ID_TEMPLATE)})
    return json.dumps({**detail, "schema_version": RestoreRequested.model_fields["schema_version"].default})


def fill(
    text: str,
    scheduled_time: str = "2000-01-01T00:00:00Z",
    execution_id: str = "0000000000000000",
    schedule_arn: str = "",
    attempt: int = 1,
) -> str:
    """`text` with the context attributes replaced, as Scheduler replaces them at a firing."""
    for placeholder, value in (
        (SCHEDULED_TIME, scheduled_time),
        (EXECUTION_ID, execution_id),
        (SCHEDULE_ARN, schedule_arn),
        (ATTEMPT_NUMBER, str(attempt)),
    ):
        text = text.replace(placeholder, value)
    return text


DETAIL_TYPE = RestoreRequested.detail_type
SOURCE = EVENT_SOURCE
