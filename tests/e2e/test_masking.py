"""Masking on the local runtime: rules in the environment's configuration mask the restored data before any
user logs in, the same way on every refresh; a request cannot weaken them; a crash mid-way masks no row twice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from aurora_restore import operations
from aurora_restore.local.faults import FaultProfile
from aurora_restore.local.runtime import DATABASE, TARGET_CLUSTER, LocalRuntime
from aurora_restore.local.world import EMAIL_MASKING, SEED_EMAILS
from aurora_restore.operations import Target

pytestmark = pytest.mark.e2e

ORIGINAL = set(SEED_EMAILS)
MASKED = EMAIL_MASKING
SCRIPTS = "dev-sql-scripts"


def emails(runtime: LocalRuntime) -> list[tuple[int, str]]:
    """The restored users' (id, email), as the database holds them now."""
    assert runtime.postgres is not None
    conn = runtime.postgres.connect(DATABASE)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT id, email FROM public.users ORDER BY id")
            return list(cursor.fetchall())
    finally:
        conn.close()


def joined_orders(runtime: LocalRuntime) -> int:
    assert runtime.postgres is not None
    conn = runtime.postgres.connect(DATABASE)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM app_schema.orders o JOIN public.users u ON u.id = o.user_id")
            return int(cursor.fetchone()[0])
    finally:
        conn.close()


def completed(runtime: LocalRuntime, operation_id: str) -> Any:
    runtime.put_restore_requested(operation_id, date.today())
    state = runtime.wait_for(operation_id, timeout=120)
    assert state is not None and state.status == "completed", state and (state.error, state.history[-4:])
    return state


def test_rules_mask_the_emails_before_the_users_alike_on_every_refresh(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given the local runtime whose configuration (SSM) has one rule: public.users.email by `email`
    runtime = start_runtime(config_overrides=MASKED, log_path=None)

    # When a refresh completes
    first = completed(runtime, "mask-first")

    # Then mask_data ran between check_restore_status and setup_db_users
    done = [entry.step for entry in first.history if entry.outcome == "success"]
    assert done.index("check_restore_status") < done.index("mask_data") < done.index("setup_db_users")
    # and no original address is left, the two users have two distinct addresses, the orders still join
    masked = emails(runtime)
    assert not {email for _, email in masked} & ORIGINAL
    assert len({email for _, email in masked}) == 2
    assert joined_orders(runtime) == 2
    # and verify_restore checked the masking
    assert first.results["verify_restore"]["schema_info"]["masking"] == {
        "masked_columns": 1,
        "masked_tables": 1,
    }
    # and no original value is in the state item
    assert not any(address in json.dumps(first.model_dump(mode="json")) for address in ORIGINAL)

    # When the same source is refreshed again
    completed(runtime, "mask-second")
    # Then every user has the same masked address as after the first
    assert emails(runtime) == masked


def test_a_request_naming_masking_rules_is_refused_and_the_target_untouched(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given the local runtime with masking configured, and the target as it is
    runtime = start_runtime(config_overrides=MASKED, log_path=None)
    rds = runtime.client("rds")
    before = rds.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]["DBClusterArn"]

    # When a request asks for no masking
    runtime.put_restore_requested("mask-weaken", date.today(), overrides={"masking_rules": []})
    state = runtime.wait_for("mask-weaken", timeout=60)

    # Then it is refused at its first step, saying why
    assert state is not None and (state.status, state.failed_step) == ("failed", "snapshot_check"), state
    assert state.error is not None and state.error.type == "InvalidRequest"
    assert (
        "masking_rules" in state.error.message and "environment's configuration only" in state.error.message
    )
    # and the target is the same cluster, untouched
    after = rds.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]
    assert after["DBClusterArn"] == before and after["Status"] == "available"
    assert runtime.simulator is not None and not runtime.simulator.mutating_calls()


def test_a_crash_after_masking_before_its_record_masks_no_row_twice(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given the local runtime masking one row per transaction, and the values a clean refresh masks to
    runtime = start_runtime(config_overrides={**MASKED, "masking_batch_rows": 1}, log_path=None)
    completed(runtime, "mask-clean")
    clean = emails(runtime)

    # When mask_data dies after it masked the rows (committed) and before its run was recorded
    runtime.set_faults(FaultProfile(name="crash", crash_steps=frozenset({"mask_data"})))
    crashed = completed(runtime, "mask-crashed")

    # Then it did crash there, was run again, and the operation completed
    assert ("mask-crashed", "mask_data") in runtime.crashes
    # and every row was masked exactly once: the same values as the clean run (twice would differ)
    assert emails(runtime) == clean
    progress = crashed.outputs["masking_progress"]
    assert progress == [{"table": "public.users", "rows_done": 2, "rows_total": 2, "done": True}]


def configure(runtime: LocalRuntime, **fields: Any) -> None:
    """The environment's configuration (SSM) with `fields`: the next operation resolves it."""
    document = runtime.config_document() | fields
    runtime.client("ssm").put_parameter(
        Name=runtime.names.config_parameter, Value=json.dumps(document), Type="String", Overwrite=True
    )


def script(runtime: LocalRuntime, key: str, text: str, sha256: str | None = None) -> dict[str, str]:
    """A post-restore script put in S3, as its configuration entry (its SHA-256, or the one given)."""
    body = text.encode()
    runtime.client("s3").put_object(Bucket=SCRIPTS, Key=key, Body=body)
    return {"uri": f"s3://{SCRIPTS}/{key}", "sha256": sha256 or hashlib.sha256(body).hexdigest()}


def failed_at_mask_data(runtime: LocalRuntime, operation_id: str) -> Any:
    runtime.put_restore_requested(operation_id, date.today())
    state = runtime.wait_for(operation_id, timeout=120)
    assert state is not None and (state.status, state.failed_step) == ("failed", "mask_data"), state
    assert "setup_db_users" not in {entry.step for entry in state.history}
    operations.abort_operation(Target("dev", runtime.options.target_region), operation_id)  # the lease
    return state


def test_bad_rules_and_scripts_fail_before_the_users_and_good_scripts_run_once_in_order(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given the local runtime, and a bucket for post-restore scripts
    runtime = start_runtime(log_path=None)
    runtime.client("s3").create_bucket(
        Bucket=SCRIPTS, CreateBucketConfiguration={"LocationConstraint": runtime.options.target_region}
    )

    # When a rule names a column the restored database does not have
    configure(runtime, masking_rules=[{"table": "public.users", "column": "phone", "strategy": "null"}])
    state = failed_at_mask_data(runtime, "mask-no-column")
    # Then the operation fails at mask_data, naming it, before any user is set up
    assert state.error.type == "ConfigError" and "public.users.phone" in state.error.message

    # When a script's object is not the one whose SHA-256 is configured
    configure(runtime, post_restore_sql=[script(runtime, "changed.sql", "SELECT 1;", sha256="0" * 64)])
    state = failed_at_mask_data(runtime, "mask-changed-script")
    # Then it is not run, and the failure says why
    assert state.error.type == "ConfigError" and "SHA-256" in state.error.message

    # When a script fails in PostgreSQL
    configure(
        runtime, post_restore_sql=[script(runtime, "broken.sql", "UPDATE public.users SET email = NULL;")]
    )
    state = failed_at_mask_data(runtime, "mask-broken-script")
    # Then the failure names the script and PostgreSQL's error class, not the data
    assert state.error.type == "DatabaseError"
    assert (
        state.error.message
        == f"post_restore_sql s3://{SCRIPTS}/broken.sql failed: PostgreSQL 23502 NOT_NULL_VIOLATION"
    )

    # When masking and two scripts (the first of several statements) are configured
    first = script(
        runtime,
        "1.sql",
        "CREATE TABLE public.refreshed (n int); INSERT INTO public.refreshed VALUES (1);"
        " UPDATE public.products SET price_cents = 0;",
    )
    second = script(runtime, "2.sql", "INSERT INTO public.refreshed SELECT max(n) + 1 FROM public.refreshed;")
    configure(runtime, post_restore_sql=[first, second], **MASKED)
    state = completed(runtime, "mask-scripts")
    # Then each ran once, in order, after masking, and what PostgreSQL said is recorded
    assert [(run["uri"], run["status"]) for run in state.outputs["post_restore_sql_done"]] == [
        (first["uri"], "UPDATE 2"),
        (second["uri"], "INSERT 0 1"),
    ]
    assert runtime.postgres is not None
    conn = runtime.postgres.connect(DATABASE)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT array_agg(n ORDER BY n) FROM public.refreshed")
            assert cursor.fetchone() == ([1, 2],)
            # and nothing of mask_data's bookkeeping is left in the database
            cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'aurora_restore%'")
            assert cursor.fetchall() == []
    finally:
        conn.close()
