"""How operations look on a terminal: what each command says, live progress lines, the final timeline."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aurora_restore import strategy_text
from functions.notify import left_in_place, out_of_use
from schemas.common import spoken_duration
from schemas.state import HistoryEntry, OperationState

if TYPE_CHECKING:
    from aurora_restore.operations import Aborted, Target

STATUS_MARK = {"success": "ok", "waiting": "..", "failed": "!!", "ignored": "--"}
NOTE_CHARS = 72  # `list`'s last column: the error or the wait, cut to this


def _offset(moment: datetime, origin: datetime) -> str:
    return f"{(moment - origin).total_seconds():7.1f}s"


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment


def progress_line(entry: HistoryEntry, origin: datetime) -> str:
    mark = STATUS_MARK.get(entry.outcome, "  ")
    return f"[{_offset(entry.finished_at, origin)}] {mark} {entry.step:<22} {entry.message}  (by {entry.trigger})"


def target_of(state: OperationState) -> str | None:
    """The operation's target cluster (None: not known, its configuration gone with `delete_state`)."""
    cluster = state.config.get("target_cluster_id") or state.target_cluster_id
    return str(cluster) if cluster else None


def step_of(state: OperationState) -> str | None:
    """The step an operation is at: the one that failed, the one it waits in or runs next, else the last."""
    return state.failed_step or state.next_step or state.current_step


def note_of(state: OperationState, width: int = NOTE_CHARS) -> str:
    """One short line on why an operation is where it is: its error, or what it waits for."""
    if state.error is not None:
        note = f"{state.error.type}: {state.error.message}"
    elif state.waiting is not None:
        note = f"waiting for {state.waiting.waiting_for}"
    else:
        note = ""
    return note if len(note) <= width else note[: width - 3] + "..."


def operations_table(states: list[OperationState]) -> str:
    """`aurora-restore list`: one row per operation, in the order given, times in UTC."""
    header = ("OPERATION", "STATUS", "STEP", "TARGET", "STARTED (UTC)", "UPDATED (UTC)", "NOTE")
    rows = [header] + [
        (
            state.operation_id,
            state.status,
            step_of(state) or "-",
            target_of(state) or "?",
            f"{_utc(state.created_at):%Y-%m-%d %H:%M:%S}",
            f"{_utc(state.updated_at):%Y-%m-%d %H:%M:%S}",
            note_of(state),
        )
        for state in states
    ]
    grid: list[tuple[str, ...]] = list(rows)
    if any(strategy_text.swaps(state) for state in states):
        # The strategy after the status, once any listed operation swaps (a list of replaces looks as before).
        strategies = ["STRATEGY", *(strategy_text.strategy_of(state) for state in states)]
        grid = [(*row[:2], strategy, *row[2:]) for row, strategy in zip(rows, strategies, strict=True)]
    widths = [max(len(row[column]) for row in grid) for column in range(len(grid[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in grid
    )


def operations_json(states: list[OperationState]) -> str:
    """`aurora-restore list --json`: one object per operation, with its error if any."""
    rows = [
        {
            "operation_id": state.operation_id,
            "status": state.status,
            "strategy": strategy_text.strategy_of(state),
            "step": step_of(state),
            "target_cluster_id": target_of(state),
            "target_date": state.target_date.isoformat(),
            "created_at": state.created_at.isoformat(),
            "updated_at": state.updated_at.isoformat(),
            "error": state.error.model_dump(mode="json") if state.error else None,
        }
        for state in states
    ]
    return json.dumps(rows, indent=2, ensure_ascii=False)


def no_operations(target: Target, status: str | None) -> str:
    kind = f"{status} " if status else ""
    return f"no {kind}operations in {target.table} ({target.region})"


def more_operations(count: int, limit: int | None) -> str:
    """The line under a `list` cut short by --limit."""
    return f"... and {count} older (--limit {limit}; --limit 0 for all)"


def downtime_text(state: OperationState) -> str | None:
    """The target's time out of use, as the outcome notice counts it (None: it was not deleted). Under swap,
    the switch alone (strategy_text.switch_downtime_text), or that there was none."""
    if strategy_text.swaps(state):
        return strategy_text.switch_downtime_text(state)
    span = out_of_use(state)
    if span is None:
        return None
    since, until = span
    began = f"{_utc(since):%Y-%m-%d %H:%M:%S} UTC"
    if until is None:
        return f"since {began} (the deletion): the target is not back in use yet"
    return f"{spoken_duration(until - since)}, from {began} (the deletion) to the users set up on the restored cluster"


def date_text(state: OperationState) -> str:
    """The operation's day; for a `latest` request, said so (the day is the newest snapshot's once
    snapshot_check has found it, the day the request came until then)."""
    if not state.latest_snapshot:
        return state.target_date.isoformat()
    found = state.outputs.get("snapshot_name")
    return f"{state.target_date.isoformat()} (requested: latest{f'; {found}' if found else ''})"


def status_text(state: OperationState) -> str:
    """`aurora-restore status`: where the operation is, what it left in place, and its history."""
    lines = [
        f"operation   {state.operation_id}",
        f"status      {state.status}",
        f"target      {target_of(state) or '?'} in {state.config.get('target_region', '?')}",
        strategy_text.strategy_line(state),
        f"date        {date_text(state)}",
        f"step        {state.current_step or '-'} -> next {state.next_step or '-'}",
    ]
    down = downtime_text(state)
    if down:
        lines.append(f"downtime    {down}")
    if state.waiting is not None:
        lines.append(
            f"waiting     for {state.waiting.waiting_for}; next check {_utc(state.waiting.next_check_at):%H:%M:%S} UTC, "
            f"deadline {_utc(state.waiting.deadline):%Y-%m-%d %H:%M:%S} UTC"
        )
    if state.error is not None:
        lines.append(f"error       {state.failed_step}: {state.error.type}: {state.error.message}")
    lines += masking_lines(state) + _in_place_lines(state) + _config_lines(state)
    if state.outputs.get("cluster_endpoint"):
        lines.append(
            f"endpoint    {state.outputs['cluster_endpoint']}:{state.outputs.get('cluster_port', 5432)}"
        )
    lines.append("history")
    for entry in state.history:
        lines.append("  " + progress_line(entry, state.created_at))
    return "\n".join(lines)


def masking_lines(state: OperationState) -> list[str]:
    """Each masked table's progress (`masking     public.users 40% (400 of 1,000 rows)`), as mask_data
    last recorded it, and the post-restore scripts run."""
    lines: list[str] = []
    for row in state.outputs.get("masking_progress") or []:
        total, done = int(row.get("rows_total") or 0), int(row.get("rows_done") or 0)
        share = "done" if row.get("done") else f"{min(100, 100 * done // total) if total else 0}%"
        lines.append(
            f"{'masking' if not lines else '':<12}{row['table']} {share} ({done:,} of {total:,} rows)"
        )
    scripts = state.outputs.get("post_restore_sql_done") or []
    lines += [f"{'sql' if i == 0 else '':<12}{run['uri']}: {run['status']}" for i, run in enumerate(scripts)]
    return lines


def _in_place_lines(state: OperationState) -> list[str]:
    """A failed or aborted operation's `in place` lines: what the failure notification says it left."""
    if state.status not in ("failed", "aborted"):
        return []
    left = left_in_place(state)
    shown = [f"{name}: {value}" for name, value in left.items() if value is not None]
    lines = ["in place    " + ("\n            ".join(shown) if shown else "nothing")]
    if state.request_refused:
        lines.append("            its request was refused: start a new operation with a valid one")
    elif state.status == "failed":
        lines.append(f"            fix the cause, then `aurora-restore resume {state.operation_id}`")
    return lines


def _config_lines(state: OperationState) -> list[str]:
    """The `config` line: which values came from where, when any did not default."""
    given: dict[str, list[str]] = {}
    for name, source in state.config_sources.items():
        if source != "default":
            given.setdefault(source, []).append(name)
    if not given:
        return []
    return [
        "config      "
        + "; ".join(f"from {source}: {', '.join(sorted(names))}" for source, names in sorted(given.items()))
        + "; the rest defaults"
    ]


def status_json(state: OperationState) -> str:
    """`aurora-restore status --json`: the state item (a failed or aborted one with what it left in place)."""
    document = state.model_dump(mode="json", exclude={"outbox"})
    if state.status in ("failed", "aborted"):
        document["left_in_place"] = left_in_place(state)
    document["strategy"] = strategy_text.strategy_of(state)
    document["out_of_use"] = strategy_text.out_of_use_json(state)
    return json.dumps(document, indent=2, ensure_ascii=False)


def timeline(state: OperationState, rds_events: list[dict[str, Any]] | None = None) -> str:
    """Per step: when it started and ended, how long it waited, and what advanced it."""
    origin = state.created_at
    rows: list[tuple[str, str, str, str, str]] = []
    by_step: dict[str, list[HistoryEntry]] = {}
    for entry in state.history:
        by_step.setdefault(entry.step, []).append(entry)
    for step, entries in by_step.items():
        first, last = entries[0], entries[-1]
        waits = sum(1 for entry in entries if entry.outcome == "waiting")
        triggers = Counter(entry.trigger for entry in entries)
        rows.append(
            (
                step,
                _offset(first.started_at, origin).strip(),
                f"{(last.finished_at - first.started_at).total_seconds():.1f}s",
                f"{waits} check(s)" if waits else "-",
                ", ".join(f"{name} x{count}" if count > 1 else name for name, count in triggers.items()),
            )
        )
    header = ("step", "start", "took", "waits", "advanced by")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    out = [line(header), "  ".join("-" * width for width in widths)]
    out += [line(row) for row in rows]
    if rds_events:
        sent = [event for event in rds_events if event.get("sent")]
        kinds = Counter(event["detail"]["EventID"] for event in sent)
        out.append("")
        out.append(
            "RDS events on the default bus: "
            + (", ".join(f"{k} x{v}" for k, v in sorted(kinds.items())) or "none")
        )
    return "\n".join(out)


# -- what the commands say ---------------------------------------------------------------------------------
def started(target: Target, operation_id: str, target_date: date | str) -> str:
    return (
        f"started {operation_id}: RestoreRequested for {target_date} on {target.bus} ({target.region})\n"
        f"watch it with: aurora-restore watch {operation_id}"
    )


def resumed(operation_id: str, step: str) -> str:
    return f"resumed {operation_id} at {step}; watch it with: aurora-restore watch {operation_id}"


def waiting_to_appear(operation_id: str) -> str:
    return f"waiting for {operation_id} to appear ..."


def _again(operation_id: str) -> str:
    return f"`aurora-restore watch {operation_id}` to follow it again"


def watch_stopped(operation_id: str) -> str:
    """Ctrl-C during `watch`: the operation goes on without the watch."""
    return f"\nstopped watching {operation_id}; the operation carries on: {_again(operation_id)}"


def never_appeared(
    target: Target, operation_id: str, timeout: float | None, appear_timeout: float | None
) -> str:
    waited = min(t for t in (timeout, appear_timeout, float("inf")) if t is not None)
    return (
        f"operation {operation_id} did not appear in {target.table} ({target.region}) within {waited:g} s: "
        "check the operation id, --env and --region (`aurora-restore start` printed the id)"
    )


def still_going(state: OperationState, timeout: float) -> str:
    """`watch`'s --timeout ran out before the operation ended."""
    return (
        f"gave up watching after {timeout:g} s; {state.operation_id} is still {state.status}: "
        f"{_again(state.operation_id)}"
    )


def watch_ended(state: OperationState) -> str:
    """The last words of `watch`: how the operation ended, and its error if any; its strategy, and the
    target's time out of use (under swap, the switch) when it has one to say."""
    said = f"operation {state.operation_id} is {state.status}"
    if state.error:
        said += f"\n  {state.failed_step}: {state.error.type}: {state.error.message}"
    said += f"\n  strategy {strategy_text.strategy_of(state)}"
    down = downtime_text(state)
    return said + (f"\n  downtime {down}" if down else "")


def step_response(body: Any) -> str:
    """`aurora-restore invoke`: the function's response."""
    return json.dumps(body, indent=2)


def abort_outcome(aborted: Aborted) -> str:
    """`abort`'s first line: whether the operation had a lease to release."""
    state = aborted.state
    cluster = state.config.get("target_cluster_id")
    if aborted.lease_released:
        said = f"lease on {aborted.lease_released} released, the cluster is left as it is"
    elif cluster:
        said = f"it held no lease on {cluster} (nothing to release), the cluster is left as it is"
    else:
        said = "it had no target cluster yet (no lease to release)"
    return f"aborted {state.operation_id}: {said}"


def abort_notice(aborted: Aborted) -> str:
    """Whether the subscribers were told of the abort; when they were not, a warning (for stderr)."""
    if aborted.notified:
        return f"subscribers told: the abort was sent to the notification topic and queue (SNS {aborted.notified})"
    return f"warning: subscribers were not told of the abort: {aborted.notice_error}"


def left_after_abort(aborted: Aborted, region: str) -> list[str]:
    """What an abort left for the operator to see to: a target partly deleted, a restored cluster that
    keeps the source's master password, the snapshot copy. `region`: the target's, when the state names none."""
    state = aborted.state
    region = state.config.get("target_region", region)
    cluster = state.config.get("target_cluster_id")
    lines = []
    if state.outputs.get("deletion_started"):
        lines.append(
            f"the deletion of {cluster} had started: what stands under its name may be partly deleted or"
            " half restored; a new `start` deletes it and restores anew"
        )
    if "restore_snapshot" in state.results and not state.outputs.get("master_password_set"):
        # check_restore_status sets the target's own master password once the cluster is available.
        lines.append(
            f"the restored {cluster} keeps the source cluster's master password (it was not reset yet): reset it"
            f" before anyone connects: aws rds modify-db-cluster --db-cluster-identifier {cluster}"
            f" --master-user-password '<new password>' --apply-immediately --region {region}"
        )
    if aborted.copy_left and aborted.copy_still_used:
        lines.append(
            f"the snapshot copy {aborted.copy_left} is left to the {aborted.copy_still_used} other operation(s)"
            " using it: the last one's cleanup deletes it"
        )
    elif aborted.copy_left:
        lines.append(
            f"the snapshot copy {aborted.copy_left} is left in {region};"
            " delete it when no longer wanted: aws rds delete-db-cluster-snapshot"
            f" --db-cluster-snapshot-identifier {aborted.copy_left} --region {region}"
        )
    return lines


def configuration_text(document: dict[str, Any]) -> str:
    """`aurora-restore config show`: each value and where it came from, the database users, the warnings."""
    width = max(len(name) for name in document["config"])
    lines = [f"configuration of {document['environment']} ({document['parameters']['config']})"]
    for name, item in document["config"].items():
        lines.append(f"  {name:<{width}}  {json.dumps(item['value']):<60}  [{item['source']}]")
    lines.append(f"db users ({document['parameters']['db_users']})")
    for user in document["db_users"]:
        lines.append(
            f"  {user['username']:<{width}}  {', '.join(user['privileges']):<60}  password: {user['password']}"
        )
    lines += [f"warning: {warning}" for warning in document["warnings"]]
    return "\n".join(lines)


# -- plan: every check, and what a refresh would do --------------------------------------------------------
CHECK_MARK = {"passed": "ok", "failed": "!!", "skipped": "--", "unknown": "??"}


def plan_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, default=str)


def _pairs(values: dict[str, Any]) -> str:
    said = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in values.items()}
    return ", ".join(f"{k}={v}" for k, v in said.items() if v is not None)


def _settings_lines(settings: dict[str, Any]) -> list[str]:
    if not settings:
        return []
    flat = {k: v for k, v in settings.items() if not isinstance(v, dict)}
    lines = ["  settings  " + _pairs(flat)]
    lines += [
        f"            {part}: {_pairs(settings[part])}"
        for part in ("cluster", "writer", "tags")
        if settings.get(part)
    ]
    return lines


def plan_text(report: dict[str, Any]) -> str:
    """`plan`'s report: the verdict, the checks, then what a refresh started now would do."""
    lines = [
        f"a refresh for {report['target_date']} would start"
        if report["would_start"]
        else f"a refresh for {report['target_date']} would NOT start:",
        *(f"  - {reason}" for reason in report["reasons"]),
        "checks:",
        *(_check_line(check) for check in report["checks"]),
    ]
    lines += [f"warning: {warning}" for warning in report["warnings"]]
    return "\n".join(lines + _plan_actions(report))


def _check_line(check: dict[str, str]) -> str:
    said = f": {check['message']}" if check["message"] else ""
    return f"  {CHECK_MARK.get(check['outcome'], '  ')} {check['name']}{said}"


def _plan_actions(report: dict[str, Any]) -> list[str]:
    snapshot, copy, target = report["snapshot"], report["copy"], report["target"]
    lines: list[str] = ["what it would do (nothing was changed):"]
    if report.get("strategy") == "swap":
        lines.append("  strategy  swap: the old target keeps serving until the switch (one rename)")
    elif report.get("strategy"):
        lines.append(f"  strategy  {report['strategy']}: the target is deleted, then restored under its name")
    if snapshot:
        size = f", {snapshot['size_gb']} GB" if snapshot.get("size_gb") is not None else ""
        lines.append(f"  snapshot  {snapshot['name']} (created {snapshot['created']}{size})")
    if copy:
        key = f" under KMS key {copy['kms_key']}" if copy["kms_key"] else ""
        lines.append(f"  copy      {copy['name']} in {copy['region']}{key}")
    if target:
        now = f" ({target['status']}, instances: {', '.join(target['instances']) or 'none'})"
        lines.append(f"  target    {target['cluster']} in {target['region']}: {target['action']}")
        lines.append(f"            now{now if target['exists'] else ': none'}; writer {target['writer']}")
        if target["final_snapshot"]:
            lines.append(f"            final snapshot {target['final_snapshot']} before the deletion")
    lines += _settings_lines(report["settings_carried"])
    for user in report["users"]:
        lines.append(f"  user      {user['username']} ({', '.join(user['privileges'])}; {user['password']})")
    if target:
        lines.append(f"  masking   {len(report['masking_rules'])} rule(s)")
    if report["expected_downtime_s"] is not None:
        about = f"  downtime  about {spoken_duration(timedelta(seconds=report['expected_downtime_s']))}"
        lines.append(
            f"{about} (an estimate: the switch, one rename as docs/performance.md's model times it, and the"
            " event or re-check that ends it; the old target serves until then)"
            if report.get("strategy") == "swap"
            else f"{about} (an estimate: delete, restore and writer as docs/performance.md's model times them)"
        )
    return lines
