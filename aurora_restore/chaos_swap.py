"""The chaos run under the swap strategy: its RDS calls, and a target a failure before the switch must keep.

Every fault profile also runs its batch under `strategy: swap`, in the same pool of operations as the
replace batch (chaos.py). A completed swap makes the replace batch's calls on its own names (the restore
as `<target>-new-<hash>`, the deletions of the old target renamed `<target>-old-<hash>`) and two renames
(ModifyDBCluster NewDBClusterIdentifier: the old target away, the restored cluster in), each accepted
exactly as often. One more swap per profile is asked to verify a table the restore does not have: it must
fail at verify_restore, before the switch, and leave the target as it was: the same cluster (its ARN)
under the target's name, `available`, not tagged with the operation, no rename of it accepted, and its
database still answering with what it held before (a marker row written before the request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aurora_restore.local.faults import PLUMBING_ACCESS_KEY
from aurora_restore.local.rds_calls import ACCEPTED, RENAME_KIND
from functions.identifiers import swap_names
from schemas.common import Step

if TYPE_CHECKING:
    from aurora_restore.chaos_checks import Planned
    from aurora_restore.local.runtime import LocalRuntime

SWAP = "swap"
# A table the seed does not have: verify_restore fails on it, before swap_clusters.
MISSING_TABLE = "public.chaos_not_restored"
KEPT = "unchanged"  # a Planned operation's expectation: failed before the switch, the target as it was
RENAMES = {RENAME_KIND: 2}  # a completed swap's accepted renames: the old target away, the restored one in
RENAME_HEADING = "rename"


@dataclass(frozen=True)
class TargetBefore:
    """The kept target as it was before its operation: its cluster's ARN and its marker row's value."""

    arn: str
    marker: str


def swap_resources(target: str, operation_id: str) -> set[str]:
    """The names a swap operation's calls name besides the target's: the restored cluster, its writer and
    the old target's name once renamed away."""
    from functions.identifiers import writer_id

    new_id, old_id = swap_names(target, operation_id)
    return {new_id, writer_id(new_id), old_id}


def overrides(item: Planned) -> dict[str, Any]:
    """What a swap request adds to the batch's overrides (a kept one: a table verification cannot find)."""
    added: dict[str, Any] = {"strategy": SWAP}
    if item.expect == KEPT:
        added["expected_tables"] = [MISSING_TABLE]
    return added


def prepare_kept(runtime: LocalRuntime, item: Planned) -> TargetBefore:
    """The kept target's database loaded (as an account has it before any refresh) with a marker row; its
    cluster's ARN and the marker noted."""
    assert runtime.simulator is not None and runtime.simulator.stand_in is not None
    assert runtime.postgres is not None
    runtime.simulator.stand_in.load(item.target)
    marker = f"before {item.operation_id}"
    conn = runtime.postgres.connect(runtime.database_for(item.target))
    try:
        with conn.cursor() as cursor:
            # The marker the database must still answer with after the failed swap.
            cursor.execute("CREATE TABLE chaos_before_refresh (value text)")
            cursor.execute("INSERT INTO chaos_before_refresh VALUES (%s)", (marker,))
    finally:
        conn.close()
    return TargetBefore(_cluster(runtime, item.target)["DBClusterArn"], marker)


def check_kept(runtime: LocalRuntime, item: Planned, state: Any, before: TargetBefore | None) -> list[str]:
    """A swap that failed before the switch: failed at verify_restore, the target as it was."""
    op = item.operation_id
    if state is None:
        return [f"{op}: state item lost"]
    if state.status != "failed" or state.failed_step != Step.VERIFY_RESTORE.value:
        return [f"{op}: {state.status} at {state.failed_step} (expected failed at verify_restore)"]
    if before is None:
        return [f"{op}: the target's state before the request was not recorded"]
    problems: list[str] = []
    cluster = _cluster(runtime, item.target)
    tags = {tag["Key"]: tag["Value"] for tag in cluster.get("TagList", [])}
    if cluster.get("DBClusterArn") != before.arn or tags.get("aurora-restore:operation-id") == op:
        problems.append(f"{op}: {item.target} is no longer the cluster it was before the operation")
    if cluster.get("Status") != "available":
        problems.append(f"{op}: {item.target} is {cluster.get('Status')}, not available")
    renamed = runtime.moto.app.rds_calls.tally({item.target}, exclude_key=PLUMBING_ACCESS_KEY)
    if renamed[(RENAME_KIND, ACCEPTED)]:
        problems.append(f"{op}: {item.target} was renamed although the operation failed before the switch")
    if _marker(runtime, item.target) != before.marker:
        problems.append(f"{op}: {item.target}'s database no longer answers with its content from before")
    return problems


def kept_note(runtime: LocalRuntime, item: Planned) -> str:
    """What the failed swap left beside the target (the failure notice names it under left_in_place)."""
    new_id = swap_names(item.target, item.operation_id)[0]
    left = any(c["DBClusterIdentifier"] == new_id for c in _clusters(runtime))
    where = "left in place beside it" if left else "gone"
    return f"{item.operation_id}: failed before the switch, {item.target} kept; the restored {new_id} {where}"


def leftovers(runtime: LocalRuntime, item: Planned) -> list[str]:
    """A completed swap leaves neither the restored cluster's temporary name nor the old target's; under the
    crash profile, its swap_clusters died once after renaming (and the run again finished the switch)."""
    names = set(swap_names(item.target, item.operation_id))
    left = sorted(c["DBClusterIdentifier"] for c in _clusters(runtime) if c["DBClusterIdentifier"] in names)
    problems = [f"{item.operation_id}: completed but {', '.join(left)} left in RDS"] if left else []
    switch = Step.SWAP_CLUSTERS.value
    if switch in runtime.options.faults.crash_steps and (item.operation_id, switch) not in runtime.crashes:
        problems.append(f"{item.operation_id}: the crash profile never crashed {switch}")
    return problems


def _cluster(runtime: LocalRuntime, cluster_id: str) -> dict[str, Any]:
    clusters = runtime.client("rds").describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"]
    return dict(clusters[0])


def _clusters(runtime: LocalRuntime) -> list[dict[str, Any]]:
    return list(runtime.client("rds").describe_db_clusters()["DBClusters"])


def _marker(runtime: LocalRuntime, cluster_id: str) -> str | None:
    """The marker row in the database under the cluster's configured name (None: it is not there)."""
    import psycopg2

    assert runtime.postgres is not None
    try:
        conn = runtime.postgres.connect(runtime.database_for(cluster_id))
    except psycopg2.Error:
        return None
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT value FROM chaos_before_refresh")
            row = cursor.fetchone()
    except psycopg2.Error:
        return None
    finally:
        conn.close()
    return None if row is None else str(row[0])
