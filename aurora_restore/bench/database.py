"""The DB steps at scale on the real local PostgreSQL, each against the naive one-query-per-object way."""

from __future__ import annotations

import hashlib
import math
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from psycopg2 import sql
from pydantic import SecretStr

from aurora_restore.bench import cpus
from aurora_restore.local.postgres import PostgresServer
from functions import database
from functions.database import Endpoint, UserGrant
from functions.database.grants import application_schemas, grant_statements, user_statements
from functions.database.scram import SCRAM_ITERATIONS
from functions.database.verification import privilege_groups
from schemas.config import PRIVILEGES, DbUser

PRIVILEGE_SETS = (["SELECT"], ["SELECT", "INSERT", "UPDATE", "DELETE"])
VERIFY_USERS = 2  # the runbook's two users
DDL_BATCH = 500


def grants(count: int, prefix: str) -> list[UserGrant]:
    return [
        UserGrant(
            DbUser(
                username=f"{prefix}_{index:04d}", privileges=list(PRIVILEGE_SETS[index % 2]), password="x"
            ),
            SecretStr(f"bench-password-{index}"),
        )
        for index in range(count)
    ]


def naive_setup_users(conn: Any, dbname: str, users: list[UserGrant]) -> None:
    """One execute and one commit per statement per user: what a first version usually does."""
    conn.autocommit = False
    with conn.cursor() as cursor:
        schemas = application_schemas(cursor)
        conn.commit()
        for grant in users:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (grant.user.username,))
            exists = cursor.fetchone() is not None
            for statement in user_statements(grant, exists, dbname, schemas):
                cursor.execute(statement)
                conn.commit()


def naive_verify(conn: Any, usernames: list[str], expected: list[tuple[str, str]]) -> int:
    """One query per table: does it exist, and what does each user hold on it."""
    checked = 0
    with conn.cursor() as cursor:
        for schema, table in expected:
            cursor.execute(
                "SELECT r.rolname, p.privilege FROM pg_roles r "
                "CROSS JOIN unnest(%s::text[]) AS p(privilege) "
                "WHERE r.rolname = ANY(%s) AND to_regclass(%s) IS NOT NULL "
                "AND has_table_privilege(r.oid, to_regclass(%s), p.privilege)",
                (
                    ["SELECT", "INSERT", "UPDATE", "DELETE"],
                    usernames,
                    f"{schema}.{table}",
                    f"{schema}.{table}",
                ),
            )
            cursor.fetchall()
            checked += 1
    return checked


def table_by_table_privileges(cursor: Any, usernames: list[str], schemas: list[str]) -> int:
    """What verify did before it grouped alike tables: has_table_privilege() for every user, table and
    privilege (each call scans the table's ACL, which names every user). Returns the rows it found."""
    cursor.execute(
        "SELECT r.rolname, n.nspname || '.' || c.relname, p.privilege "
        "FROM pg_roles r CROSS JOIN pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "CROSS JOIN unnest(%s::text[]) AS p(privilege) "
        "WHERE r.rolname = ANY(%s) AND c.relkind IN ('r', 'p') AND n.nspname = ANY(%s) "
        "AND has_table_privilege(r.oid, c.oid, p.privilege)",
        (list(PRIVILEGES), usernames, schemas),
    )
    return len(cursor.fetchall())


def _create_tables(conn: Any, schemas: int, per_schema: int) -> list[tuple[str, str]]:
    names = [(f"bench_schema_{s:02d}", f"table_{t:04d}") for s in range(schemas) for t in range(per_schema)]
    with conn.cursor() as cursor:
        for s in range(schemas):
            cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(f"bench_schema_{s:02d}")))
        for start in range(0, len(names), DDL_BATCH):
            cursor.execute(
                sql.SQL(";").join(
                    sql.SQL("CREATE TABLE {}.{} (id bigint PRIMARY KEY, name text)").format(
                        sql.Identifier(schema), sql.Identifier(table)
                    )
                    for schema, table in names[start : start + DDL_BATCH]
                )
            )
    return names


PROBE_ROLES = 40
PROBE_ROUNDS = 3  # the best round: a busy moment of the shared machine only adds time


def parallel_speedup(cpu_count: int, hashes: int = 150, rounds: int = 3) -> float:
    """How many times more PBKDF2 this machine does on `cpu_count` threads than on one, now: the median of
    `rounds` (hashlib releases the GIL while it hashes). A VM's CPUs do not always run side by side at full
    speed: on the bench's 2-core machine this has read anything from 1.1x to 2x from one minute to the next."""

    def hash_all(_: int) -> None:
        for index in range(hashes):
            hashlib.pbkdf2_hmac("sha256", b"probe", index.to_bytes(16, "big"), SCRAM_ITERATIONS)

    readings = []
    with ThreadPoolExecutor(max_workers=cpu_count) as pool:
        for _ in range(rounds):
            began = time.perf_counter()
            hash_all(0)
            alone = time.perf_counter() - began
            began = time.perf_counter()
            list(pool.map(hash_all, range(cpu_count)))
            readings.append(alone * cpu_count / (time.perf_counter() - began))
    return max(1.0, min(float(cpu_count), statistics.median(readings)))


def role_costs(conn: Any, cpu_count: int, users: int) -> dict[str, Any]:
    """What one role with a password costs on this machine, and so about how long 1,000 users must take.

    The client computes each SCRAM verifier (a PBKDF2 of 4,096 iterations); the server, storing it,
    checks it against the empty password (another PBKDF2 of the same iterations, in PostgreSQL's own
    slower HMAC). Both are CPU work, which no batching removes: their sum per user, spread over this
    machine's CPUs, is about what any implementation needs here (within the machine's noise). Measured
    on PROBE_ROLES roles in a transaction that is rolled back, the best of PROBE_ROUNDS rounds (the
    machine's speed varies from one minute to the next).
    """
    secrets = [f"probe-password-{index}" for index in range(PROBE_ROLES)]
    client_ms = math.inf
    for _ in range(PROBE_ROUNDS):
        began = time.perf_counter()
        verifiers = [database.scram_verifier(secret) for secret in secrets]
        client_ms = min(client_ms, (time.perf_counter() - began) * 1000 / PROBE_ROLES)
    statements = [
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(f"probe_{i:04d}"), sql.Literal(v))
        for i, v in enumerate(verifiers)
    ]
    bare = [
        sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(f"probe_bare_{i:04d}"))
        for i in range(PROBE_ROLES)
    ]
    timings = {"with_password": math.inf, "without_password": math.inf}
    conn.autocommit = False
    for _ in range(PROBE_ROUNDS):
        try:
            with conn.cursor() as cursor:
                for label, batch in (("with_password", statements), ("without_password", bare)):
                    began = time.perf_counter()
                    cursor.execute(sql.SQL(";").join(batch))
                    elapsed = (time.perf_counter() - began) * 1000 / PROBE_ROLES
                    timings[label] = min(timings[label], elapsed)
        finally:
            conn.rollback()
    server_ms = timings["with_password"] - timings["without_password"]
    # An estimate, not a bound: the serial probe and the parallel run do not see quite the same speeds.
    # Spread over the CPUs as far as they run side by side at the time (parallel_speedup), not their count.
    speedup = parallel_speedup(max(cpu_count, 1))
    cpu_bound_s = users * (client_ms + timings["with_password"]) / 1000 / speedup
    return {
        "client_verifier_ms": round(client_ms, 2),
        "server_role_ms": round(timings["with_password"], 2),
        "server_secret_check_ms": round(server_ms, 2),
        "cpus": cpu_count,
        "parallel_speedup": round(speedup, 2),
        "cpu_bound_s": round(cpu_bound_s, 2),
    }


def _verify_many_users(
    server: PostgresServer, conn: Any, endpoint: Endpoint, users: int, expected: list[tuple[str, str]]
) -> dict[str, Any]:
    """verify_restore with `users` users on the same tables: their privileges read once per group of alike
    tables, against table by table on the first schema's tables (extrapolated to all: it grows with the
    tables). And setup_db_users run again on them (a retry, or a refresh whose snapshot brings the users),
    against revoking and granting everything again on the first schema (extrapolated likewise)."""
    many = grants(users, "verify_many")

    def set_up() -> None:
        database.setup_users(
            conn, endpoint.dbname, many, connect=lambda: server.connect(endpoint.dbname, autocommit=False)
        )

    setup_s = _timed(set_up)
    verify_s = _timed_verify(conn, endpoint, many, [f"{s}.{t}" for s, t in expected])
    again_s = _timed(set_up)
    usernames = [grant.user.username for grant in many]
    sample = expected[0][0]
    sampled = sum(1 for schema, _ in expected if schema == sample)
    scale = len(expected) / sampled
    with conn, conn.cursor() as cursor:
        groups = len(privilege_groups(cursor, usernames, sorted({s for s, _ in expected})))
        sample_s = _timed(lambda: table_by_table_privileges(cursor, usernames, [sample]))
    try:
        with conn.cursor() as cursor:
            everything = grant_statements(many, endpoint.dbname, [sample])
            everything_s = _timed(lambda: [cursor.execute(statement) for statement in everything])
    finally:
        conn.rollback()
    return {
        "users": users,
        "setup_s": setup_s,
        "verify_s": verify_s,
        "groups": groups,
        "table_by_table_s": round(sample_s * scale, 1),
        "table_by_table_timed_tables": sampled,
        "setup_again_s": again_s,
        "revoke_and_grant_all_again_s": round(everything_s * scale, 1),
    }


def _timed_verify(conn: Any, endpoint: Endpoint, users: list[UserGrant], wanted: list[str]) -> float:
    """Seconds database.verify takes to find every wanted table and every user as set up."""
    outcome: dict[str, Any] = {}

    def verify() -> None:
        outcome["result"] = database.verify(conn, endpoint, users, wanted)

    seconds = _timed(verify)
    result = outcome["result"]
    if result.missing_tables or result.problems:
        raise RuntimeError(f"verify found problems: {result.problems[:3]} {result.missing_tables[:3]}")
    return seconds


def _fresh_database(server: PostgresServer, name: str) -> None:
    admin = server.connect("postgres")
    try:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        admin.close()


def setup_users_on_tables(
    server: PostgresServer, users: int, schemas: int, per_schema: int
) -> dict[str, Any]:
    """setup_users for `users` new users on a database that has tables: each user's privileges granted on
    every table (GRANT ... ON ALL TABLES IN SCHEMA rewrites each table's ACL, which names every user), where
    an empty database has nothing to grant on. The tables are made first (not timed)."""
    _fresh_database(server, "bench_users_tables")
    conn = server.connect("bench_users_tables")
    try:
        tables = len(_create_tables(conn, schemas, per_schema))
    finally:
        conn.close()
    conn = server.connect("bench_users_tables", autocommit=False)
    try:
        seconds = _timed(
            lambda: database.setup_users(
                conn,
                "bench_users_tables",
                grants(users, "tabled_user"),
                connect=lambda: server.connect("bench_users_tables", autocommit=False),
            )
        )
    finally:
        conn.close()
    return {"users": users, "schemas": schemas, "tables": tables, "seconds": seconds}


def _timed(action: Any) -> float:
    began = time.perf_counter()
    action()
    return round(time.perf_counter() - began, 3)


def measure_database(
    users: int,
    schemas: int,
    per_schema: int,
    naive_users: int,
    many_users: int,
    users_tables: tuple[int, int] = (2, 50),
) -> dict[str, Any]:
    """`users_tables`: (schemas, tables in each) of the database the users are also set up on."""
    server = PostgresServer().start()
    try:
        _fresh_database(server, "bench_users")
        _fresh_database(server, "bench_naive")
        conn = server.connect("bench_users", autocommit=False)
        try:
            costs = role_costs(conn, cpus(), users)
            # As the step does: the roles of many users go over several connections (opening them is timed).
            setup_s = _timed(
                lambda: database.setup_users(
                    conn,
                    "bench_users",
                    grants(users, "bench_user"),
                    connect=lambda: server.connect("bench_users", autocommit=False),
                )
            )
        finally:
            conn.close()
        naive_conn = server.connect("bench_naive", autocommit=False)
        try:
            naive_s = _timed(
                lambda: naive_setup_users(naive_conn, "bench_naive", grants(naive_users, "naive"))
            )
        finally:
            naive_conn.close()
        naive_per_user = naive_s / max(naive_users, 1)
        on_tables = setup_users_on_tables(server, users, *users_tables)

        _fresh_database(server, "bench_tables")
        conn = server.connect("bench_tables")
        try:
            began = time.perf_counter()
            expected = _create_tables(conn, schemas, per_schema)
            create_s = round(time.perf_counter() - began, 1)
        finally:
            conn.close()
        checked = grants(VERIFY_USERS, "verify_user")
        conn = server.connect("bench_tables", autocommit=False)
        try:
            database.setup_users(conn, "bench_tables", checked)
            endpoint = Endpoint(server.host, server.port, "bench_tables")
            verify_s = _timed_verify(conn, endpoint, checked, [f"{s}.{t}" for s, t in expected])
            usernames = [g.user.username for g in checked]
            conn.autocommit = True
            naive_verify_s = _timed(lambda: naive_verify(conn, usernames, expected))
            conn.autocommit = False
            many = _verify_many_users(server, conn, endpoint, many_users, expected)
        finally:
            conn.close()
        return {
            "setup_users_1000_s" if users == 1000 else f"setup_users_{users}_s": setup_s,
            "setup_users_1000_on_tables_s"
            if users == 1000
            else f"setup_users_{users}_on_tables_s": on_tables["seconds"],
            "verify_10000_tables_s"
            if schemas * per_schema == 10000
            else f"verify_{schemas * per_schema}_tables_s": verify_s,
            "setup_users": {
                "users": users,
                "batched_s": setup_s,
                "naive_users_timed": naive_users,
                "naive_s": round(naive_s, 2),
                "naive_s_for_all_users": round(naive_per_user * users, 1),
                "naive_extrapolated": naive_users != users,
                "per_role": costs,
                "on_tables": on_tables,
            },
            "verify": {
                "schemas": schemas,
                "tables": schemas * per_schema,
                "users": VERIFY_USERS,
                "catalog_s": verify_s,
                "naive_s": naive_verify_s,
                "tables_created_in_s": create_s,
                "many_users": many,
            },
        }
    finally:
        server.stop()
