"""When check_copy_status looks at a running copy again: projected from PercentProgress, never past it,
and the wake-up that brings it never set before that moment."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from functions.steps.snapshot import _copy_recheck
from functions.wakeup import at_expression
from schemas.common import utcnow


def recheck(progress: int, elapsed_s: float, shortest: float = 60.0) -> float:
    started = (utcnow() - timedelta(seconds=elapsed_s)).isoformat()
    return _copy_recheck({"Status": "copying", "PercentProgress": progress}, shortest, started)


def test_no_progress_yet_means_the_shortest_interval() -> None:
    assert recheck(0, 30) == 60.0


def test_a_copy_past_half_way_is_looked_at_just_after_its_projected_end() -> None:
    # 60% in 20 minutes: the true figure is 60-61%, so about 13 more minutes
    wait = recheck(60, 1200)
    assert 1200 * 39.5 / 60.5 < wait < 1200 * 39.5 / 60.5 * 1.02


def test_the_margin_past_the_projected_end_is_in_proportion_to_the_copy() -> None:
    # the same copy at a thousandth of the pace (a time-scaled run): the same projection, scaled
    assert recheck(86, 8.6, shortest=0.05) == pytest.approx(recheck(86, 8600) / 1000, rel=0.01)


def test_early_on_it_stops_short_and_projects_again() -> None:
    # 20% in 4 minutes projects 15.5 more minutes: it looks again at 90% of that
    wait = recheck(20, 240)
    assert wait == pytest.approx(240 * 79.5 / 20.5 * 0.9, rel=0.01)


def test_a_few_percent_is_not_trusted_further_than_the_copy_has_run() -> None:
    assert recheck(2, 120) == pytest.approx(120, rel=0.01)


def test_the_interval_never_drops_below_the_shortest() -> None:
    assert recheck(99, 1200) == 60.0


def test_without_a_request_time_the_snapshot_creation_time_is_used() -> None:
    snapshot = {"PercentProgress": 60, "SnapshotCreateTime": utcnow() - timedelta(seconds=1200)}
    assert _copy_recheck(snapshot, 60.0, None) == pytest.approx(recheck(60, 1200), rel=0.01)


@pytest.mark.parametrize(
    ("at", "expression"),
    [
        ("2026-11-24T10:00:00.000001", "2026-11-24T10:00:01"),
        ("2026-11-24T10:00:00.999", "2026-11-24T10:00:01"),
        ("2026-11-24T10:00:00", "2026-11-24T10:00:00"),
        ("2026-11-24T23:59:59.5", "2026-11-25T00:00:00"),
    ],
)
def test_a_wake_up_is_never_set_before_the_moment_asked_for(at: str, expression: str) -> None:
    assert at_expression(datetime.fromisoformat(at)) == expression


class _Copy:
    """The target region's RDS, as far as check_copy_status asks it: one copy at a given progress."""

    def __init__(self, progress: int) -> None:
        self.progress = progress

    def cluster_snapshot(self, name: str) -> dict[str, object]:
        return {"DBClusterSnapshotIdentifier": name, "Status": "copying", "PercentProgress": self.progress}


def _check(copy: _Copy, outputs: dict[str, object]) -> tuple[float, dict[str, object]]:
    """check_copy_status on an operation with these outputs: the wait it asks for (s), what it records."""
    from fakes.memory_store import MemoryStateStore

    from functions.engine.contract import StepContext, Waiting
    from functions.engine.services import Services
    from functions.engine.transitions import new_operation
    from functions.engine.triggers import Trigger, TriggerKind
    from functions.steps.snapshot import check_copy_status
    from schemas.common import Step
    from schemas.config import RestoreConfig
    from unit.fakes import RUNBOOK_CONFIG, SETTINGS

    class CopyServices(Services):
        def rds(self, region: str) -> _Copy:  # type: ignore[override]
            return copy

    trigger = Trigger.internal(TriggerKind.RECHECK_DUE, "op-1")
    state = new_operation(trigger, "op-1", SETTINGS, utcnow())
    state.outputs = {"target_snapshot": "s-copy", **outputs}
    config = RestoreConfig.model_validate(RUNBOOK_CONFIG)
    services = CopyServices(SETTINGS, store=MemoryStateStore())
    outcome = check_copy_status(StepContext(Step.CHECK_COPY_STATUS, state, config, {}, trigger, services))
    assert isinstance(outcome, Waiting)
    assert outcome.wait.recheck_after_seconds is not None
    return outcome.wait.recheck_after_seconds, outcome.outputs.recorded()


def test_a_copy_that_sat_queued_is_projected_from_when_it_was_last_seen_queued() -> None:
    # Given a copy asked for an hour ago, found queued at 0% until a minute ago, now at 10%
    hour_ago = (utcnow() - timedelta(hours=1)).isoformat()
    minute_ago = (utcnow() - timedelta(minutes=1)).isoformat()
    outputs: dict[str, object] = {"copy_requested_at": hour_ago, "copy_queued_until": minute_ago}

    # When it is checked now
    wait, recorded = _check(_Copy(10), outputs)

    # Then 10% in (at most) a minute projects about 8 more minutes, stopped short at 90%: not the 8 hours
    # that 10% in the hour since the request would give; a moving copy records no queue time
    assert wait == pytest.approx(60 * 89.5 / 10.5 * 0.9, rel=0.05)
    assert recorded == {}


def test_a_check_that_finds_the_copy_queued_records_when() -> None:
    outputs: dict[str, object] = {"copy_requested_at": (utcnow() - timedelta(hours=1)).isoformat()}
    before = utcnow()
    wait, recorded = _check(_Copy(0), outputs)
    assert wait == 60.0
    assert datetime.fromisoformat(str(recorded["copy_queued_until"])) >= before
