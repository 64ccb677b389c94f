"""EventBridge Scheduler's part in the local runtime: firing moto's one-time `at()` schedules when due."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aurora_restore.local.world import ACCOUNT


def due_at(schedule: Any) -> datetime:
    """When a one-time schedule fires: at() has whole seconds, which time-scaled local waits (a second
    stands for minutes) cannot round to; functions.wakeup puts the exact time in the description."""
    description = schedule.description or ""
    if ", due " in description:
        exact = datetime.fromisoformat(description.rsplit(", due ", 1)[1])
        return exact.astimezone(UTC).replace(tzinfo=None) if exact.tzinfo else exact
    return datetime.fromisoformat(schedule.schedule_expression[3:-1])


class SchedulerEmulator:
    """Puts each due one-time schedule's event on its bus and deletes the schedule, as Scheduler does.

    moto keeps the schedules (functions.wakeup creates them through its API) but never fires them.
    """

    def __init__(
        self,
        events: Callable[[], Any],
        region: str,
        errors: list[str],
        only_steps: frozenset[str] | None = None,
    ) -> None:
        self.events = events  # the client that puts the events
        self.region = region
        self.errors = errors
        # None: every due schedule fires; else only the RecheckDue of these steps, the rest are dropped.
        self.only_steps = only_steps
        self.fired = 0
        self.dropped: list[dict[str, Any]] = []  # the details of the schedules dropped unfired
        # (time.time() it fired, the detail it put on the bus): when each wait's timer ran out.
        self.log: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def run(self, stop: threading.Event, interval: float = 0.05) -> None:
        """Fire what is due every `interval` seconds until `stop` is set (a thread's target)."""
        while not stop.wait(interval):
            for schedule in self.take_due():
                if self.fires(schedule):
                    self.fire(schedule)
                else:
                    with self._lock:
                        self.dropped.append(json.loads(schedule.target.get("Input") or "{}"))

    def fires(self, schedule: Any) -> bool:
        """Whether the schedule is one this emulator fires (`only_steps`)."""
        if self.only_steps is None:
            return True
        kind = schedule.target.get("EventBridgeParameters", {}).get("DetailType")
        detail = json.loads(schedule.target.get("Input") or "{}")
        return kind == "RecheckDue" and detail.get("step") in self.only_steps

    def take_due(self) -> list[Any]:
        """Remove and return every one-time schedule now due."""
        from moto.backends import get_backend

        backend = get_backend("scheduler")[ACCOUNT][self.region]
        now = datetime.now(UTC).replace(tzinfo=None)
        due = []
        for group in list(backend.schedule_groups.values()):
            for name, schedule in list(group.schedules.items()):
                if schedule.schedule_expression.startswith("at(") and due_at(schedule) <= now:
                    due.append((group, name, schedule))
        for group, name, _ in due:
            group.schedules.pop(name, None)
        return [schedule for _, _, schedule in due]

    def fire(self, schedule: Any) -> None:
        """Put the schedule's target event on its bus; a failure is noted (the reconciler covers it)."""
        target = schedule.target
        parameters = target.get("EventBridgeParameters", {})
        try:
            self.events().put_events(
                Entries=[
                    {
                        "Source": parameters.get("Source"),
                        "DetailType": parameters.get("DetailType"),
                        "Detail": target.get("Input") or "{}",
                        "EventBusName": target["Arn"],
                    }
                ]
            )
            with self._lock:
                self.fired += 1
                self.log.append((time.time(), json.loads(target.get("Input") or "{}")))
        except Exception as exc:  # noqa: BLE001 - a lost wake-up is what the reconciler is for
            self.errors.append(f"scheduler: {exc}")
