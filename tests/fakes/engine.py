"""The engine's surroundings for unit tests: a bus that records (or refuses), and no S3 step record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from functions.errors import PublishError
from schemas.events import BusEvent


class Bus:
    """Records what was put; refuses while `down`."""

    def __init__(self) -> None:
        self.events: list[BusEvent] = []
        self.down = False

    def publish(self, events: Sequence[BusEvent]) -> None:
        if self.down:
            raise PublishError([{"DetailType": e.detail_type} for e in events])
        self.events.extend(events)


class NoStepLog:
    def __init__(self, *args: Any) -> None:
        pass

    def write(self, *args: Any) -> None:
        pass
