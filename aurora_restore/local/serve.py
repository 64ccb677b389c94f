"""`aurora-restore local serve`: the local runtime in the foreground until SIGINT or SIGTERM, its environment
written as `export` lines for a shell to source."""

from __future__ import annotations

import shlex
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

from aurora_restore.local.runtime import LocalRuntime, RuntimeOptions

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How often the main thread wakes to run a signal's handler. A signal the kernel hands to another thread
# (moto's, the workers') does not wake a main thread blocked on a lock, so an untimed wait can miss it.
WAKE_SECONDS = 0.5
Handler = Callable[[int, FrameType | None], None]


def serve(
    env_file: Path, log_path: Path | None = None, rds: str = "fast", source_account: str | None = None
) -> None:
    """Start the runtime, write its environment to `env_file`, say `ready`, and run until SIGINT or SIGTERM;
    then stop it and say `stopped`. The signal handlers that were in place are back when it returns.

    Raises PostgresUnavailable when PostgreSQL's server cannot be started, and KeyboardInterrupt when a
    signal comes during start-up; either way the runtime has stopped what it had started. `rds` names the
    RDS simulator's profile (fast or realistic); `source_account`, the other account the source cluster is
    seeded into (None: the target's own)."""
    runtime = LocalRuntime(RuntimeOptions(log_path=log_path, rds=rds, source_account=source_account))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def while_starting(signum: int, frame: FrameType | None) -> None:
        # SIGINT or SIGTERM during start-up ends it there (start stops what it started); a second one
        # meanwhile does not cut that short.
        _handle_signals(on_signal)
        raise KeyboardInterrupt

    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    _handle_signals(while_starting)
    try:
        _run(runtime, env_file, stop, on_signal)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(runtime: LocalRuntime, env_file: Path, stop: threading.Event, on_signal: Handler) -> None:
    """Start `runtime`, announce it, wait for `stop`; stop the runtime however this ends."""
    started = False
    try:
        runtime.start()  # stops what it started when it fails or is interrupted
        started = True
        _handle_signals(on_signal)
        environment = runtime.environment()
        write_env_file(env_file, environment)
        profile = "" if runtime.options.rds == "fast" else f" ({runtime.options.rds} RDS)"
        if runtime.options.source_account:
            profile += f" (source in account {runtime.options.source_account})"
        print(
            f"local runtime for {runtime.options.environment}{profile}: moto {runtime.moto.url}, "
            f"PostgreSQL {environment['AURORA_RESTORE_PG_DSN']}; environment in {env_file}",
            flush=True,
        )
        print("ready", flush=True)
        while not stop.wait(WAKE_SECONDS):
            pass
    finally:
        # Not cut short by a further signal; also when one came between start-up and `started` (stopping
        # twice is harmless).
        _handle_signals(on_signal)
        runtime.stop()
        if started:
            print("stopped", flush=True)


def _handle_signals(handler: Handler) -> None:
    for signum in SIGNALS:
        signal.signal(signum, handler)


def write_env_file(env_file: Path, environment: Mapping[str, str]) -> None:
    """One `export NAME=value` line per variable, each value quoted for the shell that sources the file
    (the DSN holds spaces); the file's folder is made when missing."""
    lines = [f"export {name}={shlex.quote(value)}" for name, value in environment.items()]
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text("\n".join(lines) + "\n")
