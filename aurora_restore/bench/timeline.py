"""Handler calls recorded with their times, and the AWS-equivalent reading of a scaled timeline.

The simulated AWS work and the waits for a poll or recheck timer are time-scaled, so they are read back
in AWS seconds (wall / scale). Everything else (a function running, an event in transit) takes the same
real time here as in AWS, so it is counted at face value.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from functions.identifiers import swap_names
from functions.routes import RECONCILE

# The simulator's record of a cluster rename (aurora_restore.local.renames): its resource is the new name.
RENAME_WORK = "ModifyDBCluster:renaming"

# The simulated works of one restore, in order, and the step that notices each one is done.
WAITS: tuple[tuple[str, str, str], ...] = (
    ("copy", "CopyDBClusterSnapshot", "check_copy_status"),
    ("delete_instance", "DeleteDBInstance", "delete_rds"),
    ("delete_cluster", "DeleteDBCluster", "delete_rds"),
    ("restore", "RestoreDBClusterFromSnapshot", "check_restore_status"),
    ("create_instance", "CreateDBInstance", "check_restore_status"),
    # The swap strategy's switch: the restored cluster renamed into the target's name (the last rename).
    ("rename", RENAME_WORK, "swap_clusters"),
)


@dataclass
class Call:
    function: str
    operation_id: str | None
    trigger: str  # "direct", an event's detail-type, or "schedule"
    started: float  # time.time()
    finished: float
    response: dict[str, Any] = field(default_factory=dict)
    raised: str | None = None  # the exception's type: an error Lambda counts against the function's alarm
    resource: str | None = None  # an RDS event's source (its SourceIdentifier without "rds:")


def raised_by_type(calls: list[Call]) -> dict[str, int]:
    """How many of `calls` raised, by exception type."""
    counts: dict[str, int] = {}
    for call in calls:
        if call.raised is not None:
            counts[call.raised] = counts.get(call.raised, 0) + 1
    return dict(sorted(counts.items()))


def of_operation(calls: list[Call], operation_id: str, resources: set[str]) -> list[Call]:
    """The step invocations an operation caused: those naming it, and those an RDS event about one of its
    resources started that named no operation (it raised, or was ignored: stale, or not the step's turn)."""
    return [
        c
        for c in calls
        if c.function != RECONCILE
        and (c.operation_id == operation_id or (c.operation_id is None and c.resource in resources))
    ]


def rds_triggered(calls: list[Call]) -> dict[str, int]:
    """Of `calls`, those an RDS event started: how many, how many were ignored, how many raised."""
    started = [c for c in calls if c.resource is not None]
    return {
        "total": len(started),
        "ignored": sum(1 for c in started if c.response.get("status") == "ignored"),
        "raised": sum(1 for c in started if c.raised is not None),
    }


class CallRecorder:
    """Wraps every handler of a runtime so each invocation is recorded (direct, event or schedule)."""

    def __init__(self, runtime: Any) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        for name, handler in list(runtime.handlers.items()):
            runtime.handlers[name] = self._wrap(name, handler)

    def _wrap(self, name: str, handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> Any:
        def recorded(event: dict[str, Any], context: Any) -> dict[str, Any]:
            started = time.time()
            response: dict[str, Any] = {}
            raised: str | None = None
            try:
                response = handler(event, context)
                return response
            except BaseException as exc:
                raised = type(exc).__name__
                raise
            finally:
                self._record(name, event, started, response, raised)

        return recorded

    def _record(
        self, name: str, event: dict[str, Any], started: float, response: dict[str, Any], raised: str | None
    ) -> None:
        detail = event.get("detail") if isinstance(event.get("detail"), dict) else None
        if name == RECONCILE:
            trigger, operation_id = "schedule", None
        elif "detail-type" in event:
            trigger = str(event["detail-type"])
            operation_id = (detail or {}).get("operation_id") or (response or {}).get("operation_id")
        else:
            trigger, operation_id = "direct", event.get("operation_id")
        resource = _rds_source(event) if trigger.startswith("RDS ") else None
        call = Call(name, operation_id, trigger, started, time.time(), dict(response or {}), raised, resource)
        with self._lock:
            self.calls.append(call)

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.calls)


def _rds_source(event: dict[str, Any]) -> str | None:
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    source = str((detail or {}).get("SourceIdentifier") or "")
    return source.removeprefix("rds:") or None


@dataclass
class Reading:
    """One operation's timeline read back in AWS-equivalent seconds."""

    e2e_s: float
    work_s: float
    overhead_s: float
    downtime_s: float | None
    detection_s: dict[str, float]
    e2e_wall_s: float
    work_wall_s: float
    timer_wall_s: float


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def _union(parts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping stretches merged: the writer's and the cluster's deletions run at the same time, and
    minutes of AWS work that overlap are minutes once."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(parts):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _success_at(history: list[Any], step: str) -> float | None:
    """When `step` first recorded a success in the state's history."""
    for entry in history:
        if entry.step == step and entry.outcome == "success":
            return float(entry.finished_at.timestamp())
    return None


def _detector(mine: list[Call], step: str, noticed: float) -> Call | None:
    """The invocation that noticed: under way at that moment and doing the step's work, not a delivery
    that found the step claimed by another and stood aside (deferred, or raised to be retried)."""
    return next(
        (
            c
            for c in mine
            if c.function == step
            and c.started <= noticed <= c.finished + 0.05
            and c.response.get("status") == "success"
        ),
        None,
    )


def _timer_end(
    *,
    operation_id: str,
    step: str,
    done: float,
    detector: Call | None,
    calls: list[Call],
    reconciles: list[Call],
    wakeups: list[tuple[float, dict[str, Any]]] | None,
) -> float:
    """Until when the wait for a work that was `done` ran on a timer, counted time-scaled."""
    if detector is not None and detector.trigger == "direct":
        return detector.started
    if (
        detector is not None
        and detector.trigger == "RecheckDue"
        and not any(
            c.function == step and c.trigger.startswith("RDS ") and done <= c.started <= detector.started
            for c in calls
        )
    ):
        # Woken by a timer: a wake-up schedule firing, or the reconciler's scan noticing an overdue
        # wait. The timer counts time-scaled; the event's way from there to the step at face value.
        # (Not when the resource's RDS event had reached the step by then, and only lost the race for
        # the step's claim to the wake-up: the timer decided nothing.)
        fired = [c.started for c in reconciles if c.started <= detector.started] + [
            at
            for at, detail in wakeups or []
            if detail.get("operation_id") == operation_id
            and detail.get("step") == step
            and at <= detector.started
        ]
        return max(fired) if fired else detector.started
    return done


def read_timeline(
    *,
    operation_id: str,
    began: float,
    ended: float,
    works: list[Any],
    history: list[Any],
    calls: list[Call],
    scale: float,
    wakeups: list[tuple[float, dict[str, Any]]] | None = None,
    swap_target: str | None = None,
) -> Reading:
    """`scale` is wall seconds per AWS second. `works` are the simulator's, `history` the state's.
    `swap_target`: the operation ran the swap strategy on this target, its downtime is the switch's
    (switch_downtime); otherwise from the first deletion call to the users being ready."""
    by_action = {w.action: w for w in works if began <= w.started <= ended and w.finished is not None}
    mine = [c for c in calls if c.operation_id == operation_id]
    reconciles = [
        c for c in calls if c.function == RECONCILE and operation_id in c.response.get("rechecked", [])
    ]

    # The work ends when the simulator's timer is due; its own bookkeeping after that counts at face value.
    # Every work counts, two of one action too (a swap's two renames).
    ours = [w for w in works if began <= w.started <= ended and w.finished is not None]
    scaled: list[tuple[float, float]] = [(w.started, w.due) for w in ours]
    detection: dict[str, float] = {}
    timer_total = 0.0
    for index, (name, action, step) in enumerate(WAITS):
        work = by_action.get(action)
        if work is None:
            continue
        done = float(work.due)  # the resource is there at once (a restore's data was loaded meanwhile)
        following = by_action.get(WAITS[index + 1][1]) if index + 1 < len(WAITS) else None
        if following is not None and WAITS[index + 1][2] == step:
            noticed: float | None = following.started  # the step's next AWS call is when it noticed
        else:
            noticed = _success_at(history, step)
        if noticed is None:
            continue
        detector = _detector(mine, step, noticed)
        timer_end = _timer_end(
            operation_id=operation_id,
            step=step,
            done=done,
            detector=detector,
            calls=calls,
            reconciles=reconciles,
            wakeups=wakeups,
        )
        timer = (done, max(done, min(timer_end, noticed)))
        scaled.append(timer)
        timer_total += timer[1] - timer[0]
        delay = max(0.0, noticed - done)
        detection[name] = round((timer[1] - timer[0]) / scale + (delay - (timer[1] - timer[0])), 1)

    merged = _union(scaled)

    def aws_seconds(window: tuple[float, float]) -> float:
        inside = sum(_overlap(window, part) for part in merged)
        return inside / scale + (window[1] - window[0] - inside)

    work_wall = sum(_overlap((began, ended), part) for part in _union([(w.started, w.due) for w in ours]))
    e2e = aws_seconds((began, ended))
    if swap_target is not None:
        downtime = switch_downtime(ours, swap_target, operation_id, scale)
    else:
        downtime = None
        deletion = by_action.get("DeleteDBInstance") or by_action.get("DeleteDBCluster")
        users_ready = _success_at(history, "setup_db_users")
        if deletion is not None and users_ready is not None:
            downtime = aws_seconds((deletion.started, users_ready))
    return Reading(
        e2e_s=round(e2e, 1),
        work_s=round(work_wall / scale, 1),
        overhead_s=round(e2e - work_wall / scale, 1),
        downtime_s=None if downtime is None else round(downtime, 1),
        detection_s=detection,
        e2e_wall_s=round(ended - began, 2),
        work_wall_s=round(work_wall, 2),
        timer_wall_s=round(timer_total, 2),
    )


def switch_downtime(works: list[Any], target: str, operation_id: str, scale: float) -> float | None:
    """The swap strategy's downtime in AWS seconds: from the call renaming the old target away (the
    simulator's rename work to `<target>-old-<hash>` begins with it: RDS frees the name at once) until the
    rename of the restored cluster into the target's name is due (then it answers there, `available`).

    The time between the two rename calls is the function's own (counted at face value, though the first
    rename's simulated work covers it), the second rename's work time-scaled. None: no such renames."""
    old_id = swap_names(target, operation_id)[1]
    away = next((w for w in works if w.action == RENAME_WORK and w.resource == old_id), None)
    into = next(
        (
            w
            for w in works
            if w.action == RENAME_WORK and w.resource == target and away and w.started >= away.started
        ),
        None,
    )
    if away is None or into is None:
        return None
    return round((into.started - away.started) + (into.due - into.started) / scale, 1)
