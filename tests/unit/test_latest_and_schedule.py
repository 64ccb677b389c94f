"""target_date `latest` and the refresh schedule, without AWS: the request, the choice of snapshot, the
operation's day, the CLI, and the schedule's configuration and input."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from aurora_restore import cli, operations, render
from functions.engine.transitions import new_operation
from functions.engine.triggers import Trigger, TriggerKind, parse_trigger
from functions.errors import InvalidRequest, NotFound
from functions.steps.latest import newest_snapshot, snapshot_day
from schemas.common import utcnow
from schemas.events import RestoreRequested
from schemas.schedule import OPERATION_ID_TEMPLATE, RefreshSchedule, fill, request_input
from schemas.state import OperationState
from unit.fakes import SETTINGS

MORNING = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


class Listing:
    """What snapshots_of_cluster answers: the only call newest_snapshot makes."""

    def __init__(self, *snapshots: dict[str, Any]) -> None:
        self.snapshots = list(snapshots)

    def snapshots_of_cluster(self, cluster_id: str) -> list[dict[str, Any]]:
        return self.snapshots


def snapshot(name: str, created: datetime, status: str = "available") -> dict[str, Any]:
    return {"DBClusterSnapshotIdentifier": name, "SnapshotCreateTime": created, "Status": status}


def bus_event(detail: dict[str, Any]) -> dict[str, Any]:
    return {"source": "aurora-restore", "detail-type": "RestoreRequested", "detail": detail}


# -- the request ---------------------------------------------------------------------------------------------
def test_a_restore_requested_may_ask_for_the_latest_snapshot() -> None:
    trigger = parse_trigger(bus_event({"operation_id": "op-1", "target_date": "latest"}))
    assert trigger.payload["target_date"] == "latest"
    assert RestoreRequested.model_validate(
        {"operation_id": "op-1", "target_date": "2026-12-07"}
    ).target_date == (date(2026, 12, 7))


@pytest.mark.parametrize("word", ["Latest", "newest", "LATEST", " latest"])
def test_only_the_word_latest_is_taken(word: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_trigger(bus_event({"operation_id": "op-1", "target_date": word}))
    assert (
        refused.value.message
        == f"invalid RestoreRequested event: target_date {word!r} is not a date (YYYY-MM-DD)"
    )


def test_a_latest_request_begins_an_operation_marked_latest_on_the_day_it_came() -> None:
    now = utcnow()
    for kind, payload in (
        (TriggerKind.RESTORE_REQUESTED, {"operation_id": "op-1", "target_date": "latest"}),
        (TriggerKind.DIRECT, {"operation_id": "op-1", "target_date": "latest"}),
    ):
        state = new_operation(Trigger(kind, kind.value, "op-1", payload), "op-1", SETTINGS, now)
        assert state.latest_snapshot and state.target_date == now.date()
    dated = Trigger(
        TriggerKind.DIRECT, "direct", "op-1", {"operation_id": "op-1", "target_date": "2026-12-01"}
    )
    assert not new_operation(dated, "op-1", SETTINGS, now).latest_snapshot


# -- the snapshot --------------------------------------------------------------------------------------------
def test_the_newest_available_snapshot_is_chosen_automated_or_manual_never_a_copy() -> None:
    listing = Listing(
        snapshot("dev-source-cluster-snapshot-2026-12-06", MORNING - timedelta(days=1)),
        snapshot("rds:dev-source-cluster-2026-12-07-02-10", MORNING - timedelta(minutes=50)),
        snapshot("dev-source-cluster-snapshot-2026-12-07", MORNING + timedelta(hours=1), status="creating"),
        snapshot("rds-dev-source-cluster-2026-12-07-02-10-copy", MORNING + timedelta(hours=2)),
    )
    chosen = newest_snapshot(listing, "dev-source-cluster", "us-east-1")  # type: ignore[arg-type]
    assert chosen["DBClusterSnapshotIdentifier"] == "rds:dev-source-cluster-2026-12-07-02-10"


def test_no_available_snapshot_is_not_found_naming_the_cluster() -> None:
    listing = Listing(snapshot("dev-source-cluster-snapshot-2026-12-07", MORNING, status="creating"))
    with pytest.raises(NotFound, match="no available snapshot of dev-source-cluster in us-east-1"):
        newest_snapshot(listing, "dev-source-cluster", "us-east-1")  # type: ignore[arg-type]


def test_the_operations_day_is_the_snapshots_creation_day_in_utc() -> None:
    late_in_new_york = datetime(2026, 12, 6, 22, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert snapshot_day(snapshot("s", late_in_new_york)) == date(2026, 12, 7)


# -- the CLI -------------------------------------------------------------------------------------------------
def test_start_takes_date_latest() -> None:
    args = cli.build_parser().parse_args(["start", "--date", "latest"])
    assert args.date == "latest"
    assert operations.default_operation_id("dev", "latest").startswith("dev-restore-latest-")
    assert cli.build_parser().parse_args(["start", "--date", "2026-12-07"]).date == date(2026, 12, 7)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["start", "--date", "newest"])


def test_status_says_a_latest_operations_day_was_its_newest_snapshots() -> None:
    now = utcnow()
    state = OperationState(
        operation_id="scheduled-d32c5kddcf5bb8c3",
        target_date=date(2026, 12, 7),
        latest_snapshot=True,
        outputs={"snapshot_name": "rds:dev-source-cluster-2026-12-07-02-10"},
        created_at=now,
        updated_at=now,
    )
    assert "date        2026-12-07 (requested: latest; rds:dev-source-cluster-2026-12-07-02-10)" in (
        render.status_text(state)
    )


# -- the schedule --------------------------------------------------------------------------------------------
def test_the_schedules_input_is_a_latest_request_whose_id_scheduler_fills_in() -> None:
    template = json.loads(request_input())
    assert template == {
        "operation_id": OPERATION_ID_TEMPLATE,
        "target_date": "latest",
        "schema_version": "1.0",
    }
    firing = RestoreRequested.model_validate_json(fill(request_input(), execution_id="d32c5kddcf5bb8c3"))
    assert firing.operation_id == "scheduled-d32c5kddcf5bb8c3"


@pytest.mark.parametrize(
    "value",
    [
        {"expression": "0 3 * * *"},
        {"expression": "cron(0 3 * * ? *"},
        {"expression": "rate(1 day)", "timezone": "CEST"},
        {"expression": "rate(1 day)", "timezone": "Europe/Atlantis"},
        {"expression": "rate(1 day)", "timezone": "../../etc/passwd"},
        {"expression": "rate(1 day)", "timezone": "UTC", "enabled": True},
    ],
)
def test_a_bad_refresh_schedule_is_refused(value: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RefreshSchedule.model_validate(value)


def test_a_refresh_schedule_takes_cron_rate_and_at_in_an_iana_zone() -> None:
    for expression in ("cron(0 3 ? * MON-FRI *)", "rate(12 hours)", "at(2026-12-24T06:00:00)"):
        assert RefreshSchedule(expression=expression, timezone="America/New_York").expression == expression
    assert RefreshSchedule(expression="rate(1 day)").timezone == "UTC"
