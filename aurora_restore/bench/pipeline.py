"""One restore by the choreography (replace, and swap), one by the runbook's polling script, on the same
simulated AWS."""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from aurora_restore.bench.timeline import (
    CallRecorder,
    of_operation,
    raised_by_type,
    rds_triggered,
    read_timeline,
)
from aurora_restore.local.faults import operation_resources
from aurora_restore.local.runtime import LocalRuntime, RuntimeOptions
from aurora_restore.local.simulator import Durations
from functions.routes import RECONCILE
from functions.settings import Settings
from schemas.config import RestoreConfig

# AWS-like durations in AWS minutes; the simulator gets them time-scaled. A rename (the swap strategy makes
# two, back to back) takes effect "in about two minutes" (aurora_restore.local.rds_profiles.RdsProfile and
# docs/performance.md cite it).
AWS_MINUTES = Durations(
    copy=20, delete_instance=5, delete_cluster=3, restore=15, create_instance=10, rename=2
)
RUNBOOK_POLL_SECONDS = 30.0  # the runbook's `sleep 30`
RECHECK_SECONDS = RestoreConfig.model_fields["recheck_interval_seconds"].default
EVENT_WAIT_RECHECK_SECONDS = RestoreConfig.model_fields["event_wait_recheck_seconds"].default
# The contenders: the choreography (the replace strategy), the same under the swap strategy, the runbook's
# polling script; the choreography's requests carry these overrides.
CONTENDERS: dict[str, dict[str, Any] | None] = {
    "choreography": None,
    "swap": {"strategy": "swap"},
    "polling_runbook": None,
}
RECONCILE_SECONDS = 3600.0  # the reconciler's scan (functions.routes.RECONCILE_SCHEDULE): rate(1 hour)
# functions.settings: an operation's watchdog fires this long after a stretch began, and a wake-up may be
# this late before the reconciler acts.
STALL_SECONDS = Settings.model_fields["stall_seconds"].default
WAKEUP_GRACE_SECONDS = Settings.model_fields["wakeup_grace_seconds"].default


@dataclass(frozen=True)
class Scale:
    """`wall_per_aws_minute` wall seconds stand for one AWS minute."""

    wall_per_aws_minute: float

    @property
    def factor(self) -> float:  # wall seconds per AWS second
        return self.wall_per_aws_minute / 60.0

    def wall(self, aws_seconds: float) -> float:
        return aws_seconds * self.factor

    def durations(self) -> Durations:
        return AWS_MINUTES.scaled(self.wall_per_aws_minute)


class RunbookFailed(RuntimeError):
    pass


def _jq(response: dict[str, Any], key: str) -> str:
    """`jq -r .key`: a missing key reads "null"."""
    value = response.get(key)
    return "null" if value is None else str(value)


def _checked(step: str, response: dict[str, Any], expected: str) -> dict[str, Any]:
    """The script's check of a response: a success, routed on to `expected` (or anywhere, for "any")."""
    next_step = _jq(response, "next_step")
    if response.get("status") != "success":
        raise RunbookFailed(f"{step}: {response.get('message')}")
    if expected not in ("any", next_step):
        raise RunbookFailed(f"{step}: expected next_step {expected}, got {next_step}")
    return response


class _RunbookScript:
    """The script's invocations and polls: how many polls slept, and when the last invocation began."""

    def __init__(self, runtime: LocalRuntime, poll: float) -> None:
        self.runtime = runtime
        self.poll = poll
        self.sleeps = 0
        self.last_call = time.monotonic()

    def sleep(self) -> None:
        time.sleep(max(0.0, self.poll - (time.monotonic() - self.last_call)))
        self.sleeps += 1

    def invoke(self, step: str, payload: dict[str, Any], expected: str) -> dict[str, Any]:
        self.last_call = time.monotonic()
        response = self.runtime.invoke(f"aurora-restore-{step}-{self.runtime.options.environment}", payload)
        return _checked(step, response, expected)

    def poll_until(self, step: str, payload: dict[str, Any], key: str, done: tuple[str, ...]) -> None:
        """Invoke `step` until its response's `key` reads one of `done`, sleeping a poll between."""
        while True:
            response = self.invoke(step, payload, "any")
            if _jq(response, key) in done:
                return
            self.sleep()


def run_runbook_script(runtime: LocalRuntime, operation_id: str, target_date: str, poll: float) -> int:
    """The runbook's "Automated Execution Script", step for step; returns how many polls slept.

    A poll every 30 AWS seconds, as in AWS: there an invocation takes a fraction of a second of the 30,
    here a local invocation takes a large share of the time-scaled 30 s, so the sleep is shortened by it
    (otherwise the runbook would poll less often here than it does in AWS, flattering the comparison).
    """
    script = _RunbookScript(runtime, poll)
    op = {"operation_id": operation_id}
    response = script.invoke("snapshot-check", {**op, "target_date": target_date}, "copy_snapshot")
    response = script.invoke(
        "copy-snapshot", {**op, "snapshot_name": _jq(response, "snapshot_name")}, "check_copy_status"
    )
    target_snapshot = _jq(response, "target_snapshot")
    copy = {**op, "target_snapshot": target_snapshot}
    script.poll_until("check-copy-status", copy, "copy_status", ("available",))
    script.poll_until("delete-rds", op, "deletion_status", ("completed", ""))
    script.invoke("restore-snapshot", {**op, "target_snapshot": target_snapshot}, "check_restore_status")
    script.poll_until("check-restore-status", op, "cluster_status", ("available",))
    script.invoke("setup-db-users", op, "verify_restore")
    script.invoke("verify-restore", op, "notify_completion")
    script.invoke("notify-completion", op, "null")
    script.invoke("cleanup", op, "null")
    return script.sleeps


def _runtime(scale: Scale, choreography: bool, rds: str = "fast") -> LocalRuntime:
    return LocalRuntime(
        RuntimeOptions(
            durations=scale.durations(),
            rds=rds,  # the RDS simulator's profile, at the pace of the durations
            recheck_interval_seconds=scale.wall(RECHECK_SECONDS),
            event_wait_recheck_seconds=scale.wall(EVENT_WAIT_RECHECK_SECONDS),
            reconcile_interval_seconds=scale.wall(RECONCILE_SECONDS),
            wakeup_grace_seconds=scale.wall(WAKEUP_GRACE_SECONDS),
            stall_seconds=scale.wall(STALL_SECONDS),
            choreography=choreography,
        )
    )


def measure(
    contender: str, scale: Scale, timeout: float, trace: bool = False, rds: str = "fast"
) -> dict[str, Any]:
    """Run one operation with `contender` (one of CONTENDERS) on the `rds` profile's simulated RDS, and read
    it back."""
    choreography = contender != "polling_runbook"
    runtime = _runtime(scale, choreography, rds).start()
    try:
        assert runtime.simulator is not None
        recorder = CallRecorder(runtime)
        operation_id = f"bench-{contender.replace('_', '-')}-{time.strftime('%H%M%S')}"
        target_date = date.today().isoformat()
        rds_before = runtime.moto.app.count("rds")
        sleeps = 0
        began = time.time()
        if choreography:
            runtime.put_restore_requested(operation_id, target_date, CONTENDERS[contender])
            runtime.wait_for(operation_id, timeout=timeout, poll=0.05)
            # notify_completion records the operation completed; cleanup, routed on from it, comes after.
            _await_call(recorder, operation_id, "cleanup", timeout=60.0)
        else:
            sleeps = run_runbook_script(runtime, operation_id, target_date, scale.wall(RUNBOOK_POLL_SECONDS))
        state = runtime.state(operation_id)
        calls = recorder.snapshot()
        finished = [c.finished for c in calls if c.operation_id == operation_id and c.function == "cleanup"]
        ended = max(finished) if finished else time.time()
        rds_calls = runtime.moto.app.count("rds") - rds_before
        status = state.status if state is not None else "missing"
        if status != "completed":
            raise RuntimeError(f"{contender}: operation {operation_id} ended {status}")
        reading = read_timeline(
            operation_id=operation_id,
            began=began,
            ended=ended,
            works=list(runtime.simulator.works),
            history=list(state.history),
            calls=calls,
            scale=scale.factor,
            wakeups=list(runtime.wakeup_log),
            swap_target=_swap_target(state) if contender == "swap" else None,
        )
        step_calls = of_operation(calls, operation_id, operation_resources(state))
        ticks = [c for c in calls if c.function == RECONCILE and began <= c.started <= ended]
        acting = [c for c in ticks if operation_id in c.response.get("rechecked", [])]
        invocations = len(step_calls) + len(ticks)  # one operation at a time: every tick is its own
        result: dict[str, Any] = {
            "status": status,
            "invocations_per_op": invocations,
            "rds_api_calls_per_op": rds_calls,
            "overhead_s": reading.overhead_s,
            "e2e_s": reading.e2e_s,
            "aws_work_s": reading.work_s,
            "downtime_s": reading.downtime_s,
            "detection_delay_s": reading.detection_s,
            "invocations": {
                "steps": len(step_calls),
                "reconciler_ticks": len(ticks),
                "reconciler_ticks_that_rechecked": len(acting),
                "by_function": _by_function(step_calls),
                # Each counts against its function's errors alarm (1 in 5 minutes).
                "raised": raised_by_type(step_calls + ticks),
                # Started by an RDS event: those ignored or raised name no operation, counted by resource.
                "rds_triggered": rds_triggered(step_calls),
            },
            "wall": {
                "e2e_s": reading.e2e_wall_s,
                "aws_work_s": reading.work_wall_s,
                "waiting_for_timer_s": reading.timer_wall_s,
            },
        }
        if not choreography:
            result["polls_slept"] = sleeps
        if trace:
            result["trace"] = [
                f"{c.started - began:7.2f} +{c.finished - c.started:5.2f} {c.function} by {c.trigger}: "
                f"{c.response.get('status')} {c.response.get('message', '')}"[:160]
                for c in sorted(calls, key=lambda c: c.started)
                if c.operation_id == operation_id or c.response.get("rechecked")
            ] + [
                f"{w.started - began:7.2f} ~{w.due - began:7.2f} {w.action}" for w in runtime.simulator.works
            ]
        return result
    finally:
        runtime.stop()


def _swap_target(state: Any) -> str:
    """The target cluster a swap operation switched."""
    return str(state.config["target_cluster_id"])


def _await_call(recorder: CallRecorder, operation_id: str, function: str, timeout: float) -> None:
    """Until `function` has run for the operation (or `timeout`: the reading then ends where it is)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.operation_id == operation_id and c.function == function for c in recorder.snapshot()):
            return
        time.sleep(0.05)


def measure_isolated(
    contender: str, scale: Scale, timeout: float, trace: bool = False, rds: str = "fast"
) -> dict[str, Any]:
    """`measure` in a fresh interpreter: one local runtime per process, as the demo and the CLI run it."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return dict(pool.apply(measure, (contender, scale, timeout, trace, rds)))


def _by_function(calls: list[Any]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for call in calls:
        counted[call.function] = counted.get(call.function, 0) + 1
    return dict(sorted(counted.items()))
