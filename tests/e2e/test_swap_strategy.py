"""The swap strategy end to end: the target keeps serving until the switch, and a failure leaves it as it was."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from itertools import groupby
from typing import Any

import psycopg2
import pytest

from aurora_restore import operations
from aurora_restore.local.runtime import RUNBOOK_USERS, TARGET_CLUSTER, LocalRuntime
from aurora_restore.local.world import DATABASE
from aurora_restore.operations import Target
from functions.errors import AwsError
from functions.identifiers import swap_names

pytestmark = pytest.mark.e2e
SWAP = {"strategy": "swap"}


class Watcher:
    """What the target's name answers, looked at every few milliseconds from another thread."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.rds = runtime.client("rds")
        self.seen: list[tuple[str, str | None]] = []
        self._stop = threading.Event()

    def look(self) -> tuple[str, str | None]:
        try:
            cluster = self.rds.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]
        except self.rds.exceptions.DBClusterNotFoundFault:
            return "missing", None
        return cluster["Status"], cluster["DbClusterResourceId"]

    @contextmanager
    def watching(self) -> Iterator[Watcher]:
        def run() -> None:
            while not self._stop.is_set():
                self.seen.append(self.look())
                time.sleep(0.01)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def runs(self) -> list[tuple[str, str | None]]:
        """The answers with repeats folded: (status, resource id: an ARN follows the name) in the order they came."""
        return [key for key, _ in groupby(self.seen)]


def _existing_target(runtime: LocalRuntime) -> str:
    """The target's database as an environment in use has it: the seed, and a row of its own. Returns the
    target's resource id (its ARN follows its name, through renames)."""
    assert runtime.simulator is not None and runtime.simulator.stand_in is not None
    runtime.simulator.stand_in.load(TARGET_CLUSTER)
    _execute(
        runtime,
        "CREATE TABLE public.before_refresh (note text); INSERT INTO public.before_refresh VALUES ('x')",
    )
    rds = runtime.client("rds")
    return str(
        rds.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]["DbClusterResourceId"]
    )


def _execute(runtime: LocalRuntime, statement: str) -> list[Any]:
    assert runtime.postgres is not None
    conn = runtime.postgres.connect(DATABASE)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchall() if cursor.description else []
    finally:
        conn.close()


def _tables(runtime: LocalRuntime) -> set[str]:
    rows = _execute(
        runtime, "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname = 'public'"
    )
    return {row[0] for row in rows}


def _clusters(runtime: LocalRuntime) -> list[str]:
    return sorted(
        c["DBClusterIdentifier"] for c in runtime.client("rds").describe_db_clusters()["DBClusters"]
    )


def test_a_swap_serves_the_target_throughout_but_the_switch(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given an environment in use: the target cluster with data of its own
    runtime = start_runtime()
    old_id_before = _existing_target(runtime)
    watcher = Watcher(runtime)

    # When it is refreshed with the swap strategy, its name looked at all along
    with watcher.watching():
        runtime.put_restore_requested("e2e-swap", date.today(), SWAP)
        state = runtime.wait_for("e2e-swap", timeout=120)
    assert state is not None and state.status == "completed", state and (state.error, state.history[-3:])

    # Then it took the swap's steps: swap_clusters after verify_restore, the old target deleted after it
    steps = [step for step, _ in groupby(entry.step for entry in state.history)]
    assert steps[-5:] == ["verify_restore", "swap_clusters", "delete_rds", "notify_completion", "cleanup"]
    assert "delete_rds" not in steps[: steps.index("swap_clusters")]
    # And the name answered `available` with the old cluster until the switch, then with the new one: in
    # between only a missing name or a renaming cluster, once
    runs = watcher.runs()
    assert runs[0] == ("available", old_id_before)
    new_resource = runs[-1][1]
    assert runs[-1][0] == "available" and new_resource not in (None, old_id_before)
    switch = runs[1:-1]
    assert switch and all(status in ("missing", "renaming") for status, _ in switch), runs
    # And its database holds the restored data (not the old rows) and the users log in
    assert "public.before_refresh" not in _tables(runtime) and "public.users" in _tables(runtime)
    for user in RUNBOOK_USERS:
        psycopg2.connect(
            host="127.0.0.1",
            port=runtime.postgres.port,  # type: ignore[union-attr]
            dbname=DATABASE,
            user=user["username"],
            password=user["password"],
        ).close()
    # And no cluster is left beside it: the one restored beside it holds its name, the old one is deleted
    assert _clusters(runtime) == [TARGET_CLUSTER]
    # And the notice's downtime is the switch, not the restore
    assert state.outputs["switched"] is True
    assert state.outputs["old_cluster_id"] == swap_names(TARGET_CLUSTER, "e2e-swap")[1]


def test_a_swap_whose_verification_fails_leaves_the_target_as_it_was(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given an environment in use
    runtime = start_runtime()
    old_id_before = _existing_target(runtime)
    watcher = Watcher(runtime)

    # When a swap is asked for whose verification fails (an expected table missing)
    with watcher.watching():
        runtime.put_restore_requested(
            "e2e-swap-bad", date.today(), {**SWAP, "expected_tables": ["public.nope"]}
        )
        state = runtime.wait_for("e2e-swap-bad", timeout=120)

    # Then it ends failed at verify_restore
    assert state is not None and state.status == "failed"
    assert state.failed_step == "verify_restore"
    # And the target answered `available`, the same cluster, every time it was looked at
    assert watcher.runs() == [("available", old_id_before)]
    # And its data is what it was
    assert _execute(runtime, "SELECT note FROM public.before_refresh") == [("x",)]
    # And the cluster restored beside it is kept for a resume, named in what the failure leaves in place
    restored = swap_names(TARGET_CLUSTER, "e2e-swap-bad")[0]
    assert restored in _clusters(runtime)
    from functions.notify import left_in_place

    assert left_in_place(state)["restored_cluster_id"] == restored
    assert "switch_started" not in state.outputs


def test_a_switch_that_fails_half_way_renames_the_old_target_back(
    start_runtime: Callable[..., LocalRuntime], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an environment in use, and RDS refusing the rename of the restored cluster into the target's name
    runtime = start_runtime()
    old_id_before = _existing_target(runtime)
    new_id, old_id = swap_names(TARGET_CLUSTER, "e2e-swap-back")
    import functions.steps.swap as swap

    real = swap.rename_cluster
    refused: list[str] = []

    def rename(rds: Any, cluster_id: str, new_name: str) -> bool:
        if cluster_id == new_id and not refused:
            refused.append(cluster_id)
            raise AwsError(f"renaming cluster {cluster_id} to {new_name}: InvalidParameterCombination")
        return bool(real(rds, cluster_id, new_name))

    monkeypatch.setattr(swap, "rename_cluster", rename)

    # When a swap runs into it
    runtime.put_restore_requested("e2e-swap-back", date.today(), SWAP)
    state = runtime.wait_for("e2e-swap-back", timeout=120)

    # Then swap_clusters fails, having renamed the old target back
    assert state is not None and state.status == "failed" and state.failed_step == "swap_clusters"
    assert refused == [new_id]
    assert state.outputs["switch_rolled_back"] is True
    # And once that rename has taken effect the target is the old cluster again, available, with its data
    deadline = time.monotonic() + 30
    watcher = Watcher(runtime)
    while watcher.look() != ("available", old_id_before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watcher.look() == ("available", old_id_before)
    assert _execute(runtime, "SELECT note FROM public.before_refresh") == [("x",)]
    assert old_id not in _clusters(runtime) and new_id in _clusters(runtime)

    # When RDS takes the rename again and, the failure notified, the operator resumes the operation
    monkeypatch.setattr(swap, "rename_cluster", real)
    while not any(e.step == "notify_completion" for e in runtime.state("e2e-swap-back").history):
        assert time.monotonic() < deadline + 30, "the failure was never notified"
        time.sleep(0.05)
    _, step = operations.resume(Target("dev", runtime.options.target_region), "e2e-swap-back")

    # Then it switches afresh from swap_clusters and completes, the restored cluster under the target's name
    assert step == "swap_clusters"
    state = runtime.wait_for("e2e-swap-back", timeout=60)
    assert state is not None and state.status == "completed", state and state.error
    assert _clusters(runtime) == [TARGET_CLUSTER]
    assert watcher.look()[1] != old_id_before
    assert "public.before_refresh" not in _tables(runtime)


@pytest.mark.parametrize("strategy", ["", "blue-green"])
def test_an_unknown_strategy_is_refused_by_snapshot_check_before_anything_changes(
    start_runtime: Callable[..., LocalRuntime], strategy: str
) -> None:
    # Given the local runtime
    runtime = start_runtime()
    before = _clusters(runtime)

    # When a refresh names a strategy there is none of
    runtime.put_restore_requested("e2e-strategy", date.today(), {"strategy": strategy})
    state = runtime.wait_for("e2e-strategy", timeout=60)

    # Then snapshot_check refuses it, naming the field, and nothing was copied, restored or renamed
    assert state is not None and state.status == "failed" and state.failed_step == "snapshot_check"
    assert state.error is not None and "strategy" in state.error.message
    assert _clusters(runtime) == before
    assert sum(runtime.simulator.mutating_calls().values()) == 0  # type: ignore[union-attr]
