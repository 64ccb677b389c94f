"""The one event publisher: our typed events onto the environment's EventBridge bus."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from botocore.exceptions import ClientError

from functions import aws
from functions.errors import PublishError
from schemas.events import EVENT_SOURCE, BusEvent

MAX_BATCH = 10


class Publisher(Protocol):
    def publish(self, events: Sequence[BusEvent]) -> None: ...


def entry(event: BusEvent, bus_name: str) -> dict[str, Any]:
    return {
        "Source": EVENT_SOURCE,
        "DetailType": event.detail_type,
        "Detail": event.model_dump_json(),
        "EventBusName": bus_name,
        "Resources": [],
    }


class EventPublisher:
    """Puts events in batches of at most 10; raises PublishError naming every entry that failed."""

    def __init__(self, bus_name: str, region: str | None = None) -> None:
        self.bus_name = bus_name
        self.region = region

    def publish(self, events: Sequence[BusEvent]) -> None:
        entries = [entry(event, self.bus_name) for event in events]
        failed: list[dict[str, Any]] = []
        for start in range(0, len(entries), MAX_BATCH):
            batch = entries[start : start + MAX_BATCH]
            try:
                answer = aws.client("events", self.region).put_events(Entries=batch)
            except ClientError as exc:
                raise PublishError(
                    [{"DetailType": item["DetailType"], "Error": str(exc)} for item in batch]
                ) from exc
            if answer.get("FailedEntryCount"):
                for sent, result in zip(batch, answer["Entries"], strict=False):
                    if "ErrorCode" in result:
                        failed.append(
                            {
                                "DetailType": sent["DetailType"],
                                "operation_id": json.loads(sent["Detail"]).get("operation_id"),
                                "ErrorCode": result["ErrorCode"],
                                "ErrorMessage": result.get("ErrorMessage"),
                            }
                        )
        if failed:
            raise PublishError(failed)
