"""Benchmarks: the choreography against the runbook's polling loop, scale, cold start and the DB steps."""

from __future__ import annotations

import os


def cpus() -> int:
    """The CPUs this process may run on (what CPU-bound work is spread over)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
