"""mask_data: mask the restored data by the environment's rules, then run its post-restore SQL.

It runs between check_restore_status and setup_db_users (functions.sequence), so no application user can
log in before the data is masked. Its work spans invocations, each recorded as a wait with a short wake-up:
1. the rules checked against the database, a sample of each masked column kept as keyed hashes and each
   table's rows counted (recorded before any row changes: verify_restore compares with them);
2. the tables masked, batch by batch, until half the function's time is spent (the database records each
   batch with its rows: a crash or a timeout resumes after the last one), then each script run once;
3. the bookkeeping dropped from the database, once the state holds that 2 is over.
"""

from __future__ import annotations

import time
from typing import Any

from functions import database, post_restore, secrets
from functions.database import masking
from functions.engine.contract import Done, Outcome, StepContext, Wait, Waiting
from functions.errors import VerificationFailed
from functions.sequence import after
from functions.steps.db import master_target
from schemas.common import Step
from schemas.outputs import ScriptRun, StepOutputs, TableMasked

# A wait between two of mask_data's own invocations: only long enough for the state to be written.
NEXT_INVOCATION_SECONDS = 1.0
SAMPLE_SIZE = 100


def mask_data(ctx: StepContext) -> Outcome:
    target = master_target(ctx)
    conn = database.connect(target.endpoint, target.user, target.password)
    try:
        if _masking_ended(ctx):
            masking.forget(conn, ctx.operation_id)
            post_restore.forget(conn)
            return _done(ctx)
        if ctx.config.masking_rules and not ctx.outputs.get("masking_samples"):
            return _sample(ctx, conn)
        return _mask_and_run(ctx, conn)
    finally:
        conn.close()


def _key(ctx: StepContext) -> bytes:
    assert ctx.config.masking_key_secret_id is not None  # RestoreConfig requires it with rules
    return secrets.masking_key(ctx.config.masking_key_secret_id, ctx.config.target_region).get_secret_value()


def _tables(ctx: StepContext) -> list[str]:
    return list(dict.fromkeys(rule.table for rule in ctx.config.masking_rules))


def _sample(ctx: StepContext, conn: Any) -> Outcome:
    """Phase 1: nothing is masked before the sample and the counts are in the state."""
    rules = ctx.config.masking_rules
    masking.check_rules(conn, rules)
    samples = masking.sample_before(conn, rules, _key(ctx), SAMPLE_SIZE)
    counts = masking.row_counts(conn, _tables(ctx))
    progress = [TableMasked(table=t, rows_done=0, rows_total=counts.get(t, 0), done=False) for t in counts]
    return _again(
        ctx,
        f"sampled {len(samples)} column(s) of {len(counts)} table(s); masking next",
        "masking to begin",
        StepOutputs(masking_samples=samples, masking_row_counts=counts, masking_progress=progress),
    )


def _mask_and_run(ctx: StepContext, conn: Any) -> Outcome:
    """Phase 2: mask for half the invocation's time at most, then run the scripts not run yet."""
    progress = {row["table"]: TableMasked(**row) for row in ctx.outputs.get("masking_progress") or []}
    if ctx.config.masking_rules:
        masked = masking.mask(
            conn,
            ctx.operation_id,
            ctx.config.masking_rules,
            _key(ctx),
            batch_rows=ctx.config.masking_batch_rows,
            # Half the invocation's time: the batch under way ends and the state is written in the rest.
            deadline=time.monotonic() + ctx.settings.claim_seconds / 2,
        )
        progress.update({table.table: _shown(table) for table in masked})
        if not all(table.done for table in progress.values()):
            return _again(
                ctx, _describe(progress), "masking", StepOutputs(masking_progress=[*progress.values()])
            )
    ran = _run_scripts(ctx, conn)
    outputs = StepOutputs(masking_progress=[*progress.values()], post_restore_sql_done=ran)
    return _again(
        ctx, f"masked {len(progress)} table(s), ran {len(ran)} script(s)", "masking to end", outputs
    )


def _run_scripts(ctx: StepContext, conn: Any) -> list[ScriptRun]:
    """Each script not in the ledger yet, in order: fetched, checked, run and recorded in one transaction."""
    ran = {(run.uri, run.sha256): run for run in post_restore.already_run(conn, ctx.operation_id)}
    done: list[ScriptRun] = []
    for script in ctx.config.post_restore_sql:
        previous = ran.get((script.uri, script.sha256))
        if previous is None:
            previous = post_restore.run(
                conn, ctx.operation_id, script, post_restore.fetch(script, ctx.config.target_region)
            )
        done.append(previous)
    return done


def _shown(table: Any) -> TableMasked:
    return TableMasked(
        table=table.table, rows_done=table.rows_done, rows_total=table.rows_total, done=table.done
    )


def _describe(progress: dict[str, TableMasked]) -> str:
    """`masking public.users 40%`: the first table not done."""
    for table in progress.values():
        if not table.done:
            share = min(100, 100 * table.rows_done // table.rows_total) if table.rows_total else 0
            return f"masking {table.table} {share}% ({table.rows_done:,} of {table.rows_total:,} rows)"
    return "masking: every table masked"


def _masking_ended(ctx: StepContext) -> bool:
    """Phase 2 is recorded as over: every table masked and every script run."""
    scripts = ctx.outputs.get("post_restore_sql_done")
    if scripts is None or len(scripts) < len(ctx.config.post_restore_sql):
        return False
    progress = ctx.outputs.get("masking_progress") or []
    return all(row["done"] for row in progress) and len(progress) >= len(_tables(ctx))


def _again(ctx: StepContext, message: str, waiting_for: str, outputs: StepOutputs) -> Waiting:
    wait = Wait(waiting_for, ctx.config.masking_timeout_minutes, NEXT_INVOCATION_SECONDS)
    fields = {"target_cluster_id": ctx.config.target_cluster_id, "masking_status": waiting_for}
    return Waiting(message=message, wait=wait, fields=fields, outputs=outputs)


def _done(ctx: StepContext) -> Done:
    tables, scripts = len(ctx.outputs.get("masking_progress") or []), len(ctx.config.post_restore_sql)
    cluster_id = ctx.config.target_cluster_id
    return Done(
        message=f"Masked {tables} table(s) and ran {scripts} post-restore script(s) on cluster {cluster_id}",
        fields={
            "target_cluster_id": cluster_id,
            "masking_status": "done",
            "tables_masked": tables,
            "scripts_run": scripts,
        },
        next_step=after(Step.MASK_DATA, ctx.config),
    )


def verify_masking(ctx: StepContext, conn: Any) -> dict[str, Any]:
    """verify_restore's masking checks: no sampled original value left, and every table's rows all there."""
    rules = ctx.config.masking_rules
    if not rules:
        return {}
    before = ctx.outputs.get("masking_samples") or {}
    hits = masking.masked_sample_hits(conn, rules, _key(ctx), before)
    masking.forget(conn, ctx.operation_id)  # sampling set up pgcrypto again: nothing of ours stays
    counted = ctx.outputs.get("masking_row_counts") or {}
    now = masking.row_counts(conn, list(counted))
    problems = [
        f"{column} still holds {found} sampled original value(s)" for column, found in hits.items() if found
    ]
    problems += [
        f"{table} has {now.get(table)} rows, {rows} before masking"
        for table, rows in counted.items()
        if now.get(table) != rows
    ]
    if problems:
        raise VerificationFailed("masking not verified: " + "; ".join(problems))
    return {"masked_columns": len(hits), "masked_tables": len(counted)}
