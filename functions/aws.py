"""boto3 clients, created lazily (after moto or the local runtime is up) with one retry policy."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

# Standard mode: exponential backoff with jitter on throttling and transient errors, 5 attempts. Adaptive
# mode would add client-side rate limiting, which only helps a long-lived client hammering one API; our
# functions make a handful of calls each.
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)

_lock = threading.Lock()
_clients: dict[tuple[str, str | None], Any] = {}


def client(service: str, region: str | None = None) -> Any:
    key = (service, region)
    with _lock:
        found = _clients.get(key)
        if found is None:
            found = boto3.session.Session().client(service, region_name=region, config=RETRY_CONFIG)
            _clients[key] = found
        return found


def reset_clients() -> None:
    """Forget every client (tests and the local runtime call this when endpoints change)."""
    with _lock:
        _clients.clear()
