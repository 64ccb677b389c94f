"""The benchmark's terminal table, with each target of the issue marked met or missed."""

from __future__ import annotations

from typing import Any

WAIT_NAMES = ("copy", "delete_instance", "delete_cluster", "restore", "create_instance", "rename")
# At most this many AWS seconds without the target under the swap strategy (issue 21): its two renames
# back to back, each "about two minutes" (docs/performance.md).
SWAP_DOWNTIME_TARGET_S = 120


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}"
    return f"{value:,}{unit}"


def _artifact_probe(probe: dict[str, Any]) -> str:
    if "bytecode" not in probe:
        return f"cold start from the artifact: {probe.get('note', 'not measured')}"
    shipped, sources = probe["bytecode"], probe["sources_only"]
    return (
        f"cold start from the artifact ({probe['platform']}, unpacked read-only): slowest import "
        f"{shipped['max_import_ms']} ms with its bytecode, {sources['max_import_ms']} ms from sources only "
        f"(the bytecode saves {probe['bytecode_saves_ms']} ms)"
    )


def _many_users(verify: dict[str, Any]) -> str:
    many = verify.get("many_users")
    if not many:
        return "db: verify with many users was not measured"
    return (
        f"db: the same tables verified for {many['users']} users in {many['verify_s']} s, their privileges "
        f"read for {many['groups']} group(s) of alike tables (table by table: {many['table_by_table_s']} s, "
        f"extrapolated from {many['table_by_table_timed_tables']} tables); setting them up took {many['setup_s']} s, "
        f"again {many['setup_again_s']} s (revoking and granting everything again: "
        f"{many['revoke_and_grant_all_again_s']} s, extrapolated likewise)"
    )


def _libraries(cold: dict[str, Any]) -> str:
    if "slowest_libraries_ms" not in cold:
        return "cold start: the libraries' share was not measured"
    third_party = ", ".join(cold["slowest_libraries"]["third_party"])
    paired = cold["slowest_libraries"].get("handler_ms", cold["max_import_ms"])
    return (
        f"cold start: of {cold['slowest_module']}'s {paired} ms (timed in alternation with its libraries), "
        f"the libraries it loads take {cold['slowest_libraries_ms']} ms on this machine imported alone "
        f"({third_party}, and the standard library), our own modules the other {cold['slowest_own_ms']} ms"
    )


def _role_costs(setup: dict[str, Any]) -> str:
    costs = setup.get("per_role")
    if not costs:
        return "db: the per-role cost was not measured"
    return (
        f"db: per role with a password, the client's SCRAM verifier {costs['client_verifier_ms']} ms and the "
        f"server's CREATE ROLE {costs['server_role_ms']} ms ({costs['server_secret_check_ms']} ms of it checking "
        f"the secret): CPU work no batching removes, ~{costs['cpu_bound_s']} s for {setup['users']} users on "
        f"{costs['cpus']} CPUs (running side by side {costs['parallel_speedup']}x as fast "
        "as one, measured just before)"
    )


def _fifth(pipeline: dict[str, Any], key: str) -> tuple[bool, str]:
    """Whether the choreography's `key` is at most a fifth of the runbook's, and the figures."""
    chor, poll = pipeline["choreography"][key], pipeline["polling_runbook"][key]
    return chor * 5 <= poll, f"{chor} vs {poll} ({chor / poll:.2f}x)"


def _fifths(results: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    """The one-fifth targets, on the fast simulated RDS and (when measured) on the realistic one."""
    rows: list[tuple[str, bool | None, str]] = []
    for key, suffix in (("pipeline", ""), ("pipeline_realistic", " (realistic RDS)")):
        if key in results:
            rows.append(
                (
                    f"Lambda invocations per op <= 1/5 of the runbook's{suffix}",
                    *_fifth(results[key], "invocations_per_op"),
                )
            )
            rows.append(
                (
                    f"RDS API calls per op <= 1/5 of the runbook's{suffix}",
                    *_fifth(results[key], "rds_api_calls_per_op"),
                )
            )
    return rows


def targets(results: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    chor, poll = results["pipeline"]["choreography"], results["pipeline"]["polling_runbook"]
    scale, cold, db = results["scale"], results["cold_start"], results["db"]
    rows: list[tuple[str, bool | None, str]] = [
        *_fifths(results),
        (
            "time beyond AWS work <= the runbook's",
            chor["overhead_s"] <= poll["overhead_s"],
            f"{chor['overhead_s']} s vs {poll['overhead_s']} s",
        ),
        *_swap_downtime(results),
        (
            f"{scale['operations']} concurrent operations all complete",
            scale["completed"] == scale["operations"],
            f"{scale['completed']}/{scale['operations']}",
        ),
        (
            "slowest handler import < 250 ms",
            cold["max_import_ms"] < 250,
            f"{cold['max_import_ms']} ms ({cold['slowest_module']}; "
            f"libraries alone {cold.get('slowest_libraries_ms', '-')} ms)",
        ),
    ]
    setup, verify = db.get("setup_users_1000_s"), db.get("verify_10000_tables_s")
    estimate = (db.get("setup_users") or {}).get("per_role", {}).get("cpu_bound_s")
    rows.append(
        (
            "1,000 users set up < 3 s",
            None if setup is None else setup < 3,
            _fmt(setup, " s")
            + ("" if setup is None or estimate is None else f" (CPU-bound estimate here ~{estimate} s)")
            + _with_tables(db),
        ),
    )
    rows.append(
        ("10,000 tables verified < 1 s", None if verify is None else verify < 1, _fmt(verify, " s")),
    )
    rows.append(_masking_target(db))
    return rows


def _masking_target(db: dict[str, Any]) -> tuple[str, bool | None, str]:
    """Masking 1,000,000 rows at most twice one md5 UPDATE over the same rows, measured in the same run."""
    masked, baseline = db.get("mask_1m_rows_s"), db.get("mask_baseline_s")
    label = "1,000,000 rows masked <= 2x one md5 UPDATE"
    if masked is None or baseline is None:
        return (label, None, "-")
    return (label, masked <= 2 * baseline, f"{masked} s vs {baseline} s ({masked / baseline:.2f}x)")


def _masking(db: dict[str, Any]) -> str:
    masking = db.get("masking")
    if not masking:
        return "db: masking was not measured"
    tables = ", ".join(f"{name} {rows:,}" for name, rows in masking["tables"].items())
    return (
        f"db: {masking['rows']:,} rows ({tables}) masked in {masking['mask_s']} s by {len(masking['rules'])} "
        f"rules (one UPDATE per table, keyed HMAC), one md5 UPDATE per table over the same rows "
        f"{masking['baseline_s']} s ({masking['ratio']}x; best of {masking['rounds']}); sampling before and "
        f"checking after {masking['sample_and_verify_s']} s"
    )


def _scale_rds_triggered(scale: dict[str, Any]) -> str:
    counts = scale.get("rds_triggered")
    if not counts:
        return ""
    return (
        f"{counts['total']} invocations started by RDS events in all ({counts['ignored']} ignored, "
        f"{counts['raised']} raised); "
    )


def _with_tables(db: dict[str, Any]) -> str:
    """The 1,000 users' figure on a database with tables, beside the target's (measured without)."""
    seconds = db.get("setup_users_1000_on_tables_s")
    tables = ((db.get("setup_users") or {}).get("on_tables") or {}).get("tables")
    if seconds is None or tables is None:
        return ""
    return f"; on a database with {tables} tables {_fmt(seconds, ' s')}"


def _raised(counts: dict[str, int]) -> str:
    if not counts:
        return "no invocation raised"
    kinds = ", ".join(f"{count} {kind}" for kind, count in counts.items())
    return f"{sum(counts.values())} invocations raised ({kinds}): each counts against its function's errors alarm"


def _rds_triggered(contender: dict[str, Any], key: str) -> int | None:
    """Of a contender's invocations, those RDS events started (counted by the resource they name)."""
    counts = contender["invocations"].get("rds_triggered")
    return None if counts is None else int(counts[key])


def _on_tables(setup: dict[str, Any]) -> str:
    tabled = setup.get("on_tables")
    if not tabled:
        return "db: users were not set up on a database with tables"
    return (
        f"db: {tabled['users']} users set up on a database with {tabled['tables']} tables in "
        f"{tabled['schemas']} schemas in {tabled['seconds']} s (every user's privileges granted on every table)"
    )


def _restore_table(title: str, pipeline: dict[str, Any]) -> list[str]:
    """One restore by each contender, side by side (swap: the choreography under the swap strategy)."""
    names = [name for name in ("choreography", "swap", "polling_runbook") if name in pipeline]
    contenders = [pipeline[name] for name in names]
    headings = {"choreography": "choreography", "swap": "swap", "polling_runbook": "polling runbook"}
    lines = [f"{title:<44}" + "".join(f"{headings[name]:>18}" for name in names)]

    def row(label: str, pick: Any) -> None:
        lines.append(f"{label:<44}" + "".join(f"{_fmt(pick(c)):>18}" for c in contenders))

    row("end to end (s)", lambda c: c["e2e_s"])
    row("  simulated AWS work, the floor (s)", lambda c: c["aws_work_s"])
    row("  time beyond AWS work (s)", lambda c: c["overhead_s"])
    for name in WAIT_NAMES:
        row(f"  detection delay: {name} (s)", lambda c, name=name: c["detection_delay_s"].get(name))
    row("target downtime (s)", lambda c: c["downtime_s"])
    lines.append(
        "  (replace: first deletion call -> users ready; swap: rename away -> renamed in, available)"
    )
    row("Lambda invocations per op", lambda c: c["invocations_per_op"])
    row("  of which reconciler ticks", lambda c: c["invocations"]["reconciler_ticks"])
    row(
        "  of which raised (the errors alarm counts)",
        lambda c: sum(c["invocations"].get("raised", {}).values()),
    )
    row("  of which started by RDS events", lambda c: _rds_triggered(c, "total"))
    row("    ignored (not the step's turn, stale)", lambda c: _rds_triggered(c, "ignored"))
    row("    raised", lambda c: _rds_triggered(c, "raised"))
    row("RDS API calls per op", lambda c: c["rds_api_calls_per_op"])
    row("wall seconds (unscaled)", lambda c: c["wall"]["e2e_s"])
    return lines


def _swap_downtime(results: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    """The swap strategy's downtime against its target, beside the replace strategy's in the same run."""
    rows: list[tuple[str, bool | None, str]] = []
    for key, suffix in (("pipeline", ""), ("pipeline_realistic", " (realistic RDS)")):
        pipeline = results.get(key) or {}
        if "swap" not in pipeline:
            continue
        swap, replace = pipeline["swap"]["downtime_s"], pipeline["choreography"]["downtime_s"]
        rows.append(
            (
                f"swap downtime <= {SWAP_DOWNTIME_TARGET_S} s{suffix}",
                None if swap is None else swap <= SWAP_DOWNTIME_TARGET_S,
                f"{_fmt(swap, ' s')} vs replace's {_fmt(replace, ' s')}",
            )
        )
    return rows


def render(results: dict[str, Any]) -> str:
    scale_info = results["time_scale"]
    lines = [
        f"aurora-restore benchmark ({results['mode']}; "
        f"{scale_info['wall_s_per_aws_minute']:g} s wall = 1 AWS minute for durations, the runbook's "
        f"sleep 30, recheck {scale_info['recheck_interval_s']:g} s and the reconciler's rate(1 hour); "
        "times in AWS-equivalent seconds)",
        "",
        *_restore_table("one restore", results["pipeline"]),
    ]
    if "pipeline_realistic" in results:
        lines += ["", *_restore_table("one restore, realistic RDS", results["pipeline_realistic"])]
    scale, cold, db = results["scale"], results["cold_start"], results["db"]
    lines += [
        "",
        f"scale: {scale['completed']}/{scale['operations']} operations completed in {scale['wall_s']} s "
        f"({scale['throughput_ops_per_min']} ops/min; slowest {scale['slowest_op_s']} s, median "
        f"{scale['median_op_s']} s, {scale['simulated_aws_s_per_op']} s simulated AWS work each); "
        f"{scale['invocations_per_op']} invocations and {scale['rds_api_calls_per_op']} RDS calls per op; "
        f"{_scale_rds_triggered(scale)}{_raised(scale.get('raised', {}))}",
        f"cold start: slowest import {cold['max_import_ms']} ms ({cold['slowest_module']}, best of "
        f"{cold['repeats']}); artifact {_fmt(cold['artifact'].get('mb'), ' MB')}"
        + (f" ({cold['artifact']['note']})" if cold["artifact"].get("note") else ""),
        _libraries(cold),
        _artifact_probe(cold.get("artifact_probe") or {}),
    ]
    setup, verify = db["setup_users"], db["verify"]
    extrapolated = f", extrapolated from {setup['naive_users_timed']}" if setup["naive_extrapolated"] else ""
    lines += [
        f"db: {setup['users']} users set up in {setup['batched_s']} s (naive, one statement and commit at a "
        f"time: {setup['naive_s_for_all_users']} s{extrapolated})",
        _on_tables(setup),
        _role_costs(setup),
        f"db: {verify['tables']} tables in {verify['schemas']} schemas verified in {verify['catalog_s']} s "
        f"(naive, one query per table: {verify['naive_s']} s)",
        _many_users(verify),
        _masking(db),
        "",
        "targets:",
    ]
    for label, ok, text in targets(results):
        mark = "n/a " if ok is None else ("met " if ok else "MISS")
        lines.append(f"  [{mark}] {label:<50} {text}")
    return "\n".join(lines)
