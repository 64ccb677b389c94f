"""`aurora-restore timeline`: one operation's state drawn as a standalone SVG (no script, no external asset).

Pure: the state item (and the time it is read at) in, SVG text out. One row per step in the order the steps
first ran; each run of a step is a bar coloured by its outcome, each wait between two runs a hatched stretch
marked where a wake-up came (an RDS event, a RecheckDue timer, a re-drive) and labelled with what ended it;
the target's downtime is shaded across the rows; a failure is a red mark whose tooltip is the error.
Every text is escaped; the only URL in the document is the SVG namespace.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from xml.sax.saxutils import escape

from aurora_restore.strategy_text import strategy_of
from functions.notify import out_of_use
from schemas.state import TERMINAL_STATUSES, HistoryEntry, OperationState

WIDTH = 1200
PLOT_X = 200  # left edge of the time axis; the step names sit left of it
PLOT_W = 960
ROWS_Y = 104  # top of the first row
ROW_H = 30
BAR_H = 12
MIN_BAR = 2.0  # a run that took no measurable time still shows
CHAR_W = 5.6  # the width of one character of the 10px annotations, to keep them inside the plot
NICE_TICKS = (
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
)

RUN = "#3572c6"
CHECK = "#7fa7e0"  # a run that found the step still waiting
FAILED = "#d32f2f"
IGNORED = "#9e9e9e"
DOWN = "#f39c12"
RDS_MARK = "#7b1fa2"
TIMER_MARK = "#424242"
OTHER_MARK = "#ef6c00"
TEXT = "#212121"
MUTED = "#616161"
FILLS = {"success": RUN, "waiting": CHECK, "failed": FAILED, "ignored": IGNORED}

DEFS = (
    "<defs>"
    '<pattern id="wait" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
    '<rect width="6" height="6" fill="#e3ecf9"/><line x1="0" y1="0" x2="0" y2="6" stroke="#7fa7e0" '
    'stroke-width="2"/></pattern>'
    '<pattern id="down" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)">'
    f'<rect width="8" height="8" fill="{DOWN}" fill-opacity="0.10"/><line x1="0" y1="0" x2="0" y2="8" '
    f'stroke="{DOWN}" stroke-opacity="0.25" stroke-width="2"/></pattern>'
    "</defs>"
)


@dataclass
class Row:
    """One step: its runs in order, and for an operation still going what it is doing now (and since when)."""

    step: str
    entries: list[HistoryEntry] = field(default_factory=list)
    now_doing: str | None = None  # "waiting for ..." or "running"
    since: datetime | None = None


@dataclass(frozen=True)
class Frame:
    """The time axis: `origin` at the plot's left edge, `end` at its right edge."""

    origin: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return max((self.end - self.origin).total_seconds(), 1.0)

    def x(self, moment: datetime) -> float:
        return PLOT_X + PLOT_W * (moment - self.origin).total_seconds() / self.seconds


def svg(state: OperationState, now: datetime) -> str:
    """The operation's timeline as a standalone SVG document, read at `now` (the end of a live one's bars)."""
    rows = _rows(state)
    frame = _frame(state, now)
    bottom = ROWS_Y + ROW_H * max(len(rows), 1)
    height = bottom + 76
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11" fill="{TEXT}">',
        f"<title>{_text(_heading(state))}</title>",
        DEFS,
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        *_header(state, frame),
        *_stripes(len(rows)),
        *_axis(frame, bottom),
        *_downtime(state, frame, bottom),
    ]
    for index, row in enumerate(rows):
        parts.extend(_row(row, ROWS_Y + index * ROW_H, frame, state))
    if not rows:
        parts.append(_label(PLOT_X, ROWS_Y + 18, "no step has run yet", fill=MUTED))
    parts.extend(_legend(bottom + 50))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# -- what is drawn -------------------------------------------------------------------------------------------
def _rows(state: OperationState) -> list[Row]:
    """One row per step, in the order the steps first ran; a live operation's current step gets its tail."""
    rows: dict[str, Row] = {}
    for entry in state.history:
        rows.setdefault(str(entry.step), Row(str(entry.step))).entries.append(entry)
    if state.status in TERMINAL_STATUSES:
        return list(rows.values())
    last = max((entry.finished_at for entry in state.history), default=state.created_at)
    if state.waiting is not None:
        row = rows.setdefault(str(state.waiting.step), Row(str(state.waiting.step)))
        row.now_doing, row.since = f"waiting for {state.waiting.waiting_for}", last
    elif (step := state.claim.step if state.claim else state.next_step) is not None:
        row = rows.setdefault(str(step), Row(str(step)))
        row.now_doing, row.since = "running", last
    return list(rows.values())


def _frame(state: OperationState, now: datetime) -> Frame:
    starts = [entry.started_at for entry in state.history]
    ends = [entry.finished_at for entry in state.history]
    origin = min([state.created_at, *starts])
    end = max([*ends, state.updated_at]) if state.status in TERMINAL_STATUSES else max([*ends, now])
    return Frame(origin, max(end, origin))


def _heading(state: OperationState) -> str:
    return f"aurora-restore operation {state.operation_id}"


def _header(state: OperationState, frame: Frame) -> Iterator[str]:
    took = _duration((frame.end - frame.origin).total_seconds())
    status = (
        state.status if state.status in TERMINAL_STATUSES else f"{state.status} (as of {_clock(frame.end)})"
    )
    yield _label(16, 26, _heading(state), size=17, weight="bold")
    facts = [
        f"target {state.target_cluster_id or state.config.get('target_cluster_id') or '-'}",
        f"snapshot day {state.target_date}",
        f"strategy {strategy_of(state)}",
        f"status {status}",
        f"total {took}",
        f"started {_clock(frame.origin)}",
    ]
    yield _label(16, 46, "   ·   ".join(facts), fill=MUTED)
    if state.error is not None and state.status == "failed":
        where = state.failed_step or state.current_step or "?"
        line = f"failed at {where}: {state.error.type}: {_first_line(state.error.message)}"
        yield _label(16, 64, _clip(line, 200), fill=FAILED, weight="bold", tooltip=line)


def _stripes(count: int) -> Iterator[str]:
    for index in range(count):
        if index % 2 == 0:
            y = ROWS_Y + index * ROW_H
            yield f'<rect x="0" y="{y}" width="{WIDTH}" height="{ROW_H}" fill="#f6f7f9"/>'


def _axis(frame: Frame, bottom: int) -> Iterator[str]:
    """Grid lines through the rows and, under them, the offsets from the start in minutes:seconds."""
    seconds = frame.seconds
    step = next((tick for tick in NICE_TICKS if seconds / tick <= 10), NICE_TICKS[-1])
    for index in range(int(seconds / step + 1e-9) + 1):
        x = PLOT_X + PLOT_W * index * step / seconds
        yield (
            f'<line x1="{x:.1f}" y1="{ROWS_Y}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#d0d4da" '
            'stroke-width="1"/>'
        )
        yield _label(
            x, bottom + 16, _offset(index * step, tenths=step < 1), anchor="middle", fill=MUTED, size=10
        )
    unit = "hours:minutes:seconds" if seconds >= 3600 else "minutes:seconds"
    yield _label(PLOT_X + PLOT_W / 2, bottom + 30, f"time since the start ({unit})", anchor="middle", size=10)


def _downtime(state: OperationState, frame: Frame, bottom: int) -> Iterator[str]:
    """The target's downtime shaded across every row, labelled with its length above the rows: under swap
    the switch alone (functions.notify.out_of_use), the old target serving until then."""
    span = out_of_use(state)
    if span is None:
        return
    since, until = span
    x0, x1 = frame.x(since), frame.x(until or frame.end)
    width = max(x1 - x0, MIN_BAR)
    length = _duration(((until or frame.end) - since).total_seconds())
    words = (
        f"target unavailable {length}" if until else f"target unavailable since {_offset_of(since, frame)}"
    )
    if strategy_of(state) == "swap":
        words += " (the switch)"
    yield (
        f'<rect x="{x0:.1f}" y="{ROWS_Y - 16}" width="{width:.1f}" height="{bottom - ROWS_Y + 16}" '
        f'fill="url(#down)" stroke="{DOWN}" stroke-dasharray="4 3"><title>{_text(words)}</title></rect>'
    )
    anchor, x = ("start", x0 + 4) if x0 + 4 + CHAR_W * len(words) <= PLOT_X + PLOT_W else ("end", x1 - 4)
    yield _label(x, ROWS_Y - 4, words, anchor=anchor, fill="#b9770e", weight="bold", size=10)


def _row(row: Row, top: int, frame: Frame, state: OperationState) -> Iterator[str]:
    """A step's name, its runs, the stretches between them, its live tail and its annotation."""
    mid = top + ROW_H / 2
    yield _label(PLOT_X - 10, mid + 4, row.step, anchor="end", weight="bold")
    for before, after in zip(row.entries, row.entries[1:], strict=False):
        yield from _between(before, after, frame, mid)
    if row.now_doing is not None and row.since is not None:
        yield from _tail(row, frame, mid)
    for number, entry in enumerate(row.entries, start=1):
        yield _run(entry, number, frame, mid)
        if entry.outcome == "failed":
            yield from _failure(entry, frame, mid, state)
    yield _annotation(row, frame, mid, state)


def _between(before: HistoryEntry, after: HistoryEntry, frame: Frame, mid: float) -> Iterator[str]:
    """The stretch between two runs of a step: a wait (hatched) or a stop until the step was run again."""
    x0, x1 = frame.x(before.finished_at), frame.x(after.started_at)
    if before.outcome == "waiting":
        yield (
            f'<rect x="{x0:.1f}" y="{mid - BAR_H / 2:.1f}" width="{max(x1 - x0, 0):.1f}" height="{BAR_H}" '
            f'fill="url(#wait)"><title>{_text(f"waiting: {_first_line(before.message)}")}</title></rect>'
        )
    else:
        colour = FAILED if before.outcome == "failed" else IGNORED
        yield (
            f'<line x1="{x0:.1f}" y1="{mid}" x2="{x1:.1f}" y2="{mid}" stroke="{colour}" stroke-width="1.5" '
            'stroke-dasharray="3 3"/>'
        )
    yield _wake_up(after, frame, mid, stopped=before.outcome != "waiting")


def _tail(row: Row, frame: Frame, mid: float) -> Iterator[str]:
    assert row.since is not None and row.now_doing is not None
    x0, x1 = frame.x(row.since), frame.x(frame.end)
    fill = "url(#wait)" if row.now_doing.startswith("waiting") else "#cfdcf2"
    yield (
        f'<rect x="{x0:.1f}" y="{mid - BAR_H / 2:.1f}" width="{max(x1 - x0, MIN_BAR):.1f}" height="{BAR_H}" '
        f'fill="{fill}" stroke="{RUN}" stroke-dasharray="2 2"><title>{_text(row.now_doing)}</title></rect>'
    )


def _run(entry: HistoryEntry, number: int, frame: Frame, mid: float) -> str:
    x0, x1 = frame.x(entry.started_at), frame.x(entry.finished_at)
    took = (entry.finished_at - entry.started_at).total_seconds()
    tip = (
        f"{entry.step} run {number} ({entry.trigger}): {entry.outcome}, {_offset_of(entry.started_at, frame)}"
        f" for {_duration(took)}: {_first_line(entry.message)}"
    )
    return (
        f'<rect x="{x0:.1f}" y="{mid - BAR_H / 2:.1f}" width="{max(x1 - x0, MIN_BAR):.1f}" height="{BAR_H}" '
        f'fill="{FILLS.get(entry.outcome, RUN)}"><title>{_text(tip)}</title></rect>'
    )


def _wake_up(entry: HistoryEntry, frame: Frame, mid: float, *, stopped: bool) -> str:
    """Where a run of a step that had waited (or stopped) began: a diamond for an RDS event, a tick for a
    RecheckDue timer, a triangle for anything else (a re-drive, a resume, a stall check)."""
    x = frame.x(entry.started_at)
    verb = "run again by" if stopped else "woken by"
    tip = f"<title>{_text(f'{verb} {entry.trigger} at {_offset_of(entry.started_at, frame)}')}</title>"
    top = mid - BAR_H / 2
    if entry.trigger.startswith("RDS-EVENT-"):
        points = (
            f"{x:.1f},{top - 8:.1f} {x + 4:.1f},{top - 4:.1f} {x:.1f},{top:.1f} {x - 4:.1f},{top - 4:.1f}"
        )
        return f'<polygon points="{points}" fill="{RDS_MARK}">{tip}</polygon>'
    if entry.trigger == "RecheckDue" and not stopped:
        return (
            f'<line x1="{x:.1f}" y1="{top - 7:.1f}" x2="{x:.1f}" y2="{top + BAR_H + 3:.1f}" '
            f'stroke="{TIMER_MARK}" stroke-width="1.5">{tip}</line>'
        )
    points = f"{x - 4:.1f},{top - 8:.1f} {x + 4:.1f},{top - 8:.1f} {x:.1f},{top - 1:.1f}"
    return f'<polygon points="{points}" fill="{OTHER_MARK}">{tip}</polygon>'


def _failure(entry: HistoryEntry, frame: Frame, mid: float, state: OperationState) -> Iterator[str]:
    """A red mark at the end of a failed run; its tooltip is the error's first line."""
    x = frame.x(entry.finished_at) + MIN_BAR
    tip = f"<title>{_text(f'{entry.step} failed: {_failure_line(entry, state)}')}</title>"
    yield (
        f'<g><circle cx="{x + 7:.1f}" cy="{mid}" r="7" fill="{FAILED}"/>'
        f'<path d="M{x + 4:.1f},{mid - 3} l6,6 M{x + 10:.1f},{mid - 3} l-6,6" stroke="#ffffff" '
        f'stroke-width="2"/>{tip}</g>'
    )


def _failure_line(entry: HistoryEntry, state: OperationState) -> str:
    """The first line of a failed run's error: for the run that failed the operation, its recorded error
    (type and message); for an earlier failed run, which a resume or re-drive followed, its history message."""
    failures = [e for e in state.history if e.outcome == "failed" and e.step == state.failed_step]
    if state.error is not None and state.status == "failed" and failures and entry is failures[-1]:
        return _first_line(f"{state.error.type}: {state.error.message}")
    return _first_line(entry.message)


def _annotation(row: Row, frame: Frame, mid: float, state: OperationState) -> str:
    """How long the step took, its wake-ups and what ended its wait (or its error), beside its bar."""
    words, colour = _summary(row, frame, state)
    start = frame.x(row.entries[0].started_at) if row.entries else frame.x(row.since or frame.end)
    end = frame.x(frame.end) if row.now_doing else frame.x(row.entries[-1].finished_at)
    if row.entries and row.entries[-1].outcome == "failed":
        end += 18  # past the failure mark
    width = CHAR_W * len(words)
    if end + 8 + width <= PLOT_X + PLOT_W + 30:
        return _label(end + 8, mid + 4, words, fill=colour, size=10)
    if start - 8 - width >= PLOT_X:
        return _label(start - 8, mid + 4, words, anchor="end", fill=colour, size=10)
    return _label(start - 6, mid - 9, words, anchor="end", fill=colour, size=10)


def _summary(row: Row, frame: Frame, state: OperationState) -> tuple[str, str]:
    entries = row.entries
    finish = frame.end if row.now_doing else entries[-1].finished_at
    words = [_duration((finish - (entries[0].started_at if entries else finish)).total_seconds())]
    if len(entries) > 1:
        waits = sum(1 for entry in entries[:-1] if entry.outcome == "waiting")
        words.append(
            f"{len(entries)} runs" + (f", {waits} waits" if waits > 1 else ", 1 wait" if waits else "")
        )
    pairs = list(zip(entries, entries[1:], strict=False))
    words += [f"run again by {after.trigger}" for before, after in pairs if before.outcome == "failed"]
    if row.now_doing:
        return " · ".join([*words, row.now_doing]), MUTED
    last = entries[-1]
    if last.outcome == "failed":
        return " · ".join([*words, _clip(f"failed: {_failure_line(last, state)}", 90)]), FAILED
    if pairs and pairs[-1][0].outcome == "waiting":
        words.append(f"wait ended by {last.trigger}")
    return " · ".join(words), MUTED


def _legend(y: int) -> Iterator[str]:
    x = 16.0
    items = [
        (f'<rect x="{{x}}" y="{y - 9}" width="14" height="10" fill="{RUN}"/>', "step ran"),
        (f'<rect x="{{x}}" y="{y - 9}" width="14" height="10" fill="{CHECK}"/>', "checked: still waiting"),
        (f'<rect x="{{x}}" y="{y - 9}" width="22" height="10" fill="url(#wait)"/>', "waiting"),
        (f'<rect x="{{x}}" y="{y - 9}" width="14" height="10" fill="{FAILED}"/>', "failed (hover: error)"),
        (
            f'<rect x="{{x}}" y="{y - 11}" width="22" height="14" fill="url(#down)" stroke="{DOWN}"/>',
            "target unavailable",
        ),
        (
            f'<polygon points="{{x4}},{y - 10} {{x8}},{y - 6} {{x4}},{y - 2} {{x}},{y - 6}" fill="{RDS_MARK}"/>',
            "RDS event",
        ),
        (
            f'<line x1="{{x4}}" y1="{y - 11}" x2="{{x4}}" y2="{y + 1}" stroke="{TIMER_MARK}" stroke-width="1.5"/>',
            "RecheckDue timer",
        ),
        (
            f'<polygon points="{{x}},{y - 10} {{x8}},{y - 10} {{x4}},{y - 3}" fill="{OTHER_MARK}"/>',
            "other trigger (re-drive, resume)",
        ),
    ]
    for shape, words in items:
        swatch = 22 if 'width="22"' in shape else 14 if "width=" in shape else 8
        yield shape.format(x=f"{x:.1f}", x4=f"{x + 4:.1f}", x8=f"{x + 8:.1f}")
        yield _label(x + swatch + 6, y, words, size=10)
        x += swatch + 6 + 5.2 * len(words) + 18


# -- words and numbers ---------------------------------------------------------------------------------------
def _label(
    x: float,
    y: float,
    words: str,
    *,
    anchor: str = "start",
    fill: str = TEXT,
    size: int = 11,
    weight: str = "normal",
    tooltip: str | None = None,
) -> str:
    tip = f"<title>{_text(tooltip)}</title>" if tooltip else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}" font-size="{size}" '
        f'font-weight="{weight}">{tip}{_text(words)}</text>'
    )


def _text(words: str) -> str:
    """Text for an element's content: XML-escaped, with the control characters XML cannot hold dropped."""
    return escape("".join(ch for ch in words if ch >= " " or ch in "\t\n"))


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _offset(seconds: float, *, tenths: bool = False) -> str:
    """`m:ss` since the start, `h:mm:ss` from an hour on; `m:ss.s` for an axis ticking in fractions of a second."""
    if tenths:
        minutes, secs = divmod(round(seconds, 1), 60)
        return f"{int(minutes)}:{secs:04.1f}"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _offset_of(moment: datetime, frame: Frame) -> str:
    return _offset((moment - frame.origin).total_seconds())


def _clock(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
