"""`aurora-restore chaos`: operations under each fault profile on the local runtime, checked and tabled.

Each profile runs a batch of restores on distinct target clusters, plus one request on a target that the
batch holds (it must fail with LeaseHeld, naming the holder). Then every expectation is checked
(chaos_checks): each operation completed (or failed as expected), RDS accepted each mutating call once per
operation (every call counted at moto's server, the repeats RDS refused reported apart), each outcome
notice reached the topic once and the queue once (twice only after a crash between the send and its
record), no state item is lost or inconsistent, and no secret value appears anywhere the run wrote
(chaos_secrets). The table is chaos_table's.

Each profile's batch runs under the replace strategy and, in the same pool at the same time, under the swap
strategy (chaos_swap): as many swap operations, each on a target of its own, and one more swap whose
verification fails, which must leave its target serving and unchanged.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from aurora_restore.chaos_checks import (
    MUTATING_KINDS,
    Planned,
    calls_by_kind,
    check_completed,
    check_lease_refused,
    check_store,
    notice_problems,
    server_calls,
    verdicts,
)
from aurora_restore.chaos_secrets import known_secrets, queue_messages, scan_for_secrets
from aurora_restore.chaos_swap import KEPT, SWAP, TargetBefore, check_kept, kept_note, overrides, prepare_kept
from aurora_restore.chaos_table import ProfileResult, progress, render_table
from aurora_restore.local.faults import PLUMBING_ACCESS_KEY
from aurora_restore.local.runtime import (
    SOURCE_CLUSTER,
    FaultProfile,
    LocalRuntime,
    RuntimeOptions,
)
from aurora_restore.local.simulator import Durations
from aurora_restore.local.world import EMAIL_MASKING
from schemas.common import Step

__all__ = ["EXTRA_PROFILES", "MUTATING_KINDS", "PROFILES", "queue_messages", "run_chaos"]

CRASH_STEPS = frozenset(
    {
        Step.SNAPSHOT_CHECK.value,
        Step.COPY_SNAPSHOT.value,
        Step.DELETE_RDS.value,
        Step.RESTORE_SNAPSHOT.value,
        Step.CHECK_RESTORE_STATUS.value,
        Step.MASK_DATA.value,
        Step.SETUP_DB_USERS.value,
        Step.SWAP_CLUSTERS.value,
        Step.NOTIFY_COMPLETION.value,
        Step.CLEANUP.value,
    }
)
PROFILES: dict[str, FaultProfile] = {
    profile.name: profile
    for profile in (
        FaultProfile(name="duplicate", duplicate_deliveries=True),
        FaultProfile(name="late", max_delivery_delay=1.5),
        FaultProfile(name="drop-rds-events", drop_rds_events=True),
        FaultProfile(name="aws-failures", aws_failure_rate=0.1),
        FaultProfile(name="crash", crash_steps=CRASH_STEPS),
    )
}
EXTRA_PROFILES = {"none": FaultProfile(name="none")}  # a well-behaved AWS, selectable for comparison
# The crash profile's operation dies at nine steps (a swap at ten) and waits out a claim (20 s here) at each.
OPERATION_TIMEOUT = 300.0


def run_chaos(
    operations_per_profile: int = 2, profiles: Iterable[str] | None = None, out: Any = None, rds: str = "fast"
) -> int:
    """Run the batch under each profile on one local runtime whose RDS simulator runs the `rds` profile;
    print the table. 0 only if all holds."""
    import sys

    out = out or sys.stdout
    names = list(profiles or PROFILES)
    catalogue = {**PROFILES, **EXTRA_PROFILES}
    unknown = [name for name in names if name not in catalogue]
    if unknown:
        print(f"unknown profile(s) {', '.join(unknown)}; known: {', '.join(catalogue)}", file=out)
        return 2
    if not 1 <= operations_per_profile <= 20:
        print("--operations must be between 1 and 20", file=out)
        return 2
    # Everything shown is written here first, so the scan for secrets covers the CLI's own output.
    shown = io.StringIO()
    runtime = LocalRuntime(
        RuntimeOptions(
            durations=Durations().scaled(0.5),
            recheck_interval_seconds=0.5,
            reconcile_interval_seconds=0.3,
            log_path=None,
            rds=rds,
            # Every operation masks: the crash profile crashes mask_data after it masked, too.
            config_overrides=dict(EMAIL_MASKING),
        )
    )
    results: list[ProfileResult] = []
    secrets_found: list[str] = []
    try:
        runtime.start()
        assert runtime.postgres is not None
        known = known_secrets(runtime)
        for index, name in enumerate(names):
            runtime.set_faults(catalogue[name])
            for result in _run_profile(runtime, name, index, operations_per_profile):
                results.append(result)
                print(progress(result), file=out, flush=True)
        runtime.set_faults(FaultProfile())
        table = render_table(results, secrets_found=0)
        shown.write(table)
        secrets_found = scan_for_secrets(runtime, known, extra_text=[shown.getvalue()])
    finally:
        runtime.stop()
    print(render_table(results, secrets_found=len(secrets_found)), file=out)
    for result in results:
        for problem in result.problems:
            print(f"FAIL [{result.label}] {problem}", file=out)
        for note in result.notes:
            print(f"note [{result.label}] {note}", file=out)
    for where in secrets_found:
        print(f"FAIL secret value found in {where}", file=out)
    if runtime.errors:
        print(f"runtime errors (informational): {len(runtime.errors)}", file=out)
    passed = all(result.ok for result in results) and not secrets_found
    print("chaos: PASS" if passed else "chaos: FAIL", file=out)
    return 0 if passed else 1


# -- one profile ---------------------------------------------------------------------------------------------
def _fault_count(runtime: LocalRuntime) -> dict[str, int]:
    """Counters of every kind of injected fault, to show each profile really did its damage."""
    assert runtime.simulator is not None
    return {
        "crashes": len(runtime.crashes),
        "aws errors": sum(runtime.moto.app.faults_injected.values()),
        "dropped rds events": sum(1 for event in runtime.simulator.events if not event["sent"]),
        "deliveries": len(runtime.deliveries),
        "received": len(runtime.event_bodies),
    }


def _injected(profile: FaultProfile, before: dict[str, int], after: dict[str, int]) -> int:
    delta = {key: after[key] - before[key] for key in before}
    if profile.crash_steps:
        return delta["crashes"]
    if profile.aws_failure_rate:
        return delta["aws errors"]
    if profile.drop_rds_events:
        return delta["dropped rds events"]
    if profile.duplicate_deliveries:
        return delta["deliveries"] - delta["received"]  # the second copy of each
    if profile.max_delivery_delay:
        return delta["received"]  # each one held back
    return 0


def _run_profile(runtime: LocalRuntime, name: str, index: int, count: int) -> list[ProfileResult]:
    """The profile's batch under replace and under swap, in one pool: a result for each strategy."""
    started = time.monotonic()
    faults_before = _fault_count(runtime)
    result, swapped = ProfileResult(profile=name), ProfileResult(profile=name, strategy=SWAP)
    planned, kept = _start_batch(runtime, name, count)
    conflict = _start_conflict(runtime, planned[0], name)
    if conflict is None:
        result.problems.append(f"{planned[0].operation_id} never took the lease on {planned[0].target}")
    else:
        planned.append(conflict)
    for item in planned:
        into = swapped if item.strategy == SWAP else result
        into.operations += 1
        state = runtime.wait_for(item.operation_id, timeout=OPERATION_TIMEOUT, poll=0.25)
        _check_operation(runtime, item, state, into, kept.get(item.operation_id))
    failed = frozenset(item.operation_id for item in planned if item.expect == KEPT)
    result.problems.extend(check_store(runtime, [item.operation_id for item in planned], failed))
    faults = _injected(runtime.options.faults, faults_before, _fault_count(runtime))
    for each in (result, swapped):
        each.seconds, each.faults = time.monotonic() - started, faults
    if name != "none" and faults <= 0:
        result.problems.append("the profile injected no fault")
    return [result, swapped]


def _start_batch(
    runtime: LocalRuntime, name: str, count: int
) -> tuple[list[Planned], dict[str, TargetBefore]]:
    """`count` operations on targets of their own under replace, as many under swap and one swap that fails
    before the switch, each requested by put-events; the kept targets as they were, by operation."""
    stamp = time.strftime("%H%M%S")
    slug = name.replace("-", "")[:10]
    plans = [("", "replace", "completed", number) for number in range(count)]
    plans += [("s", SWAP, "completed", number) for number in range(count)] + [("k", SWAP, KEPT, 0)]
    planned: list[Planned] = []
    for index, (prefix, strategy, expect, number) in enumerate(plans):
        target = f"chaos-{slug}-{prefix}{number}"
        runtime.add_target_cluster(target, database=f"chaos_{slug}_{prefix}{number}")
        day = _snapshot_day(runtime, index)  # a copy of its own: the operations run side by side
        item = Planned(f"{target}-{stamp}", target, day, expect, strategy=strategy)
        # Earlier profiles restored the same day's snapshot and so called RDS on the same copy: the calls
        # counted are those made since.
        item.baseline = runtime.moto.app.rds_calls.tally(item.resources, exclude_key=PLUMBING_ACCESS_KEY)
        planned.append(item)
    kept = {item.operation_id: prepare_kept(runtime, item) for item in planned if item.expect == KEPT}
    for item in planned:
        runtime.put_restore_requested(
            item.operation_id,
            item.day,
            {
                "target_cluster_id": item.target,
                "database_name": runtime.database_for(item.target),
                **(overrides(item) if item.strategy == SWAP else {}),
            },
        )
    return planned, kept


def _start_conflict(runtime: LocalRuntime, first: Planned, name: str) -> Planned | None:
    """A second request on the first target while its operation runs: it must fail with LeaseHeld."""
    slug = name.replace("-", "")[:10]
    conflict = Planned(
        f"chaos-{slug}-conflict-{time.strftime('%H%M%S')}",
        first.target,
        first.day,
        "LeaseHeld",
        first.operation_id,
    )
    if not _wait_for_lease(runtime, first.target, first.operation_id, timeout=60):
        return None
    runtime.put_restore_requested(
        conflict.operation_id,
        conflict.day,
        {"target_cluster_id": conflict.target, "database_name": runtime.database_for(conflict.target)},
    )
    return conflict


def _check_operation(
    runtime: LocalRuntime, item: Planned, state: Any, result: ProfileResult, before: TargetBefore | None
) -> None:
    """Check one ended operation (or one that never ended) and add what it showed to the profile's result."""
    if item.expect == KEPT:
        problems = check_kept(runtime, item, state, before)
        if not problems:
            result.failed_as_expected += 1
            result.notes.append(kept_note(runtime, item))
    elif item.expect == "completed":
        problems = check_completed(runtime, item, state)
        if not problems:
            result.completed += 1
        calls = server_calls(runtime, item)
        by_kind = calls_by_kind(calls)
        for kind in item.kinds:
            result.per_kind.setdefault(kind, []).append(by_kind.get(kind, 0))
        for verdict, number in verdicts(calls).items():
            result.verdicts[verdict] = result.verdicts.get(verdict, 0) + number
    else:
        problems = check_lease_refused(item, state)
        if not problems:
            result.failed_as_expected += 1
    result.problems.extend(problems)
    if state is not None:
        notice_issues, notes = notice_problems(runtime, item.operation_id)
        count = runtime.notices(item.operation_id)
        result.topic.append(count.topic)
        result.queue.append(count.queue)
        result.problems.extend(notice_issues)
        result.notes.extend(notes)


def _snapshot_day(runtime: LocalRuntime, number: int) -> date:
    """A distinct day per operation (the copy is named after the snapshot); older days get a snapshot made."""
    day = date.today() - timedelta(days=number)
    if number >= 7:
        runtime.client("rds", runtime.options.source_region).create_db_cluster_snapshot(
            DBClusterIdentifier=SOURCE_CLUSTER, DBClusterSnapshotIdentifier=f"{SOURCE_CLUSTER}-snapshot-{day}"
        )
    return day


def _wait_for_lease(runtime: LocalRuntime, target: str, holder: str, timeout: float) -> bool:
    from functions.state import DynamoStateStore

    store = DynamoStateStore(
        f"aurora-restore-state-{runtime.options.environment}", runtime.options.target_region
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if store.lease_holder(target) == holder:
            return True
        time.sleep(0.1)
    return False
