"""`python -m aurora_restore.bench [--quick]` (`make bench`): results on the terminal and as JSON."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aurora_restore.bench import cpus
from aurora_restore.bench.coldstart import measure_cold_start
from aurora_restore.bench.database import measure_database
from aurora_restore.bench.masking import measure_masking
from aurora_restore.bench.pipeline import (
    AWS_MINUTES,
    RECHECK_SECONDS,
    RECONCILE_SECONDS,
    RUNBOOK_POLL_SECONDS,
    Scale,
    measure_isolated,
)
from aurora_restore.bench.report import render
from aurora_restore.bench.scale import measure_scale_isolated

FULL = {
    "wall_per_aws_minute": 0.5,
    "operations": 50,
    "repeats": 5,  # fresh imports per handler module, the best kept: a shared machine only adds noise
    "users": 1000,
    "schemas": 20,
    "naive_users": 200,
    "many_users": 200,
    # the database the users are also set up on: schemas, tables in each
    "users_schemas": 2,
    "users_tables_per_schema": 50,
    "mask_rows": 1_000_000,
    "mask_rounds": 2,
}
QUICK = {
    "wall_per_aws_minute": 0.2,
    "operations": 5,
    "repeats": 1,
    "users": 100,
    "schemas": 2,
    "naive_users": 50,
    "many_users": 20,
    "users_schemas": 2,
    "users_tables_per_schema": 10,
    "mask_rows": 20_000,
    "mask_rounds": 1,
}
TABLES_PER_SCHEMA = 500


def run(quick: bool, output: Path) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    scale = Scale(float(plan["wall_per_aws_minute"]))
    began = time.monotonic()
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "machine": {"python": platform.python_version(), "cpus": cpus(), "platform": platform.platform()},
        "time_scale": {
            "wall_s_per_aws_minute": scale.wall_per_aws_minute,
            "aws_minutes": dict(AWS_MINUTES.__dict__),
            "runbook_poll_s": RUNBOOK_POLL_SECONDS,
            "recheck_interval_s": RECHECK_SECONDS,
            "reconcile_every_s": RECONCILE_SECONDS,
            "note": "durations, the runbook's sleep 30, recheck_interval_seconds and the reconciler's "
            "rate(1 hour) scan and the watchdogs (stall_seconds) are all scaled by the same factor; times are AWS-equivalent seconds",
        },
    }
    # First, while none of our own runs has loaded the machine: the figure is the best of a few fresh
    # interpreters, and a busy machine only adds noise to it.
    _say("cold start: each handler module imported in a fresh interpreter ...")
    results["cold_start"] = measure_cold_start(int(plan["repeats"]))
    timeout = scale.wall(AWS_MINUTES.total * 60) * 4 + 120
    results["pipeline"] = _pipeline(scale, timeout, "fast")
    # The same two on RDS as it behaves on a bad day (aurora_restore.local.rds_profiles.REALISTIC).
    results["pipeline_realistic"] = _pipeline(scale, timeout, "realistic")
    _say(f"scale: {plan['operations']} operations on {plan['operations']} targets at once ...")
    results["scale"] = measure_scale_isolated(int(plan["operations"]), timeout=600.0)
    _say("database: setup_db_users and verify_restore on the local PostgreSQL ...")
    db = measure_database(
        int(plan["users"]),
        int(plan["schemas"]),
        TABLES_PER_SCHEMA,
        int(plan["naive_users"]),
        int(plan["many_users"]),
        (int(plan["users_schemas"]), int(plan["users_tables_per_schema"])),
    )
    db.setdefault("setup_users_1000_s", None)
    db.setdefault("setup_users_1000_on_tables_s", None)
    db.setdefault("verify_10000_tables_s", None)
    _say(f"database: masking {plan['mask_rows']:,} rows against one md5 UPDATE over them ...")
    db.update(_masking(int(plan["mask_rows"]), int(plan["mask_rounds"])))
    if quick:
        db["note"] = (
            "quick run: smaller sizes (see setup_users, verify and masking); the 1,000/10,000/1m figures are null"
        )
    results["db"] = db
    results["bench_wall_s"] = round(time.monotonic() - began, 1)
    output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results


def _masking(rows: int, rounds: int) -> dict[str, Any]:
    """db.mask_1m_rows_s and db.mask_baseline_s (null unless the run masked 1,000,000 rows), db.masking."""
    masking = measure_masking(rows, rounds)
    full = masking["rows"] == 1_000_000
    return {
        "mask_1m_rows_s": masking["mask_s"] if full else None,
        "mask_baseline_s": masking["baseline_s"] if full else None,
        "masking": masking,
    }


def _pipeline(scale: Scale, timeout: float, rds: str) -> dict[str, Any]:
    """One restore by the choreography (replace), one by the choreography under the swap strategy, and one
    by the runbook's polling script, on the `rds` profile."""
    on = "" if rds == "fast" else f", {rds} RDS"
    _say(f"pipeline: the choreography ({scale.wall_per_aws_minute:g}s wall per AWS minute{on}) ...")
    choreography = measure_isolated("choreography", scale, timeout, rds=rds)
    _say(f"pipeline: the choreography under the swap strategy{on} ...")
    swap = measure_isolated("swap", scale, timeout, rds=rds)
    _say(f"pipeline: the runbook's polling script{on} ...")
    polling = measure_isolated("polling_runbook", scale, timeout, rds=rds)
    return {
        "choreography": choreography,
        "swap": swap,
        "polling_runbook": polling,
        "ratios": {
            "invocations": _ratio(choreography["invocations_per_op"], polling["invocations_per_op"]),
            "rds_api_calls": _ratio(choreography["rds_api_calls_per_op"], polling["rds_api_calls_per_op"]),
        },
    }


def _ratio(ours: float, theirs: float) -> float | None:
    return round(ours / theirs, 3) if theirs else None


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aurora_restore.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller run (about a minute)")
    parser.add_argument("--output", type=Path, default=Path("bench-results.json"))
    args = parser.parse_args(argv)
    results = run(args.quick, args.output)
    print(render(results))
    print(f"\nJSON: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
