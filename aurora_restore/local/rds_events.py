"""The RDS events the simulator publishes: their kinds, and when and how often each goes to the bus."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class RdsEvent:
    """One kind of event RDS publishes: its detail-type, event id, message, categories and source type."""

    detail_type: str
    event_id: str
    message: str
    categories: tuple[str, ...]
    source_type: str

    def detail(self, arn: str, identifier: str) -> dict[str, Any]:
        return {
            "EventCategories": list(self.categories),
            "SourceType": self.source_type,
            "SourceArn": arn,
            "Date": datetime.now(UTC).isoformat(),
            "Message": self.message,
            "SourceIdentifier": f"rds:{identifier}",
            "EventID": self.event_id,
        }


INSTANCE_DELETED = RdsEvent(
    "RDS DB Instance Event", "RDS-EVENT-0003", "DB instance deleted", ("deletion",), "DB_INSTANCE"
)
INSTANCE_CREATED = RdsEvent(
    "RDS DB Instance Event", "RDS-EVENT-0005", "DB instance created", ("creation",), "DB_INSTANCE"
)
CLUSTER_CREATED = RdsEvent(
    "RDS DB Cluster Event", "RDS-EVENT-0170", "DB cluster created", ("creation",), "CLUSTER"
)
CLUSTER_DELETED = RdsEvent(
    "RDS DB Cluster Event", "RDS-EVENT-0171", "DB cluster deleted", ("deletion",), "CLUSTER"
)
# Its message names both identifiers: "Renamed cluster from `name` to `name`." (the Aurora User Guide's DB
# cluster events, https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_Events.Messages.html).
CLUSTER_RENAMED = RdsEvent(
    "RDS DB Cluster Event",
    "RDS-EVENT-0172",
    "Renamed cluster from {old} to {new}",
    ("notification",),
    "CLUSTER",
)


def cluster_renamed(old: str, new: str) -> RdsEvent:
    """RDS-EVENT-0172 for the rename of cluster `old` to `new` (its source identifier is the new name)."""
    return replace(CLUSTER_RENAMED, message=CLUSTER_RENAMED.message.format(old=old, new=new))


@dataclass(frozen=True)
class Announcement:
    """The event a work's end announces, and (for an early one) the status shown until the work is done."""

    backend: Any
    kind: RdsEvent
    arn: str
    identifier: str
    interim: Callable[[], None] | None = None


class _Options(Protocol):
    send_events: bool
    event_filter: Callable[[dict[str, Any]], bool] | None


class EventPublisher:
    """Records every event and puts it on the region's default bus, unless the options drop it.

    `after(seconds, callback)` schedules a sending; `in_transit(action, resource, seconds)` records the time
    a late event spends on its way, as RDS's time (the benchmark reads it time-scaled)."""

    def __init__(
        self,
        options: _Options,
        publish: Callable[[str, dict[str, Any]], None],
        after: Callable[[float, Callable[[], None]], None],
        in_transit: Callable[[str, str, float], object],
    ) -> None:
        self.options = options
        self.publish = publish
        self.after = after
        self.in_transit = in_transit
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def announce(self, announce: Announcement, delays: tuple[float, ...]) -> None:
        """Publish the event (dated now, as RDS records it) once per delay, each that long from now."""
        detail = announce.kind.detail(announce.arn, announce.identifier)
        for number, delay in enumerate(delays):
            if delay <= 0:
                self.send(announce.backend, announce.kind, detail, repeated=number > 0)
                continue
            self.in_transit(f"{announce.kind.event_id} in transit", announce.identifier, delay)

            def later(repeated: bool = number > 0) -> None:
                self.send(announce.backend, announce.kind, detail, repeated=repeated)

            self.after(delay, later)

    def send(self, backend: Any, kind: RdsEvent, detail: dict[str, Any], repeated: bool = False) -> None:
        record = {"detail-type": kind.detail_type, "detail": detail, "region": backend.region_name}
        entry: dict[str, Any] = {**record, "sent": False}
        if repeated:
            entry["repeated"] = True  # the same event again, as RDS and EventBridge may send it
        with self._lock:
            self.events.append(entry)
        if not self.options.send_events:
            return
        if self.options.event_filter is not None and not self.options.event_filter(record):
            return
        entry["sent"] = True
        self.publish(
            backend.region_name,
            {"Source": "aws.rds", "DetailType": kind.detail_type, "Detail": json.dumps(record["detail"])},
        )
