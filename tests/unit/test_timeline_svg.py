"""The SVG timeline (aurora_restore.timeline): a standalone document holding every step, its waits, the target's
downtime and the failure, for completed, failed, running and re-driven operations."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from aurora_restore import timeline
from functions.sequence import RUNBOOK
from schemas.common import Step
from schemas.events import ErrorInfo
from schemas.state import HistoryEntry, OperationState, Waiting

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"

# (step, outcome, trigger, start minute, length in seconds): a completed restore of an hour and a half
COMPLETED = [
    ("snapshot_check", "success", "RestoreRequested", 0.0, 1.2),
    ("copy_snapshot", "success", "StepCompleted", 0.1, 0.8),
    ("check_copy_status", "waiting", "StepCompleted", 0.2, 0.3),
    ("check_copy_status", "waiting", "RecheckDue", 5.2, 0.3),
    ("check_copy_status", "success", "RecheckDue", 25.0, 0.3),
    ("delete_rds", "waiting", "StepCompleted", 25.1, 1.0),
    ("delete_rds", "success", "RDS-EVENT-0171", 33.0, 0.5),
    ("restore_snapshot", "success", "StepCompleted", 33.1, 0.0),  # took no measurable time
    ("check_restore_status", "waiting", "StepCompleted", 33.2, 0.4),
    ("check_restore_status", "waiting", "RDS-EVENT-0170", 60.0, 0.4),
    ("check_restore_status", "success", "RecheckDue", 75.0, 2.0),
    ("setup_db_users", "success", "StepCompleted", 75.1, 3.0),
    ("verify_restore", "success", "StepCompleted", 75.2, 2.0),
    ("notify_completion", "success", "StepCompleted", 75.3, 0.5),
    ("cleanup", "success", "StepCompleted", 75.4, 0.5),
]


def history(rows: list[tuple[str, str, str, float, float]]) -> list[HistoryEntry]:
    return [
        HistoryEntry(
            step=step,
            outcome=outcome,  # type: ignore[arg-type]
            message=f"{step} {outcome}",
            trigger=trigger,
            started_at=T0 + timedelta(minutes=minute),
            finished_at=T0 + timedelta(minutes=minute, seconds=seconds),
        )
        for step, outcome, trigger, minute, seconds in rows
    ]


def state(rows: list[tuple[str, str, str, float, float]], **fields: Any) -> OperationState:
    entries = history(rows)
    fields.setdefault("status", "completed")
    fields.setdefault("outputs", {"deletion_started": True})
    fields.setdefault("operation_id", "dev-restore-2026-12-06-020000")
    return OperationState(
        target_date=date(2026, 12, 6),
        target_cluster_id="dev-target-cluster",
        created_at=T0,
        updated_at=max(entry.finished_at for entry in entries),
        history=entries,
        **fields,
    )


def failed() -> OperationState:
    rows = [
        *COMPLETED[:11],
        ("setup_db_users", "failed", "StepCompleted", 75.1, 1.0),
        ("notify_completion", "success", "StepFailed", 75.2, 0.5),  # the failure notice
    ]
    error = ErrorInfo(
        type="ConfigError", message="secret dev/app-user-password not found\nsecond line", retryable=False
    )
    return state(
        rows, status="failed", failed_step="setup_db_users", current_step="setup_db_users", error=error
    )


def parsed(text: str) -> ET.Element:
    root = ET.fromstring(text.encode())
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> str:
    return "\n".join("".join(element.itertext()) for element in root.iter(f"{SVG}text"))


def titles(root: ET.Element) -> list[str]:
    return [element.text or "" for element in root.iter(f"{SVG}title")]


def assert_standalone(text: str) -> None:
    """No script, no event handler, no external reference: the only URL is the SVG namespace."""
    assert "<script" not in text.lower()
    assert not re.search(r"\son[a-z]+=", text)
    assert re.findall(r"https?://[^\"'\s<>]*", text) == ["http://www.w3.org/2000/svg"]
    assert "href" not in text
    assert "@import" not in text and "url(" not in text.replace("url(#wait)", "").replace("url(#down)", "")


def test_a_completed_operation_is_a_standalone_svg_with_every_step_and_its_downtime() -> None:
    # Given a completed restore
    operation = state(COMPLETED)

    # When it is drawn
    text = timeline.svg(operation, T0 + timedelta(days=1))

    # Then it is one standalone SVG document naming every step once, in the order they ran
    root = parsed(text)
    assert_standalone(text)
    shown = texts(root)
    names = [line for line in shown.splitlines() if line in {step.value for step in Step}]
    assert names == [step.value for step in RUNBOOK]  # no masking configured: the runbook's ten
    # And its title names the operation, its target, its status and how long it took
    assert "dev-restore-2026-12-06-020000" in shown
    assert "target dev-target-cluster" in shown and "status completed" in shown and "total 1h 15m" in shown
    # And the target's downtime, from delete_rds to setup_db_users' success, is labelled with its length
    assert "target unavailable 50m 03s" in shown
    # And each wait says what ended it
    assert "wait ended by RDS-EVENT-0171" in shown and "wait ended by RecheckDue" in shown
    # And the time axis reads in minutes, not in the time the drawing was made
    assert "1:10:00" in shown and "as of" not in shown


def test_every_run_is_a_bar_even_one_that_took_no_time() -> None:
    root = parsed(timeline.svg(state(COMPLETED), T0))

    bars = [rect for rect in root.iter(f"{SVG}rect") if rect.find(f"{SVG}title") is not None]
    runs = [rect for rect in bars if " run " in (rect.findtext(f"{SVG}title") or "")]
    assert len(runs) == len(COMPLETED)
    assert min(float(rect.get("width", "0")) for rect in runs) >= timeline.MIN_BAR
    # And the wake-ups are marked: an RDS event, a timer
    wake_ups = [title for title in titles(root) if title.startswith("woken by")]
    assert [title.split()[2] for title in wake_ups] == ["RecheckDue", "RecheckDue", "RDS-EVENT-0171"] + [
        "RDS-EVENT-0170",
        "RecheckDue",
    ]


def test_a_failed_operation_marks_its_failure_with_the_error_s_first_line() -> None:
    # Given an operation failed at setup_db_users after the deletion: the target not back
    operation = failed()

    # When it is drawn
    text = timeline.svg(operation, T0 + timedelta(days=1))

    # Then the failure is marked, its tooltip the error's first line only, and the header says it
    root = parsed(text)
    assert_standalone(text)
    assert "setup_db_users failed: ConfigError: secret dev/app-user-password not found" in titles(root)
    assert "second line" not in texts(root)
    assert "failed at setup_db_users: ConfigError: secret dev/app-user-password not found" in texts(root)
    assert "1.0s · failed: ConfigError: secret dev/app-user-password not found" in texts(root).splitlines()
    assert any(circle.get("fill") == timeline.FAILED for circle in root.iter(f"{SVG}circle"))
    # And the downtime is open: the target is not back
    assert "target unavailable since 25:06" in texts(root)
    assert "status failed" in texts(root)


def test_a_running_operation_is_drawn_to_the_moment_it_was_read() -> None:
    # Given an operation waiting for the restore, read ten minutes after its last check
    rows = COMPLETED[:9]
    last = T0 + timedelta(minutes=33.2)
    waiting = Waiting(
        step="check_restore_status",
        waiting_for="cluster available",
        next_check_at=last + timedelta(minutes=5),
        deadline=last + timedelta(hours=2),
        since=last,
    )
    operation = state(rows, status="waiting", waiting=waiting, next_step="check_restore_status")
    now = last + timedelta(minutes=10)

    # When it is drawn
    text = timeline.svg(operation, now)

    # Then its wait runs to now, the header says so, and the downtime is open
    root = parsed(text)
    shown = texts(root)
    assert "status waiting (as of 2026-12-07 02:43:12 UTC)" in shown
    assert "waiting for cluster available" in shown
    assert "target unavailable since 25:06" in shown
    tail = [
        rect
        for rect in root.iter(f"{SVG}rect")
        if rect.findtext(f"{SVG}title") == "waiting for cluster available"
    ]
    assert len(tail) == 1
    right = float(tail[0].get("x", "0")) + float(tail[0].get("width", "0"))
    assert right == pytest.approx(timeline.PLOT_X + timeline.PLOT_W, abs=0.2)


def test_a_step_run_again_after_a_failure_stays_on_its_row() -> None:
    # Given setup_db_users failed, then resumed by the operator and the restore completed
    rows = [
        *COMPLETED[:11],
        ("setup_db_users", "failed", "StepCompleted", 75.1, 1.0),
        ("setup_db_users", "success", "operator", 90.0, 3.0),
        *[
            (step, outcome, trigger, minute + 15, seconds)
            for step, outcome, trigger, minute, seconds in COMPLETED[12:]
        ],
    ]
    operation = state(rows)

    # When it is drawn
    root = parsed(timeline.svg(operation, T0))

    # Then setup_db_users is one row with both runs, the re-run marked with what ran it again
    shown = texts(root)
    assert shown.splitlines().count("setup_db_users") == 1
    assert "2 runs · run again by operator" in shown
    assert "run again by operator at 1:30:00" in titles(root)
    assert any("setup_db_users run 2 (operator): success" in title for title in titles(root))
    # And the downtime ends at the successful run
    assert "target unavailable 1h 04m" in shown


def test_texts_are_escaped_and_no_downtime_is_drawn_when_nothing_was_deleted() -> None:
    # Given an operation refused at its first step, with markup and a control character in its error
    rows = [("snapshot_check", "failed", "RestoreRequested", 0.0, 0.4)]
    error = ErrorInfo(
        type="InvalidRequest", message='<script>alert("x")</script> & \x07more', retryable=False
    )
    operation = state(rows, status="failed", failed_step="snapshot_check", error=error, outputs={})

    # When it is drawn
    text = timeline.svg(operation, T0)

    # Then it parses, the markup is text, and there is no downtime
    root = parsed(text)
    assert_standalone(text)
    assert '<script>alert("x")</script> & more' in texts(root)
    assert not re.search(r"target unavailable \S", texts(root))  # only the legend's words


def test_an_operation_with_no_history_yet_is_still_a_drawing() -> None:
    operation = state(COMPLETED[:1], status="running", next_step="snapshot_check")
    operation.history = []

    root = parsed(timeline.svg(operation, T0 + timedelta(seconds=3)))

    assert "snapshot_check" in texts(root)
    assert "running" in texts(root)
    # And an axis of three seconds ticks in half seconds
    assert {"0:00.0", "0:00.5", "0:03.0"} <= set(texts(root).splitlines())
