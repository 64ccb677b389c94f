"""`aurora-restore demo`: a whole restore on the embedded local runtime, with live progress and a timeline."""

from __future__ import annotations

import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from aurora_restore import operations, render
from aurora_restore.operations import Target
from aurora_restore.strategy_text import strategy_of, switch_downtime_text
from schemas.state import TERMINAL_STATUSES, OperationState

DEFAULT_LOG_PATH = Path(tempfile.gettempdir()) / "aurora-restore-demo" / "functions.log"


def _where(state: OperationState) -> str:
    """The step an unfinished operation is at: the one waiting, the one running, or the one due next."""
    if state.waiting is not None:
        return f"{state.waiting.step} (waiting for {state.waiting.waiting_for})"
    if state.claim is not None:
        return f"{state.claim.step} (running)"
    return str(state.next_step or state.current_step or "the start")


def _say_simulated_rds(options: Any, log_path: Path) -> None:
    """How long each simulated RDS operation takes, and what the realistic profile adds."""
    durations = options.durations
    print(
        f"simulated RDS: copy {durations.copy:g}s, delete {durations.delete_instance:g}s+{durations.delete_cluster:g}s, "
        f"restore {durations.restore:g}s, writer {durations.create_instance:g}s; function logs in {log_path}"
    )
    if options.rds != "fast":
        print(
            f"RDS profile {options.rds}: events late, early or twice; uneven copy progress; the cluster busy "
            "after its master password is set; RDS's limits enforced"
        )


def _say_rds_calls(simulator: Any, rds: str) -> None:
    """The mutating RDS calls made, and under a profile other than fast the calls RDS refused."""
    calls = simulator.mutating_calls()
    print("mutating RDS calls: " + ", ".join(f"{name} x{count}" for name, count in sorted(calls.items())))
    if rds != "fast" and simulator.refused:
        refused = sorted(simulator.refused.items())
        print("refused by RDS: " + ", ".join(f"{name} x{count}" for name, count in refused))


def _draw(state: OperationState, folder: Path) -> None:
    """The operation's SVG timeline beside the function log (`aurora-restore timeline` draws the same)."""
    from aurora_restore import timeline
    from schemas.common import utcnow

    path = folder / f"timeline-{state.operation_id}.svg"
    try:
        path.write_text(timeline.svg(state, utcnow()), encoding="utf-8")
    except OSError as exc:
        print(f"timeline SVG not written: {path}: {exc.strerror or exc}")
        return
    print(f"timeline SVG: {path}")


def _start(target: Target, operation_id: str, today: date, strategy: str | None) -> None:
    """The demo's one put-events, said as it is put."""
    overrides = {"strategy": strategy} if strategy else None
    operations.start(target, operation_id, today, overrides)
    asked = f", overrides: {overrides}" if overrides else ""
    print(
        f"\nput-events RestoreRequested {{operation_id: {operation_id}, target_date: {today}{asked}}} "
        f"-> {target.bus}; live progress:\n"
    )


def run_demo(
    timeout: float = 120.0, log_path: Path | None = None, rds: str = "fast", strategy: str | None = None
) -> int:
    """The demo's restore on a fresh local runtime whose RDS simulator runs the `rds` profile; `strategy`
    (replace or swap) as the request's override, else the local environment's (replace)."""
    from aurora_restore.cli import watch
    from aurora_restore.local.postgres import PostgresUnavailable
    from aurora_restore.local.runtime import TARGET_CLUSTER, LocalRuntime, RuntimeOptions

    log_path = log_path or DEFAULT_LOG_PATH
    try:
        log_path.unlink(missing_ok=True)  # each demo's log holds that demo only
    except OSError:
        pass  # someone else's file: the runtime appends to it
    print("aurora-restore demo: a whole restore on the embedded local runtime")
    print("  (moto's server, the RDS simulator and a real PostgreSQL, all on 127.0.0.1; no AWS account)")
    began = time.monotonic()
    runtime = LocalRuntime(RuntimeOptions(log_path=log_path, rds=rds))
    try:
        runtime.start()  # stops what it started when it fails or is interrupted
    except PostgresUnavailable as exc:
        print(f"cannot start the local runtime: {exc}")
        return 2
    try:
        env = runtime.environment()
        print(
            f"runtime ready in {time.monotonic() - began:.1f}s: moto {env['AWS_ENDPOINT_URL']}, "
            f"Lambda {env.get('AWS_ENDPOINT_URL_LAMBDA', '-')}, PostgreSQL {env['AURORA_RESTORE_PG_DSN']}"
        )
        _say_simulated_rds(runtime.options, log_path)
        target = Target(runtime.options.environment, runtime.options.target_region)
        today = date.today()
        operation_id = f"demo-{today.isoformat()}-{time.strftime('%H%M%S')}"
        _start(target, operation_id, today, strategy)
        state = watch(target, operation_id, timeout=timeout, poll=0.2)
        print()
        if state is None:
            print(f"FAILED: operation {operation_id} never started (see {log_path})")
            return 1
        assert runtime.simulator is not None
        print(render.timeline(state, runtime.simulator.events))
        _say_rds_calls(runtime.simulator, rds)
        _draw(state, log_path.parent)
        total = time.monotonic() - began
        if state.status not in TERMINAL_STATUSES:
            print(
                f"\nFAILED at {_where(state)}: the demo timed out after {timeout:g}s; "
                f"operation {operation_id} is still {state.status}"
            )
            print(f"function logs: {log_path}")
            return 1
        if state.status != "completed":
            error = state.error
            print(
                f"\nFAILED at {state.failed_step or state.current_step}: {error.type + ': ' + error.message if error else state.status}"
            )
            print(f"function logs: {log_path}")
            return 1
        outputs = state.outputs
        print(
            f"\nCOMPLETED: {TARGET_CLUSTER} restored from {outputs.get('snapshot_name')} in "
            f"{(state.updated_at - state.created_at).total_seconds():.1f}s ({total:.1f}s with start-up); "
            f"users {', '.join(outputs.get('users', []))} verified on {outputs.get('verified_tables', 0)} tables; "
            "notification sent; copy deleted; lease released"
        )
        if strategy_of(state) == "swap":
            print(f"strategy swap: the target was out of use {switch_downtime_text(state)}")
        return 0
    finally:
        runtime.stop()
