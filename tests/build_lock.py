"""One lock on build/ for the tests that write or read what is built there, across pytest-xdist's workers."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "build" / ".tests.lock"


@contextmanager
def build_lock() -> Iterator[None]:
    """Held while `make package` writes build/lambda/ (tests/infra/test_package.py) and while the bench reads
    its artifact and builds its own (tests/e2e/test_bench_smoke.py): `make test` runs tests side by side."""
    LOCK.parent.mkdir(exist_ok=True)
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
