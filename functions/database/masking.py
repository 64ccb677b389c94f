"""Masking the restored database's columns in place: set-based, in batches, each row exactly once, resumable.

Exactly once: every batch's UPDATE and the progress row that counts it commit in one transaction, in the
restored database itself (schema aurora_restore_masking), and each transaction first locks that progress
row, so a crash, a re-run or a second run at the same time continues after the last committed batch and
never masks a row twice (masking a masked value again would be no masking at all: the output would no
longer be the keyed function of the original, and foreign keys would stop joining).

The key never appears in a statement's text: each transaction hands it to the server with
`set_config('aurora_restore.mask_key', <hex>, true)` (a statement that cannot fail on its value), and
the UPDATE reads it back with current_setting(). With the default logging (log_statement = none,
log_min_duration_statement = -1) the server logs no statement that succeeds, and a failing UPDATE
(log_min_error_statement = error) holds no key; a server logging every statement (log_statement = all)
would log the set_config, so the step must not run against one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg2
from psycopg2 import sql

from functions.database.connection import server_message
from functions.database.masking_sql import (
    KEY_SETTING,
    SAMPLE_KEY_SETTING,
    Column,
    check_columns,
    hex_hmac,
    mask_expression,
)
from functions.errors import ConfigError, DatabaseError
from schemas.masking import MaskingRule

SCHEMA = "aurora_restore_masking"
LOCK_KEY = 0x6D61736B  # "mask": one run prepares or drops the progress schema at a time
MIN_KEY_BYTES = 16
TARGET = "masked"  # the alias of the table being masked, which qualifies its columns in the expressions
SAMPLE_SEED = 20261207  # TABLESAMPLE ... REPEATABLE: before and after masking read the same blocks
SAMPLE_OVERSHOOT = 20  # rows the sample's blocks should hold, per value kept


@dataclass(frozen=True)
class TableProgress:
    """How far a table's masking got: rows masked so far of about rows_total, and whether it is done."""

    table: str
    rows_done: int
    rows_total: int
    done: bool


@dataclass(frozen=True)
class _Table:
    """One table to mask: its masked columns, its key, and about how many rows it has."""

    name: str  # schema.table
    columns: list[Column]
    primary_key: str | None  # its single-column primary key, if it has one
    estimate: int  # rows, from the statistics (or counted when there are none)

    @property
    def identifier(self) -> sql.Composable:
        schema, table = self.name.split(".", 1)
        return sql.Identifier(schema, table)


@contextmanager
def _transactions(conn: Any, doing: str) -> Iterator[None]:
    """Explicit transactions for the block (`with conn:` commits each), database errors as DatabaseError."""
    autocommit = conn.autocommit
    if autocommit:
        conn.autocommit = False
    try:
        yield
    except psycopg2.Error as exc:
        if not conn.closed:
            try:
                conn.rollback()
            except psycopg2.Error:
                pass  # the connection is gone: the server rolled the transaction back
        # The connection lost (or closed by the server): running again continues where the commits got.
        lost = isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError)
        raise DatabaseError(f"{doing} failed: {server_message(exc)}", retryable=lost) from exc
    finally:
        if autocommit and not conn.closed:
            conn.rollback()
            conn.autocommit = True


def _key_hex(key: bytes) -> str:
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"the masking key must have at least {MIN_KEY_BYTES} bytes")
    return key.hex()


def _sample_key_hex(key: bytes) -> str:
    """A key of its own for the samples: their hashes are never the masked values themselves."""
    return hashlib.sha256(b"aurora-restore masking sample\x00" + key).hexdigest()


def _by_table(rules: Sequence[MaskingRule]) -> dict[str, list[MaskingRule]]:
    grouped: dict[str, list[MaskingRule]] = {}
    for rule in rules:
        grouped.setdefault(rule.table, []).append(rule)
    return grouped


def check_rules(conn: Any, rules: Sequence[MaskingRule]) -> None:
    """ConfigError naming every rule whose table or column is missing, or whose strategy cannot mask the
    column (its type, NOT NULL for null, a fixed value the type refuses), and every foreign key that the
    rules would break (a masked key whose referencing column is not masked alike)."""
    with _transactions(conn, "checking the masking rules"), conn, conn.cursor() as cursor:
        check_columns(cursor, rules)


def _prepare(cursor: Any) -> str:
    """The progress schema and table, and pgcrypto; returns the schema pgcrypto's functions are in."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
    cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
    cursor.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pgcrypto'"
    )
    row = cursor.fetchone()
    if row is None:
        # In our own schema: forget() drops it with the schema, leaving the database as it was.
        cursor.execute(sql.SQL("CREATE EXTENSION pgcrypto WITH SCHEMA {}").format(sql.Identifier(SCHEMA)))
        row = (SCHEMA,)
    cursor.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.progress (operation_id text NOT NULL, table_name text NOT NULL,"
            " last_key bigint, keys_table text, rows_done bigint NOT NULL DEFAULT 0, rows_total bigint,"
            " done boolean NOT NULL DEFAULT false, updated_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (operation_id, table_name))"
        ).format(sql.Identifier(SCHEMA))
    )
    return str(row[0])


def _table(cursor: Any, name: str, found: list[Column]) -> _Table:
    schema, relname = name.split(".", 1)
    cursor.execute(
        "SELECT c.reltuples::bigint, (SELECT a.attname FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        " WHERE i.indrelid = c.oid AND i.indisprimary AND i.indnkeyatts = 1)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, relname),
    )
    estimate, primary_key = cursor.fetchone()
    table = _Table(name, found, primary_key, int(estimate))
    if table.estimate < 0:  # never analyzed (a partitioned table's parent has no estimate of its own)
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(table.identifier))
        table = _Table(name, found, primary_key, int(cursor.fetchone()[0]))
    return table


def mask(
    conn: Any,
    operation_id: str,
    rules: Sequence[MaskingRule],
    key: bytes,
    *,
    batch_rows: int = 1_000_000,
    on_progress: Callable[[TableProgress], None] | None = None,
    deadline: float | None = None,
) -> list[TableProgress]:
    """Mask every rule's column, table by table: one UPDATE per table (per batch of `batch_rows` rows) sets
    all of its rule columns. Each batch commits with its progress (see the module's docstring); a run that
    finds a table done leaves it as it is. `on_progress` is called after each committed transaction;
    `deadline` (a time.monotonic() value) stops between two transactions, tables left not done.

    Every masking transaction runs with session_replication_role = replica: no trigger fires, foreign
    keys' included, so a masked key and the masked columns referencing it (masked alike, which check_rules
    makes sure of) may be committed in different transactions, and an ON UPDATE CASCADE does not mask a
    referencing column a second time. Setting it needs a superuser, or rds_superuser on Aurora.
    """
    key_hex = _key_hex(key)
    if batch_rows < 1:
        raise ConfigError("batch_rows must be at least 1")
    results = []
    with _transactions(conn, "masking"):
        with conn, conn.cursor() as cursor:
            found = check_columns(cursor, rules)
            pgcrypto = _prepare(cursor)
            tables = [
                _table(cursor, name, [c for c in found if c.rule.table == name]) for name in _by_table(rules)
            ]
        for table in tables:
            while True:
                if deadline is not None and time.monotonic() >= deadline:
                    results.append(_read_progress(conn, operation_id, table))
                    break
                with conn, conn.cursor() as cursor:
                    progress, worked = _step(cursor, operation_id, table, pgcrypto, key_hex, batch_rows)
                if worked and on_progress is not None:
                    on_progress(progress)
                if progress.done:
                    results.append(progress)
                    break
    return results


def _read_progress(conn: Any, operation_id: str, table: _Table) -> TableProgress:
    with conn, conn.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "SELECT rows_done, rows_total, done FROM {}.progress WHERE operation_id = %s AND table_name = %s"
            ).format(sql.Identifier(SCHEMA)),
            (operation_id, table.name),
        )
        row = cursor.fetchone()
    if row is None:
        return TableProgress(table.name, 0, table.estimate, False)
    return TableProgress(
        table.name, int(row[0]), int(row[1] if row[1] is not None else table.estimate), row[2]
    )


def _step(
    cursor: Any, operation_id: str, table: _Table, pgcrypto: str, key_hex: str, batch_rows: int
) -> tuple[TableProgress, bool]:
    """One transaction's work on the table: the whole table, the keys snapshot, or the next batch.
    Returns the progress committed and whether there was anything to do."""
    cursor.execute("SELECT set_config(%s, %s, true)", (KEY_SETTING, key_hex))
    cursor.execute("SET LOCAL session_replication_role = replica")
    progress = sql.Identifier(SCHEMA, "progress")
    cursor.execute(
        sql.SQL("INSERT INTO {} (operation_id, table_name) VALUES (%s, %s) ON CONFLICT DO NOTHING").format(
            progress
        ),
        (operation_id, table.name),
    )
    cursor.execute(
        sql.SQL(
            "SELECT last_key, keys_table, rows_done, rows_total, done FROM {}"
            " WHERE operation_id = %s AND table_name = %s FOR UPDATE"
        ).format(progress),
        (operation_id, table.name),
    )
    last_key, keys_table, rows_done, rows_total, done = cursor.fetchone()
    if done:
        return TableProgress(table.name, rows_done, rows_total or rows_done, True), False
    if last_key is None:
        if table.primary_key is None or table.estimate <= batch_rows:
            rows = _update(cursor, table, pgcrypto)
            _record(cursor, operation_id, table, None, None, rows, rows, True)
            return TableProgress(table.name, rows, rows, True), True
        keys_table, total = _snapshot_keys(cursor, operation_id, table)
        _record(cursor, operation_id, table, 0, keys_table, 0, total, total == 0)
        if total == 0:
            cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(SCHEMA, keys_table)))
        return TableProgress(table.name, 0, total, total == 0), True
    upper = last_key + batch_rows
    rows = _update(cursor, table, pgcrypto, (keys_table, last_key, upper))
    finished = upper >= rows_total
    if finished:
        cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(SCHEMA, keys_table)))
    kept = None if finished else keys_table
    _record(cursor, operation_id, table, upper, kept, rows_done + rows, rows_total, finished)
    return TableProgress(table.name, rows_done + rows, rows_total, finished), True


def _snapshot_keys(cursor: Any, operation_id: str, table: _Table) -> tuple[str, int]:
    """The table's primary keys numbered in order, in a table of our schema: the batches are ranges of
    those numbers, not of the keys, because a masked primary key moves its row to another key range.
    While masking runs it holds the original keys (as the table itself does); the last batch drops it."""
    name = "keys_" + hashlib.sha256(f"{operation_id}\x00{table.name}".encode()).hexdigest()[:24]
    keys, pk = sql.Identifier(SCHEMA, name), sql.Identifier(table.primary_key or "")
    cursor.execute(
        sql.SQL("CREATE TABLE {} AS SELECT row_number() OVER (ORDER BY {}) AS pos, {} AS k FROM {}").format(
            keys, pk, pk, table.identifier
        )
    )
    total = int(cursor.rowcount)
    cursor.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (pos)").format(keys))
    return name, total


def _update(cursor: Any, table: _Table, pgcrypto: str, batch: tuple[str, int, int] | None = None) -> int:
    """One UPDATE setting every rule column of the table: all rows, or the batch (keys table, after, upto)."""
    target = sql.Identifier(TARGET)
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(
            sql.Identifier(column.rule.column), mask_expression(column, pgcrypto, TARGET)
        )
        for column in table.columns
    )
    statement = sql.SQL("UPDATE {} AS {} SET {}").format(table.identifier, target, assignments)
    if batch is None:
        cursor.execute(statement)
    else:
        keys_table, after, upto = batch
        cursor.execute(
            statement
            + sql.SQL(" FROM {} AS batch WHERE batch.pos > %s AND batch.pos <= %s AND {} = batch.k").format(
                sql.Identifier(SCHEMA, keys_table), sql.Identifier(TARGET, table.primary_key or "")
            ),
            (after, upto),
        )
    return int(cursor.rowcount)


def _record(
    cursor: Any,
    operation_id: str,
    table: _Table,
    last_key: int | None,
    keys_table: str | None,
    rows_done: int,
    rows_total: int,
    done: bool,
) -> None:
    cursor.execute(
        sql.SQL(
            "UPDATE {} SET last_key = %s, keys_table = %s, rows_done = %s, rows_total = %s, done = %s,"
            " updated_at = now() WHERE operation_id = %s AND table_name = %s"
        ).format(sql.Identifier(SCHEMA, "progress")),
        (last_key, keys_table, rows_done, rows_total, done, operation_id, table.name),
    )


def forget(conn: Any, operation_id: str) -> None:
    """Drop the operation's progress (and any keys snapshot it left); the schema goes with the last
    operation's, and pgcrypto with it if mask() installed it there."""
    with _transactions(conn, "dropping the masking progress"), conn, conn.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.progress",))
        if not cursor.fetchone()[0]:
            cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
            return
        progress = sql.Identifier(SCHEMA, "progress")
        cursor.execute(
            sql.SQL("DELETE FROM {} WHERE operation_id = %s RETURNING keys_table").format(progress),
            (operation_id,),
        )
        for (keys_table,) in cursor.fetchall():
            if keys_table:
                cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(SCHEMA, keys_table)))
        cursor.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(progress))
        if cursor.fetchone()[0]:
            cursor.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(SCHEMA)))


def row_counts(conn: Any, tables: Iterable[str]) -> dict[str, int]:
    """Exact row count of each "schema.table"."""
    counts = {}
    with _transactions(conn, "counting rows"), conn, conn.cursor() as cursor:
        for name in tables:
            schema, relname = name.split(".", 1)
            cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, relname)))
            counts[name] = int(cursor.fetchone()[0])
    return counts


def _sample(cursor: Any, column: Column, pgcrypto: str, size: int) -> list[str]:
    """Keyed hashes (the sample key) of up to `size` distinct non-null values the column holds, read
    from the same blocks each time (TABLESAMPLE SYSTEM ... REPEATABLE): a table masking did not rewrite
    is read at the same rows before and after."""
    rule = column.rule
    cursor.execute(
        "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s",
        (rule.schema_name, rule.table_name),
    )
    rows = float(cursor.fetchone()[0])
    percent = 100.0 if rows <= size * SAMPLE_OVERSHOOT else max(0.001, 100.0 * size * SAMPLE_OVERSHOOT / rows)
    name = sql.Identifier(rule.column)
    cursor.execute(
        sql.SQL(
            "SELECT DISTINCT h FROM (SELECT {} AS h FROM {} TABLESAMPLE SYSTEM (%s) REPEATABLE (%s)"
            " WHERE {} IS NOT NULL LIMIT %s) AS sampled"
        ).format(
            hex_hmac(pgcrypto, name, SAMPLE_KEY_SETTING),
            sql.Identifier(rule.schema_name, rule.table_name),
            name,
        ),
        (percent, SAMPLE_SEED, size),
    )
    return sorted(row[0] for row in cursor.fetchall())


def _samples(conn: Any, rules: Sequence[MaskingRule], key: bytes, size: int) -> dict[str, list[str]]:
    sample_key = _sample_key_hex(key)
    with _transactions(conn, "sampling the masked columns"):
        with conn, conn.cursor() as cursor:
            found = check_columns(cursor, rules)
            pgcrypto = _prepare(cursor)
        with conn, conn.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, true)", (SAMPLE_KEY_SETTING, sample_key))
            return {column.rule.qualified: _sample(cursor, column, pgcrypto, size) for column in found}


def sample_before(
    conn: Any, rules: Sequence[MaskingRule], key: bytes, size: int = 100
) -> dict[str, list[str]]:
    """Per "schema.table.column", HMAC-SHA256 hex digests (under a key derived from `key`) of a sample of
    the column's current non-null values: safe to keep in state, they say nothing of the values without
    the key. Call before mask(); masked_sample_hits compares after."""
    return _samples(conn, rules, key, size)


def masked_sample_hits(
    conn: Any, rules: Sequence[MaskingRule], key: bytes, before: dict[str, list[str]], size: int = 100
) -> dict[str, int]:
    """Per "schema.table.column", how many values of a sample of the column now hash to one of `before`:
    0 means no sampled value survived masking. A column no UPDATE touched is sampled at the same rows as
    before, so it shows every value it kept."""
    after = _samples(conn, rules, key, size)
    return {name: len(set(hashes) & set(before.get(name, ()))) for name, hashes in after.items()}
