"""Masking one million rows with functions.database.masking, against one md5 UPDATE over the same rows."""

from __future__ import annotations

import secrets
import time
from typing import Any

from psycopg2 import sql

from aurora_restore.local.postgres import PostgresServer
from functions.database import masking
from schemas.masking import parse_rules

USERS_SHARE = 4  # a quarter of the rows are users, the rest their orders
ROUNDS = 2  # each contender this many times, alternating on fresh copies; the best kept
SOURCE = "bench_mask_source"
RULES = parse_rules(
    [
        {"table": "public.users", "column": "id", "strategy": "hash"},
        {"table": "public.users", "column": "email", "strategy": "email"},
        {"table": "public.orders", "column": "user_id", "strategy": "hash"},
    ]
)
TABLES = ("public.users", "public.orders")
BASELINE = (
    "UPDATE public.users SET email = md5(email)",
    "UPDATE public.orders SET reference = md5(reference)",
)


def _load(server: PostgresServer, rows: int) -> dict[str, int]:
    """users (id, unique email) and orders (id, user_id referencing users, reference), `rows` in all."""
    users = rows // USERS_SHARE
    orders = rows - users
    admin = server.connect()
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SOURCE)))
    admin.close()
    conn = server.connect(SOURCE)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL);"
                "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id),"
                " reference text NOT NULL, placed_at timestamptz NOT NULL DEFAULT now());"
                "INSERT INTO users SELECT i, 'person' || i || '@company.example.com', 'name ' || i"
                " FROM generate_series(1, %(users)s) AS i;"
                "INSERT INTO orders (id, user_id, reference) SELECT i, 1 + (i * 7919) %% %(users)s, 'ref-' || i"
                " FROM generate_series(1::bigint, %(orders)s) AS i;"
                "CREATE INDEX ON orders (user_id);",
                {"users": users, "orders": orders},
            )
            cursor.execute("VACUUM ANALYZE users")
            cursor.execute("VACUUM ANALYZE orders")
    finally:
        conn.close()
    return {"users": users, "orders": orders}


def _copy(server: PostgresServer, name: str) -> Any:
    admin = server.connect()
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        cursor.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(SOURCE))
        )
    admin.close()
    return server.connect(name, autocommit=False)


def _baseline(server: PostgresServer) -> float:
    conn = _copy(server, "bench_mask_baseline")
    try:
        began = time.perf_counter()
        with conn, conn.cursor() as cursor:
            for statement in BASELINE:
                cursor.execute(statement)
        return time.perf_counter() - began
    finally:
        conn.close()


def _masked(server: PostgresServer, key: bytes, counts: dict[str, int]) -> dict[str, float]:
    """mask() timed alone; the sample taken before and checked after, and the row counts, timed apart."""
    conn = _copy(server, "bench_mask_rules")
    try:
        began = time.perf_counter()
        before = masking.sample_before(conn, RULES, key)
        sample_s = time.perf_counter() - began
        began = time.perf_counter()
        progress = masking.mask(conn, "bench", RULES, key)
        mask_s = time.perf_counter() - began
        began = time.perf_counter()
        hits = masking.masked_sample_hits(conn, RULES, key, before)
        after = masking.row_counts(conn, TABLES)
        verify_s = time.perf_counter() - began + sample_s
        masking.forget(conn, "bench")
    finally:
        conn.close()
    expected = {"public.users": counts["users"], "public.orders": counts["orders"]}
    if any(hits.values()) or after != expected or not all(p.done for p in progress):
        raise RuntimeError(f"masking did not verify: hits {hits}, rows {after}, progress {progress}")
    return {"mask_s": mask_s, "verify_s": verify_s}


def measure_masking(rows: int, rounds: int = ROUNDS) -> dict[str, Any]:
    """`rows` rows across users and orders: masked by the rules (users.id and orders.user_id hashed
    alike, users.email as an address), and, on another fresh copy, one `UPDATE ... SET col = md5(col)`
    per table over the same rows; alternating, `rounds` times, the best of each kept."""
    server = PostgresServer().start()
    try:
        counts = _load(server, rows)
        key = secrets.token_bytes(32)
        baseline, masked = [], []
        for _ in range(rounds):
            baseline.append(_baseline(server))
            masked.append(_masked(server, key, counts))
        best = min(masked, key=lambda run: run["mask_s"])
        mask_s, baseline_s = round(best["mask_s"], 3), round(min(baseline), 3)
        return {
            "rows": rows,
            "tables": counts,
            "rules": [f"{rule.qualified}: {rule.strategy}" for rule in RULES],
            "baseline_statements": list(BASELINE),
            "rounds": rounds,
            "mask_s": mask_s,
            "baseline_s": baseline_s,
            "ratio": round(mask_s / baseline_s, 2) if baseline_s else None,
            "mask_runs_s": [round(run["mask_s"], 3) for run in masked],
            "baseline_runs_s": [round(seconds, 3) for seconds in baseline],
            "sample_and_verify_s": round(best["verify_s"], 3),
        }
    finally:
        server.stop()
