"""The adapters a step invocation uses (state store, event publisher, RDS), created once per process."""

from __future__ import annotations

from functools import cached_property

from functions.bus import EventPublisher, Publisher
from functions.rds import RdsAdapter
from functions.settings import Settings, get_settings
from functions.state import DynamoStateStore
from functions.store import StateStore


class Services:
    """The adapters, created on first use; tests and the local runtime pass their own."""

    def __init__(
        self, settings: Settings, publisher: Publisher | None = None, store: StateStore | None = None
    ) -> None:
        self.settings = settings
        self._publisher = publisher
        if store is not None:
            self.store = store

    @cached_property
    def store(self) -> StateStore:
        return DynamoStateStore(self.settings.state_table, self.settings.region)

    @property
    def publisher(self) -> Publisher:
        if self._publisher is None:
            self._publisher = EventPublisher(self.settings.event_bus, self.settings.region)
        return self._publisher

    def rds(self, region: str) -> RdsAdapter:
        return RdsAdapter(region)


_current: Services | None = None


def current() -> Services:
    """The process's adapters (one Lambda process serves one function, one invocation at a time)."""
    global _current
    if _current is None:
        _current = Services(get_settings())
    return _current


def reset() -> None:
    """Forget the process's adapters: the AWS endpoint or the settings changed (tests, the local runtime)."""
    global _current
    _current = None
