"""Many operations at once on the local runtime: each on its own target cluster, all started together."""

from __future__ import annotations

import multiprocessing
import time
from datetime import date
from typing import Any

from aurora_restore.bench.timeline import CallRecorder, of_operation, raised_by_type, rds_triggered
from aurora_restore.local.runtime import LocalRuntime, RuntimeOptions
from aurora_restore.local.simulator import Durations
from functions.routes import RECONCILE

# Short, so the run measures the system's throughput rather than the simulated AWS.
SCALE_DURATIONS = Durations(
    copy=2.0, delete_instance=1.0, delete_cluster=1.0, restore=2.0, create_instance=1.5
)
# The nets, at the pipeline's time scale (0.5 s wall per AWS minute): the hourly scan every 30 s, not
# every second. At one a second, 3,600 times AWS's rate, the scans and the re-drives they started took
# more of the two CPUs than the 50 operations' steps (273 s of invocations in 200 s), and 20 of the 50
# did not finish. The watchdog waits 60 s: the queues of 50 operations on two CPUs hold a trigger for tens
# of seconds, which is no lost trigger (re-driving it is harmless, and only adds to the queue).
SCALE_RECONCILE_SECONDS = 30.0
SCALE_STALL_SECONDS = 60.0


def measure_scale(operations: int, timeout: float) -> dict[str, Any]:
    runtime = LocalRuntime(
        RuntimeOptions(
            durations=SCALE_DURATIONS,
            recheck_interval_seconds=1.0,
            reconcile_interval_seconds=SCALE_RECONCILE_SECONDS,
            stall_seconds=SCALE_STALL_SECONDS,
        )
    ).start()
    try:
        targets = [f"bench-target-{index:02d}" for index in range(operations)]
        for index, target in enumerate(targets):
            runtime.add_target_cluster(target, database=f"bench_{index:02d}")
        recorder = CallRecorder(runtime)
        rds_before = runtime.moto.app.count("rds")
        stamp = time.strftime("%H%M%S")
        ids = [f"bench-scale-{stamp}-{index:02d}" for index in range(operations)]
        began = time.time()
        for index, (operation_id, target) in enumerate(zip(ids, targets, strict=True)):
            # All restore the same day's snapshot and so share its copy: the last to finish deletes it.
            overrides = {"target_cluster_id": target, "database_name": f"bench_{index:02d}"}
            runtime.put_restore_requested(operation_id, date.today(), overrides)
        deadline = began + timeout
        finished: dict[str, tuple[str, float]] = {}
        pending = set(ids)
        while pending and time.time() < deadline:
            # The handlers' own answers say when an operation ends: cheaper than reading 50 states a second.
            for call in recorder.snapshot():
                if call.operation_id not in pending:
                    continue
                if call.function == "cleanup" and call.response.get("status") == "success":
                    finished[call.operation_id] = ("completed", call.finished)
                    pending.discard(call.operation_id)
                elif call.trigger == "StepFailed" and call.function == "notify_completion":
                    finished[call.operation_id] = ("failed", call.finished)
                    pending.discard(call.operation_id)
            time.sleep(0.5)
        ended = time.time()
        calls = recorder.snapshot()
        completed = [op for op, (status, _) in finished.items() if status == "completed"]
        durations = sorted(at - began for _, at in finished.values())
        step_calls = [
            call
            for operation_id, target in zip(ids, targets, strict=True)
            for call in of_operation(calls, operation_id, _resources(target))
        ]
        ticks = [c for c in calls if c.function == RECONCILE]
        return {
            "operations": operations,
            "completed": len(completed),
            "failed": sorted(op for op, (status, _) in finished.items() if status != "completed"),
            "unfinished": operations - len(finished),
            "wall_s": round(ended - began, 1),
            "throughput_ops_per_min": round(len(completed) / max(ended - began, 1e-9) * 60, 1),
            "slowest_op_s": round(durations[-1], 1) if durations else None,
            "median_op_s": round(durations[len(durations) // 2], 1) if durations else None,
            "invocations_per_op": round((len(step_calls) + len(ticks)) / operations, 1),
            "reconciler_ticks_per_op": round(len(ticks) / operations, 2),
            "raised": raised_by_type(step_calls + ticks),
            "rds_triggered": rds_triggered(step_calls),
            "rds_api_calls_per_op": round((runtime.moto.app.count("rds") - rds_before) / operations, 1),
            "simulated_aws_s_per_op": round(SCALE_DURATIONS.total, 1),
            "errors": runtime.errors[:5],
        }
    finally:
        runtime.stop()


def _resources(target: str) -> set[str]:
    """The RDS resources an operation on `target` changes, whose events start its steps."""
    from functions.steps.cluster import writer_id

    return {target, writer_id(target), f"{target}-instance-1"}


def measure_scale_isolated(operations: int, timeout: float) -> dict[str, Any]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return dict(pool.apply(measure_scale, (operations, timeout)))
