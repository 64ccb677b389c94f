"""`aurora-restore chaos`: operations under each fault profile on the local runtime, checked and tabled.

Each profile runs a batch of restores on distinct target clusters, plus one request on a target that the
batch holds (it must fail with LeaseHeld, naming the holder). Then every expectation is checked: each
operation completed (or failed as expected), each mutating RDS call happened once per operation, no state
item is lost or inconsistent, and no secret value appears anywhere the run wrote.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from aurora_restore.local.runtime import (
    ACCOUNT,
    RUNBOOK_USERS,
    SOURCE_CLUSTER,
    FaultProfile,
    LocalRuntime,
    RuntimeOptions,
    operation_resources,
)
from aurora_restore.local.simulator import Durations
from schemas.common import Step

# The mutating RDS calls, each expected exactly once per completed operation, with their table headings.
MUTATING_KINDS: dict[str, str] = {
    "CopyDBClusterSnapshot": "copy",
    "DeleteDBInstance": "del-inst",
    "DeleteDBCluster": "del-clus",
    "RestoreDBClusterFromSnapshot": "restore",
    "CreateDBInstance": "writer",
    "ModifyDBCluster:MasterUserPassword": "master-pw",
}
CRASH_STEPS = frozenset(
    {
        Step.SNAPSHOT_CHECK.value,
        Step.COPY_SNAPSHOT.value,
        Step.DELETE_RDS.value,
        Step.RESTORE_SNAPSHOT.value,
        Step.CHECK_RESTORE_STATUS.value,
        Step.SETUP_DB_USERS.value,
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
OPERATION_TIMEOUT = 180.0


@dataclass
class ProfileResult:
    profile: str
    operations: int = 0
    completed: int = 0
    failed_as_expected: int = 0
    per_kind: dict[str, list[int]] = field(default_factory=dict)  # kind -> count for each operation
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    faults: int = 0  # how many faults the profile injected (crashes, AWS errors, dropped events, ...)

    @property
    def ok(self) -> bool:
        return not self.problems


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
        )
    )
    results: list[ProfileResult] = []
    secrets_found: list[str] = []
    try:
        runtime.start()
        assert runtime.postgres is not None
        known_secrets = _known_secrets(runtime)
        for index, name in enumerate(names):
            runtime.set_faults(catalogue[name])
            result = _run_profile(runtime, name, index, operations_per_profile)
            results.append(result)
            print(_progress(result), file=out, flush=True)
        runtime.set_faults(FaultProfile())
        table = render_table(results, secrets_found=0)
        shown.write(table)
        secrets_found = scan_for_secrets(runtime, known_secrets, extra_text=[shown.getvalue()])
    finally:
        runtime.stop()
    print(render_table(results, secrets_found=len(secrets_found)), file=out)
    for result in results:
        for problem in result.problems:
            print(f"FAIL [{result.profile}] {problem}", file=out)
    for where in secrets_found:
        print(f"FAIL secret value found in {where}", file=out)
    if runtime.errors:
        print(f"runtime errors (informational): {len(runtime.errors)}", file=out)
    passed = all(result.ok for result in results) and not secrets_found
    print("chaos: PASS" if passed else "chaos: FAIL", file=out)
    return 0 if passed else 1


# -- one profile ---------------------------------------------------------------------------------------------
@dataclass
class Planned:
    operation_id: str
    target: str
    day: date
    expect: str  # completed | LeaseHeld
    holder: str | None = None
    baseline: dict[str, int] = field(default_factory=dict)  # mutating calls on its resources before it ran

    @property
    def resources(self) -> set[str]:
        cluster = self.target
        copy = f"{SOURCE_CLUSTER}-snapshot-{self.day.isoformat()}-copy"
        return {cluster, f"{cluster}-writer"[:63], f"{cluster}-instance-1", copy}


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


def _run_profile(runtime: LocalRuntime, name: str, index: int, count: int) -> ProfileResult:
    started = time.monotonic()
    faults_before = _fault_count(runtime)
    result = ProfileResult(profile=name)
    stamp = time.strftime("%H%M%S")
    slug = name.replace("-", "")[:10]
    planned: list[Planned] = []
    for number in range(count):
        target = f"chaos-{slug}-{number}"
        runtime.add_target_cluster(target, database=f"chaos_{slug}_{number}")
        day = _snapshot_day(runtime, number)
        item = Planned(f"chaos-{slug}-{number}-{stamp}", target, day, "completed")
        # Setting up the target made calls on its resources (its first instance); earlier profiles used the copy.
        item.baseline = _mutating_calls(runtime, item)
        planned.append(item)
    for item in planned:
        runtime.put_restore_requested(
            item.operation_id,
            item.day,
            {"target_cluster_id": item.target, "database_name": runtime.database_for(item.target)},
        )
    # A second request on the first target while its operation runs: it must fail with LeaseHeld.
    first = planned[0]
    conflict = Planned(
        f"chaos-{slug}-conflict-{stamp}", first.target, first.day, "LeaseHeld", first.operation_id
    )
    if _wait_for_lease(runtime, first.target, first.operation_id, timeout=60):
        runtime.put_restore_requested(
            conflict.operation_id,
            conflict.day,
            {"target_cluster_id": conflict.target, "database_name": runtime.database_for(conflict.target)},
        )
        planned.append(conflict)
    else:
        result.problems.append(f"{first.operation_id} never took the lease on {first.target}")
    result.operations = len(planned)
    for item in planned:
        state = runtime.wait_for(item.operation_id, timeout=OPERATION_TIMEOUT, poll=0.25)
        if item.expect == "completed":
            problems = check_completed(runtime, item, state)
            if not problems:
                result.completed += 1
            calls = _mutating_calls(runtime, item)
            for kind in MUTATING_KINDS:
                result.per_kind.setdefault(kind, []).append(calls.get(kind, 0))
        else:
            problems = check_lease_refused(item, state)
            if not problems:
                result.failed_as_expected += 1
        result.problems.extend(problems)
    result.problems.extend(check_store(runtime, [item.operation_id for item in planned], index))
    result.seconds = time.monotonic() - started
    result.faults = _injected(runtime.options.faults, faults_before, _fault_count(runtime))
    if name != "none" and result.faults <= 0:
        result.problems.append("the profile injected no fault")
    return result


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


def _mutating_calls(runtime: LocalRuntime, item: Planned) -> dict[str, int]:
    """Mutating RDS calls on the operation's resources since it was planned, by kind."""
    assert runtime.simulator is not None
    now = runtime.simulator.mutating_calls(item.resources)
    return {kind: count - item.baseline.get(kind, 0) for kind, count in now.items()}


# -- checks ------------------------------------------------------------------------------------------------
def check_completed(runtime: LocalRuntime, item: Planned, state: Any) -> list[str]:
    op = item.operation_id
    if state is None:
        return [f"{op}: state item lost"]
    if state.status != "completed":
        error = f" at {state.failed_step}: {state.error.type}: {state.error.message}" if state.error else ""
        return [f"{op}: {state.status}{error} (expected completed)"]
    return _state_problems(item, state) + _rds_problems(runtime, item, state)


def _state_problems(item: Planned, state: Any) -> list[str]:
    """What a completed operation's state item must not hold, or must: nothing left over, every result."""
    op = item.operation_id
    problems: list[str] = []
    if state.outbox or state.waiting is not None or state.next_step is not None:
        problems.append(f"{op}: completed but inconsistent (outbox, waiting or next_step left)")
    if getattr(state, "claim", None) is not None:
        problems.append(f"{op}: completed with a claim left on {state.claim.step}")
    missing = [step.value for step in Step if step.value not in state.results]
    if missing:
        problems.append(f"{op}: no recorded result for {', '.join(missing)}")
    if operation_resources(state) - item.resources:
        problems.append(f"{op}: touched resources outside {sorted(item.resources)}")
    return problems


def _rds_problems(runtime: LocalRuntime, item: Planned, state: Any) -> list[str]:
    """What a completed operation left in RDS: each mutating call once, its cluster, no copy."""
    op = item.operation_id
    problems: list[str] = []
    calls = _mutating_calls(runtime, item)
    for kind in MUTATING_KINDS:
        if calls.get(kind, 0) != 1:
            problems.append(f"{op}: {kind} made {calls.get(kind, 0)} times (expected once)")
    rds = runtime.client("rds")
    cluster = rds.describe_db_clusters(DBClusterIdentifier=item.target)["DBClusters"][0]
    tags = {tag["Key"]: tag["Value"] for tag in cluster.get("TagList", [])}
    if tags.get("aurora-restore:operation-id") != op or cluster.get("Status") != "available":
        problems.append(f"{op}: {item.target} is not the available cluster this operation restored")
    copy = state.outputs.get("target_snapshot")
    left = {
        s["DBClusterSnapshotIdentifier"] for s in rds.describe_db_cluster_snapshots()["DBClusterSnapshots"]
    }
    if copy in left:
        problems.append(f"{op}: the copy {copy} was not cleaned up")
    return problems


def check_lease_refused(item: Planned, state: Any) -> list[str]:
    op = item.operation_id
    if state is None:
        return [f"{op}: state item lost"]
    error = state.error
    if state.status != "failed" or state.failed_step != Step.SNAPSHOT_CHECK.value or error is None:
        return [
            f"{op}: {state.status} at {state.failed_step} (expected failed at snapshot_check with LeaseHeld)"
        ]
    if error.type != "LeaseHeld" or (item.holder or "") not in error.message:
        return [f"{op}: failed with {error.type}: {error.message} (expected LeaseHeld naming {item.holder})"]
    return []


def check_store(runtime: LocalRuntime, operation_ids: list[str], _index: int) -> list[str]:
    """Every item of the table parses; none of these operations left a lease, a claim or an outbox."""
    table = runtime.client("dynamodb").get_paginator("scan")
    problems: list[str] = []
    ours = set(operation_ids)
    from boto3.dynamodb.types import TypeDeserializer

    from schemas.state import OperationState

    deserialize = TypeDeserializer().deserialize
    for page in table.paginate(TableName=f"aurora-restore-state-{runtime.options.environment}"):
        for raw in page.get("Items", []):
            item = {key: deserialize(value) for key, value in raw.items()}
            kind = item.get("item_kind", "operation")
            if kind == "lease" and item.get("holder") in ours:
                problems.append(
                    f"lease on {item.get('target_cluster_id')} still held by {item.get('holder')}"
                )
            if kind != "operation" or item.get("operation_id") not in ours:
                continue
            try:
                OperationState.model_validate(
                    json.loads(
                        json.dumps({k: v for k, v in item.items() if k != "item_kind"}, default=_plain)
                    )
                )
            except ValueError as exc:
                problems.append(f"state item {item.get('operation_id')} does not parse: {exc}")
    return problems


def _plain(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(type(value).__name__)


# -- secrets -----------------------------------------------------------------------------------------------
def _known_secrets(runtime: LocalRuntime) -> list[str]:
    assert runtime.postgres is not None
    values = [runtime.master_password, runtime.postgres.password.get_secret_value()]
    values += [str(user["password"]) for user in RUNBOOK_USERS if user.get("password")]
    return [value for value in values if value]


def scan_for_secrets(runtime: LocalRuntime, known: list[str], extra_text: Iterable[str] = ()) -> list[str]:
    """Where any known secret value appears: logs, state items, events, S3 objects, notifications, output."""
    found: list[str] = []
    for where, text in _written_texts(runtime, extra_text):
        for value in known:
            if value in text:
                found.append(f"{where} (a value of {len(value)} characters)")
    return found


def _written_texts(runtime: LocalRuntime, extra_text: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Every text the run wrote, with where it is, in the order scan_for_secrets reports them."""
    yield from _numbered("log line", list(runtime.log_lines))
    yield from _state_item_texts(runtime)
    yield from _numbered("event", list(runtime.event_bodies))
    yield from _s3_texts(runtime)
    yield from _numbered("notification", notifications(runtime))
    yield from _numbered("CLI output", extra_text)


def _numbered(label: str, texts: Iterable[str]) -> Iterator[tuple[str, str]]:
    for number, text in enumerate(texts):
        yield f"{label} {number}", text


def _state_item_texts(runtime: LocalRuntime) -> Iterator[tuple[str, str]]:
    """Every item of the state table, as its DynamoDB JSON."""
    dynamodb = runtime.client("dynamodb")
    table = f"aurora-restore-state-{runtime.options.environment}"
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page.get("Items", []):
            yield f"state item {item.get('operation_id', {}).get('S')}", json.dumps(item)


def _s3_texts(runtime: LocalRuntime) -> Iterator[tuple[str, str]]:
    """Every object of the logs bucket, as text."""
    s3 = runtime.client("s3")
    bucket = f"{runtime.options.environment}-aurora-restore-logs"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read().decode("utf-8", "replace")
            yield f"s3://{bucket}/{entry['Key']}", body


def notifications(runtime: LocalRuntime) -> list[str]:
    """Every notification body: what SNS published and what the SQS queue holds (left in the queue)."""
    from moto.sns.models import sns_backends

    env = runtime.options.environment
    region = runtime.options.target_region
    bodies: list[str] = []
    topic = sns_backends[ACCOUNT][region].topics.get(f"arn:aws:sns:{region}:{ACCOUNT}:{env}-notifications")
    if topic is not None:
        bodies += [json.dumps(sent) for sent in topic.sent_notifications]
    bodies += queue_messages(runtime, f"{env}-notifications")
    return bodies


def queue_messages(runtime: LocalRuntime, queue_name: str) -> list[str]:
    """Read every message of a queue without consuming it (moto's backend, in this process)."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[ACCOUNT][runtime.options.target_region].queues.get(queue_name)
    return [message.body for message in queue._messages] if queue is not None else []


# -- the table -----------------------------------------------------------------------------------------------
def _counts(values: list[int]) -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


def render_table(results: list[ProfileResult], secrets_found: int) -> str:
    headings = [
        "profile",
        "ops",
        "completed",
        "failed as expected",
        *MUTATING_KINDS.values(),
        "faults",
        "secrets",
        "time",
        "result",
    ]
    rows = [
        [
            result.profile,
            str(result.operations),
            str(result.completed),
            str(result.failed_as_expected),
            *[_counts(result.per_kind.get(kind, [])) for kind in MUTATING_KINDS],
            str(result.faults),
            str(secrets_found),
            f"{result.seconds:.0f}s",
            "PASS" if result.ok and not secrets_found else "FAIL",
        ]
        for result in results
    ]
    widths = [max(len(row[i]) for row in [headings, *rows]) for i in range(len(headings))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headings, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    note = (
        "mutating RDS calls per completed operation by kind (expected 1 each); faults: injected by the profile;"
        " secrets: secret values found in logs, state, events, S3, notifications and this output"
    )
    return "\n".join([*lines, note]) + "\n"


def _progress(result: ProfileResult) -> str:
    verdict = "ok" if result.ok else f"{len(result.problems)} problem(s)"
    return (
        f"[{result.profile}] {result.completed}/{result.operations - result.failed_as_expected} completed, "
        f"{result.failed_as_expected} failed as expected, {result.seconds:.0f}s: {verdict}"
    )
