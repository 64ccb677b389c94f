"""The refresh schedule under mocks: created from `aurora-restore:refreshSchedule`, or refused at preview."""

from __future__ import annotations

import json

import pytest
from pulumi_harness import ACCOUNT, ROOT, SECRET_DB_USERS, ProgramRun, run_program, stack_config

from infra.settings import StackConfigError
from schemas.events import RestoreRequested
from schemas.schedule import fill

pytestmark = pytest.mark.infra

SCHEDULE = "aws:scheduler/schedule:Schedule"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
BUS_ARN = f"arn:aws:events:us-west-2:{ACCOUNT}:event-bus/aurora-restore-dev"
EVENTS_DLQ_ARN = f"arn:aws:sqs:us-west-2:{ACCOUNT}:aurora-restore-events-dlq-dev"


def with_schedule(value: object) -> ProgramRun:
    config, secret_keys = stack_config(ROOT / "Pulumi.dev.yaml", SECRET_DB_USERS)
    config["aurora-restore:refreshSchedule"] = value if isinstance(value, str) else json.dumps(value)
    return run_program("dev", config, secret_keys)


@pytest.fixture(scope="module")
def scheduled() -> ProgramRun:
    return with_schedule({"expression": "cron(0 3 ? * MON-FRI *)", "timezone": "Europe/Berlin"})


def test_the_schedule_puts_restore_requested_latest_on_the_bus(scheduled: ProgramRun) -> None:
    # Given the dev stack with refreshSchedule set
    # When the program has run
    (schedule,) = scheduled.of_type(SCHEDULE)
    inputs = schedule.inputs
    # Then the schedule has the expression and the time zone, and no flexible window
    assert inputs["name"] == "aurora-restore-refresh-dev"
    assert inputs["scheduleExpression"] == "cron(0 3 ? * MON-FRI *)"
    assert inputs["scheduleExpressionTimezone"] == "Europe/Berlin"
    assert inputs["flexibleTimeWindow"] == {"mode": "OFF"}
    # And its target is the environment's bus, with our source and RestoreRequested as detail-type
    target = inputs["target"]
    assert target["arn"] == BUS_ARN
    assert target["eventbridgeParameters"] == {"detailType": "RestoreRequested", "source": "aurora-restore"}
    assert target["retryPolicy"]["maximumRetryAttempts"] > 0
    assert target["deadLetterConfig"] == {"arn": EVENTS_DLQ_ARN}
    # And its input asks for the newest snapshot, under an operation id made of the firing's execution id
    detail = json.loads(target["input"])
    assert detail["target_date"] == "latest"
    assert detail["operation_id"] == "scheduled-<aws.scheduler.execution-id>"
    # And once Scheduler fills the id in, it is a RestoreRequested the trigger takes
    filled = RestoreRequested.model_validate_json(fill(target["input"], execution_id="d32c5kddcf5bb8c3"))
    assert filled.operation_id == "scheduled-d32c5kddcf5bb8c3" and filled.target_date == "latest"
    assert scheduled.outputs["refresh_schedule"] == "aurora-restore-refresh-dev"


def test_the_schedules_role_may_only_put_events_on_the_bus_and_dead_letter(scheduled: ProgramRun) -> None:
    # Given the dev stack with refreshSchedule set
    (schedule,) = scheduled.of_type(SCHEDULE)
    role = scheduled.one(ROLE, name="aurora-restore-refresh-schedule-dev")
    policy = scheduled.one(ROLE_POLICY, name="aurora-restore-refresh-schedule-dev-put-events")
    # Then the schedule runs as its own role, which only Scheduler assumes, for this account
    assert (
        schedule.inputs["target"]["roleArn"]
        == f"arn:aws:iam::{ACCOUNT}:role/aurora-restore-refresh-schedule-dev"
    )
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "scheduler.amazonaws.com"}]
    assert trust[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    # And it may put events on exactly the environment's bus, and send to its DLQ, nothing else
    assert json.loads(policy.inputs["policy"])["Statement"] == [
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": BUS_ARN},
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": EVENTS_DLQ_ARN},
    ]


def test_without_refresh_schedule_there_is_no_schedule(dev: ProgramRun) -> None:
    # Given the dev stack as its file stands (refreshSchedule commented out)
    # Then nothing is scheduled
    assert dev.of_type(SCHEDULE) == []
    assert "refresh_schedule" not in dev.outputs


def test_a_rate_without_time_zone_is_read_in_utc() -> None:
    run = with_schedule({"expression": "rate(1 day)"})
    (schedule,) = run.of_type(SCHEDULE)
    assert (schedule.inputs["scheduleExpression"], schedule.inputs["scheduleExpressionTimezone"]) == (
        "rate(1 day)",
        "UTC",
    )


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (
            {"expression": "0 3 * * *", "timezone": "UTC"},
            "expression: Value error, '0 3 * * *' is not a Scheduler",
        ),
        (
            {"expression": "cron(0 3 * * ? *)", "timezone": "Europe/Berlln"},
            "timezone: Value error, 'Europe/Berlln'",
        ),
        ({"expression": "cron(0 3 * * ? *)", "zone": "UTC"}, "zone: Extra inputs are not permitted"),
        ({"timezone": "UTC"}, "expression: Field required"),
        ("cron(0 3 * * ? *)", "must be a JSON object"),
    ],
)
def test_a_bad_refresh_schedule_fails_the_preview_naming_the_key(value: object, named: str) -> None:
    with pytest.raises(StackConfigError) as raised:
        with_schedule(value)
    assert "aurora-restore:refreshSchedule" in str(raised.value)
    assert named in str(raised.value)
