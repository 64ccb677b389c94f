"""What each operation of a chaos run must show: its state, its RDS calls as the server answered them, its
outcome notices, and the state table as a whole.

The pass criterion for the mutating RDS calls, counted at moto's server (aurora_restore.local.rds_calls):
- RDS accepted each kind exactly once per completed operation: each change was made once (under the swap
  strategy, the rename twice: the old target away, the restored cluster in; chaos_swap).
- A call RDS refused as a duplicate (done or under way already) is allowed only where the step that makes
  it was run again after a run that made it died before its record: at most one per kind, and only for a
  step the crash profile crashed in that operation. Anywhere else it is a repeat the engine should not make.
- A call RDS refused for now (the resource busy) changed nothing: allowed, counted, and asked again.
- A call answered by an injected fault never reached RDS: allowed only in a profile that injects faults.
- No other mutating call on the operation's resources.

The outcome notices: exactly one on the topic; on the queue one, or two when the crash profile crashed
notify_completion after its send (the one duplicate a death between the send and its record allows: the
SNS message id is recorded before SQS is asked, the SQS one only with the step's transition).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from aurora_restore.chaos_swap import RENAME_HEADING, RENAMES, SWAP, leftovers, swap_resources
from aurora_restore.local.faults import PLUMBING_ACCESS_KEY, operation_resources
from aurora_restore.local.rds_calls import ACCEPTED, PASSWORD_KIND, RENAME_KIND
from aurora_restore.local.world import SOURCE_CLUSTER
from functions import sequence
from schemas.common import Step
from schemas.config import RestoreConfig

if TYPE_CHECKING:
    from aurora_restore.local.runtime import LocalRuntime

# The mutating RDS calls, each accepted exactly once per completed operation, with their table headings.
MUTATING_KINDS: dict[str, str] = {
    "CopyDBClusterSnapshot": "copy",
    "DeleteDBInstance": "del-inst",
    "DeleteDBCluster": "del-clus",
    "RestoreDBClusterFromSnapshot": "restore",
    "CreateDBInstance": "writer",
    PASSWORD_KIND: "master-pw",
    "AddTagsToResource": "pw-tag",
    "DeleteDBClusterSnapshot": "del-copy",
}
# Under the swap strategy: the same, and the renames of the switch.
SWAP_KINDS: dict[str, str] = {**MUTATING_KINDS, RENAME_KIND: RENAME_HEADING}
# The steps that make each kind of call: a crash of one of them in an operation allows one duplicate.
MAKERS: dict[str, frozenset[str]] = {
    "CopyDBClusterSnapshot": frozenset({"copy_snapshot"}),
    "DeleteDBInstance": frozenset({"delete_rds"}),
    "DeleteDBCluster": frozenset({"delete_rds"}),
    "RestoreDBClusterFromSnapshot": frozenset({"restore_snapshot"}),
    "CreateDBInstance": frozenset({"check_restore_status"}),
    PASSWORD_KIND: frozenset({"check_restore_status"}),
    "AddTagsToResource": frozenset({"check_restore_status"}),
    "DeleteDBClusterSnapshot": frozenset({"check_restore_status", "cleanup"}),
    RENAME_KIND: frozenset({"swap_clusters"}),
}
VERDICTS = ("accepted", "duplicate", "refused", "injected")


@dataclass
class Planned:
    operation_id: str
    target: str
    day: date
    expect: str  # completed | LeaseHeld | unchanged (chaos_swap.KEPT)
    holder: str | None = None
    # mutating calls on its resources before it ran, (kind, verdict) -> count
    baseline: Counter[tuple[str, str]] = field(default_factory=Counter)
    strategy: str = "replace"

    @property
    def resources(self) -> set[str]:
        cluster = self.target
        copy = f"{SOURCE_CLUSTER}-snapshot-{self.day.isoformat()}-copy"
        own = {cluster, f"{cluster}-writer"[:63], f"{cluster}-instance-1", copy}
        return own | swap_resources(cluster, self.operation_id) if self.strategy == SWAP else own

    @property
    def kinds(self) -> dict[str, str]:
        """The mutating calls a completed operation makes, with their table headings."""
        return SWAP_KINDS if self.strategy == SWAP else MUTATING_KINDS

    def expected(self, kind: str) -> int:
        """How many calls of `kind` RDS accepts from a completed operation."""
        return RENAMES.get(kind, 1) if self.strategy == SWAP else 1


def server_calls(runtime: LocalRuntime, item: Planned) -> Counter[tuple[str, str]]:
    """The functions' mutating RDS calls on the operation's resources since it was planned, as the server
    answered them: (kind, verdict) -> count."""
    now = runtime.moto.app.rds_calls.tally(item.resources, exclude_key=PLUMBING_ACCESS_KEY)
    now.subtract(item.baseline)
    return +now


def calls_by_kind(calls: Counter[tuple[str, str]]) -> Counter[str]:
    """Calls that reached the server, by kind, whatever the answer."""
    counted: Counter[str] = Counter()
    for (kind, _), count in calls.items():
        counted[kind] += count
    return counted


def verdicts(calls: Counter[tuple[str, str]]) -> Counter[str]:
    counted: Counter[str] = Counter()
    for (_, verdict), count in calls.items():
        counted[verdict] += count
    return counted


# -- a completed operation -----------------------------------------------------------------------------------
def check_completed(runtime: LocalRuntime, item: Planned, state: Any) -> list[str]:
    op = item.operation_id
    if state is None:
        return [f"{op}: state item lost"]
    if state.status != "completed":
        error = f" at {state.failed_step}: {state.error.type}: {state.error.message}" if state.error else ""
        return [f"{op}: {state.status}{error} (expected completed)"]
    left = leftovers(runtime, item) if item.strategy == SWAP else []
    return (
        _state_problems(item, state) + rds_problems(runtime, item) + _left_in_rds(runtime, item, state) + left
    )


def _state_problems(item: Planned, state: Any) -> list[str]:
    """What a completed operation's state item must not hold, or must: nothing left over, every result."""
    op = item.operation_id
    problems: list[str] = []
    if state.outbox or state.waiting is not None or state.next_step is not None:
        problems.append(f"{op}: completed but inconsistent (outbox, waiting or next_step left)")
    if getattr(state, "claim", None) is not None:
        problems.append(f"{op}: completed with a claim left on {state.claim.step}")
    taken = sequence.steps(RestoreConfig.model_validate(state.config)) if state.config else tuple(Step)
    missing = [step.value for step in taken if step.value not in state.results]
    if missing:
        problems.append(f"{op}: no recorded result for {', '.join(missing)}")
    if operation_resources(state) - item.resources:
        problems.append(f"{op}: touched resources outside {sorted(item.resources)}")
    return problems


def rds_problems(runtime: LocalRuntime, item: Planned) -> list[str]:
    """The operation's mutating RDS calls against the pass criterion (this module's docstring)."""
    op, calls = item.operation_id, server_calls(runtime, item)
    crashed = {step for crashed_op, step in runtime.crashes if crashed_op == op}
    injects = bool(runtime.options.faults.aws_failure_rate)
    problems: list[str] = []
    for kind in item.kinds:
        accepted, duplicates = calls[(kind, ACCEPTED)], calls[(kind, "duplicate")]
        if accepted != item.expected(kind):
            problems.append(f"{op}: {kind} accepted {accepted} times (expected {item.expected(kind)})")
        allowed = 1 if MAKERS[kind] & crashed else 0
        if duplicates > allowed:
            why = f"after the crash of {', '.join(sorted(MAKERS[kind] & crashed))}" if allowed else "no crash"
            problems.append(
                f"{op}: {kind} refused as a duplicate {duplicates} times (allowed {allowed}: {why})"
            )
        if calls[(kind, "injected")] and not injects:
            problems.append(f"{op}: {kind} answered by an injected fault in a profile that injects none")
    unexpected = sorted(kind for kind in calls_by_kind(calls) if kind not in item.kinds)
    if unexpected:
        problems.append(f"{op}: unexpected mutating RDS calls: {', '.join(unexpected)}")
    return problems


def _left_in_rds(runtime: LocalRuntime, item: Planned, state: Any) -> list[str]:
    """What a completed operation left in RDS: its cluster, available and tagged as its own; no copy."""
    op = item.operation_id
    problems: list[str] = []
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


# -- notices, refusals, the table ----------------------------------------------------------------------------
def notice_problems(runtime: LocalRuntime, operation_id: str) -> tuple[list[str], list[str]]:
    """(problems, notes) for the operation's outcome notices: exactly one on the topic; one on the queue,
    or two after notify_completion's crash (a note says so)."""
    count = runtime.notices(operation_id)
    crashed = (operation_id, Step.NOTIFY_COMPLETION.value) in runtime.crashes
    problems: list[str] = []
    notes: list[str] = []
    if count.topic != 1:
        problems.append(
            f"{operation_id}: {count.topic} outcome notice(s) on the topic (expected exactly one)"
        )
    if count.queue == 2 and crashed:
        notes.append(
            f"{operation_id}: the queue got the outcome notice twice: notify_completion died between the"
            " send and its record (allowed)"
        )
    elif count.queue != 1:
        allowed = "one, or two after notify_completion's crash" if crashed else "one"
        problems.append(f"{operation_id}: {count.queue} outcome notice(s) on the queue (expected {allowed})")
    return problems, notes


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


def check_store(
    runtime: LocalRuntime, operation_ids: list[str], failed: frozenset[str] = frozenset()
) -> list[str]:
    """Every item of the table parses; none of these operations left a lease, a claim or an outbox, but those
    `failed` as expected keep their lease (a failed operation may be resumed: the failure notice names it)."""
    table = runtime.client("dynamodb").get_paginator("scan")
    problems: list[str] = []
    ours = set(operation_ids)
    from boto3.dynamodb.types import TypeDeserializer

    deserialize = TypeDeserializer().deserialize
    for page in table.paginate(TableName=f"aurora-restore-state-{runtime.options.environment}"):
        for raw in page.get("Items", []):
            item = {key: deserialize(value) for key, value in raw.items()}
            kind = item.get("item_kind", "operation")
            if kind == "lease" and item.get("holder") in ours - failed:
                problems.append(
                    f"lease on {item.get('target_cluster_id')} still held by {item.get('holder')}"
                )
            if kind == "operation" and item.get("operation_id") in ours:
                problems.extend(_unparsed(item))
    return problems


def _unparsed(item: dict[str, Any]) -> list[str]:
    from schemas.state import OperationState

    try:
        OperationState.model_validate(
            json.loads(json.dumps({k: v for k, v in item.items() if k != "item_kind"}, default=_plain))
        )
    except ValueError as exc:
        return [f"state item {item.get('operation_id')} does not parse: {exc}"]
    return []


def _plain(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(type(value).__name__)
