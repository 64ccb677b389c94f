"""How operations look on a terminal: status, live progress lines, the final timeline."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from functions.notify import left_in_place, out_of_use
from schemas.common import spoken_duration
from schemas.state import HistoryEntry, OperationState

STATUS_MARK = {"success": "ok", "waiting": "..", "failed": "!!", "ignored": "--"}
NOTE_CHARS = 72  # `list`'s last column: the error or the wait, cut to this


def _offset(moment: datetime, origin: datetime) -> str:
    return f"{(moment - origin).total_seconds():7.1f}s"


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment


def progress_line(entry: HistoryEntry, origin: datetime) -> str:
    mark = STATUS_MARK.get(entry.outcome, "  ")
    return f"[{_offset(entry.finished_at, origin)}] {mark} {entry.step:<22} {entry.message}  (by {entry.trigger})"


def target_of(state: OperationState) -> str | None:
    """The operation's target cluster (None: not known, its configuration gone with `delete_state`)."""
    cluster = state.config.get("target_cluster_id") or state.target_cluster_id
    return str(cluster) if cluster else None


def step_of(state: OperationState) -> str | None:
    """The step an operation is at: the one that failed, the one it waits in or runs next, else the last."""
    return state.failed_step or state.next_step or state.current_step


def note_of(state: OperationState, width: int = NOTE_CHARS) -> str:
    """One short line on why an operation is where it is: its error, or what it waits for."""
    if state.error is not None:
        note = f"{state.error.type}: {state.error.message}"
    elif state.waiting is not None:
        note = f"waiting for {state.waiting.waiting_for}"
    else:
        note = ""
    return note if len(note) <= width else note[: width - 3] + "..."


def operations_table(states: list[OperationState]) -> str:
    """`aurora-restore list`: one row per operation, in the order given, times in UTC."""
    header = ("OPERATION", "STATUS", "STEP", "TARGET", "STARTED (UTC)", "UPDATED (UTC)", "NOTE")
    rows = [header] + [
        (
            state.operation_id,
            state.status,
            step_of(state) or "-",
            target_of(state) or "?",
            f"{_utc(state.created_at):%Y-%m-%d %H:%M:%S}",
            f"{_utc(state.updated_at):%Y-%m-%d %H:%M:%S}",
            note_of(state),
        )
        for state in states
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def downtime_text(state: OperationState) -> str | None:
    """The target's time out of use, as the outcome notice counts it (None: it was not deleted)."""
    span = out_of_use(state)
    if span is None:
        return None
    since, until = span
    began = f"{_utc(since):%Y-%m-%d %H:%M:%S} UTC"
    if until is None:
        return f"since {began} (the deletion): the target is not back in use yet"
    return f"{spoken_duration(until - since)}, from {began} (the deletion) to the users set up on the restored cluster"


def status_text(state: OperationState) -> str:
    lines = [
        f"operation   {state.operation_id}",
        f"status      {state.status}",
        f"target      {target_of(state) or '?'} in {state.config.get('target_region', '?')}",
        f"date        {state.target_date.isoformat()}",
        f"step        {state.current_step or '-'} -> next {state.next_step or '-'}",
    ]
    down = downtime_text(state)
    if down:
        lines.append(f"downtime    {down}")
    if state.waiting is not None:
        lines.append(
            f"waiting     for {state.waiting.waiting_for}; next check {_utc(state.waiting.next_check_at):%H:%M:%S} UTC, "
            f"deadline {_utc(state.waiting.deadline):%Y-%m-%d %H:%M:%S} UTC"
        )
    if state.error is not None:
        lines.append(f"error       {state.failed_step}: {state.error.type}: {state.error.message}")
    if state.status in ("failed", "aborted"):
        left = left_in_place(state)  # what the failure notification says was left in place
        shown = [f"{name}: {value}" for name, value in left.items() if value is not None]
        lines.append("in place    " + ("\n            ".join(shown) if shown else "nothing"))
        if state.status == "failed":
            lines.append(f"            fix the cause, then `aurora-restore resume {state.operation_id}`")
    given: dict[str, list[str]] = {}
    for name, source in state.config_sources.items():
        if source != "default":
            given.setdefault(source, []).append(name)
    if given:
        lines.append(
            "config      "
            + "; ".join(
                f"from {source}: {', '.join(sorted(names))}" for source, names in sorted(given.items())
            )
            + "; the rest defaults"
        )
    if state.outputs.get("cluster_endpoint"):
        lines.append(
            f"endpoint    {state.outputs['cluster_endpoint']}:{state.outputs.get('cluster_port', 5432)}"
        )
    lines.append("history")
    for entry in state.history:
        lines.append("  " + progress_line(entry, state.created_at))
    return "\n".join(lines)


def timeline(state: OperationState, rds_events: list[dict[str, Any]] | None = None) -> str:
    """Per step: when it started and ended, how long it waited, and what advanced it."""
    origin = state.created_at
    rows: list[tuple[str, str, str, str, str]] = []
    by_step: dict[str, list[HistoryEntry]] = {}
    for entry in state.history:
        by_step.setdefault(entry.step, []).append(entry)
    for step, entries in by_step.items():
        first, last = entries[0], entries[-1]
        waits = sum(1 for entry in entries if entry.outcome == "waiting")
        triggers = Counter(entry.trigger for entry in entries)
        rows.append(
            (
                step,
                _offset(first.started_at, origin).strip(),
                f"{(last.finished_at - first.started_at).total_seconds():.1f}s",
                f"{waits} check(s)" if waits else "-",
                ", ".join(f"{name} x{count}" if count > 1 else name for name, count in triggers.items()),
            )
        )
    header = ("step", "start", "took", "waits", "advanced by")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    out = [line(header), "  ".join("-" * width for width in widths)]
    out += [line(row) for row in rows]
    if rds_events:
        sent = [event for event in rds_events if event.get("sent")]
        kinds = Counter(event["detail"]["EventID"] for event in sent)
        out.append("")
        out.append(
            "RDS events on the default bus: "
            + (", ".join(f"{k} x{v}" for k, v in sorted(kinds.items())) or "none")
        )
    return "\n".join(out)
