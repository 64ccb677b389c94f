"""The times an outcome notice carries: when the operation started, how long it took, and the target's
time out of use, from the delete_rds run that started the deletion to setup_db_users' success."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from functions.notify import timing
from schemas.state import HistoryEntry, OperationState

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def entry(step: str, outcome: str, minute: float) -> HistoryEntry:
    at = T0 + timedelta(minutes=minute)
    return HistoryEntry(
        step=step, outcome=outcome, message="-", trigger="StepCompleted", started_at=at, finished_at=at
    )


def state(*history: HistoryEntry, deletion_started: bool = True) -> OperationState:
    return OperationState(
        operation_id="op-1",
        target_date=date(2026, 12, 1),
        created_at=T0,
        updated_at=T0,
        history=list(history),
        outputs={"deletion_started": deletion_started},
    )


def test_a_completed_restore_says_how_long_the_target_was_out_of_use() -> None:
    # Given a delete_rds refused once (nothing deleted), resumed, then deleting at minute 25, and the users
    # set up on the restored cluster at minute 58
    done = state(
        entry("check_copy_status", "success", 20),
        entry("delete_rds", "failed", 21),
        entry("delete_rds", "waiting", 25),
        entry("delete_rds", "success", 33),
        entry("setup_db_users", "success", 58),
    )

    times = timing(done, now=T0 + timedelta(minutes=60))

    assert times == {
        "started_at": T0.isoformat(),
        "took_s": 3600,
        "target_down_since": (T0 + timedelta(minutes=25)).isoformat(),
        "target_downtime_s": 33 * 60,
    }


def test_a_failure_after_the_deletion_says_since_when_the_target_is_out_of_use() -> None:
    failed = state(entry("delete_rds", "waiting", 25), entry("setup_db_users", "failed", 58))

    times = timing(failed, now=T0 + timedelta(minutes=59))

    assert times["target_down_since"] == (T0 + timedelta(minutes=25)).isoformat()
    assert "target_downtime_s" not in times


def test_a_failure_before_the_deletion_says_nothing_of_the_target() -> None:
    refused = state(entry("delete_rds", "failed", 21), deletion_started=False)

    times = timing(refused, now=T0 + timedelta(minutes=22))

    assert times == {"started_at": T0.isoformat(), "took_s": 22 * 60}
