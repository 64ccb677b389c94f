"""The masking SQL library against a real PostgreSQL: each strategy, determinism, joins, exactly once."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from functions.database import masking
from functions.errors import ConfigError, DatabaseError
from schemas.masking import MaskingRule, parse_rules

pytestmark = pytest.mark.integration

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
USERS, ORDERS = 1000, 3000

# mask_test.users and mask_test.orders: every strategy's column, a masked primary key and its foreign key.
TABLES_SQL = f"""
CREATE SCHEMA mask_test;
CREATE TABLE mask_test.users (
    id bigint PRIMARY KEY, email varchar(80) NOT NULL UNIQUE, login text, code varchar(10), badge integer,
    token uuid, phone text, country text NOT NULL);
CREATE TABLE mask_test.orders (
    id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES mask_test.users (id) ON UPDATE CASCADE,
    note text);
CREATE INDEX ON mask_test.orders (user_id);
INSERT INTO mask_test.users
SELECT i, 'Person.' || i || '@Corp.example.com', 'login' || i, 'c' || i, i, md5(i::text)::uuid,
       CASE WHEN i % 10 = 0 THEN NULL ELSE '+44 ' || i END, 'country' || (i % 7)
FROM generate_series(1, {USERS}) AS i;
INSERT INTO mask_test.orders SELECT i, 1 + i % {USERS}, 'note ' || i FROM generate_series(1, {ORDERS}) AS i;
ANALYZE mask_test.users;
ANALYZE mask_test.orders;
"""
RULES = parse_rules(
    [
        {"table": "mask_test.users", "column": "id", "strategy": "hash"},
        {"table": "mask_test.users", "column": "email", "strategy": "email"},
        {"table": "mask_test.users", "column": "login", "strategy": "hash"},
        {"table": "mask_test.users", "column": "code", "strategy": "hash"},
        {"table": "mask_test.users", "column": "badge", "strategy": "hash"},
        {"table": "mask_test.users", "column": "token", "strategy": "hash"},
        {"table": "mask_test.users", "column": "phone", "strategy": "null"},
        {"table": "mask_test.users", "column": "country", "strategy": "fixed", "value": "XX"},
        {"table": "mask_test.orders", "column": "user_id", "strategy": "hash"},
        {"table": "mask_test.orders", "column": "note", "strategy": "hash"},
    ]
)
TABLES = ["mask_test.users", "mask_test.orders"]


def rules(*raw: dict[str, Any]) -> list[MaskingRule]:
    return parse_rules(list(raw))


@pytest.fixture
def conn(postgres: Any, database: str) -> Iterator[Any]:
    """The restored database (the seed's copy) with mask_test's two tables, as the master connects."""
    connection = postgres.connect(database, autocommit=False)
    with connection, connection.cursor() as cursor:
        cursor.execute(TABLES_SQL)
    yield connection
    connection.close()


@pytest.fixture
def twin(postgres: Any) -> Iterator[Any]:
    """A second restore of the same snapshot: another copy of the seed with the same mask_test tables."""
    name = f"twin_{uuid.uuid4().hex[:10]}"
    admin = postgres.connect()
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE restore_template')
    connection = postgres.connect(name, autocommit=False)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(TABLES_SQL)
        yield connection
    finally:
        connection.close()
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def rows(connection: Any, query: str) -> list[tuple[Any, ...]]:
    with connection, connection.cursor() as cursor:
        cursor.execute(query)
        return list(cursor.fetchall())


def users(connection: Any) -> list[tuple[Any, ...]]:
    return rows(connection, "SELECT * FROM mask_test.users ORDER BY email")


def everything(connection: Any) -> list[list[tuple[Any, ...]]]:
    return [
        sorted(rows(connection, "SELECT * FROM mask_test.users"), key=repr),
        sorted(rows(connection, "SELECT * FROM mask_test.orders"), key=repr),
    ]


def test_each_strategy_masks_its_column_and_keeps_every_row(conn: Any) -> None:
    # Given the tables as restored
    before = {row[0]: row for row in rows(conn, "SELECT * FROM mask_test.users")}
    counts = masking.row_counts(conn, TABLES)

    # When every rule is applied
    progress = masking.mask(conn, "op-strategies", RULES, KEY)

    # Then both tables are done, with every row, and counted as such
    assert [(p.table, p.rows_done, p.done) for p in progress] == [
        ("mask_test.users", USERS, True),
        ("mask_test.orders", ORDERS, True),
    ]
    assert masking.row_counts(conn, TABLES) == counts
    masked = rows(conn, "SELECT * FROM mask_test.users")
    ids, emails, logins, codes, badges, tokens, phones, countries = zip(*masked, strict=True)
    # email: a well-formed address at example.invalid, one per distinct input
    assert all(re.fullmatch(r"u[0-9a-f]{24}@example\.invalid", email) for email in emails)
    assert len(set(emails)) == USERS
    # hash: 64 hex digits for text, cut to n for varchar(n), the type's positive range for integers
    assert all(re.fullmatch(r"[0-9a-f]{64}", login) for login in logins)
    assert all(re.fullmatch(r"[0-9a-f]{10}", code) for code in codes)
    assert all(0 <= badge <= 2**31 - 1 for badge in badges) and len(set(badges)) == USERS
    assert all(0 <= value <= 2**63 - 1 for value in ids) and len(set(ids)) == USERS
    assert len(set(tokens)) == USERS
    # null and fixed
    assert set(phones) == {None} and set(countries) == {"XX"}
    # and no value is what it was in any row
    originals = {value for row in before.values() for value in row[:6]}
    assert not originals & {value for row in masked for value in row[:6]}


def test_hashed_keys_still_join_and_unique_emails_hold(conn: Any) -> None:
    # Given each user's order count before masking
    joined = "SELECT count(*) FROM mask_test.orders o JOIN mask_test.users u ON u.id = o.user_id"
    per_user = "SELECT o.user_id, count(*) FROM mask_test.orders o GROUP BY 1 ORDER BY 2, 1"
    counts_before = sorted(count for _, count in rows(conn, per_user))

    # When users.id and orders.user_id are hashed (the seed's users too, with its orders in another schema)
    seed = rules(
        {"table": "public.users", "column": "id", "strategy": "hash"},
        {"table": "public.users", "column": "email", "strategy": "email", "domain": "masked.test"},
        {"table": "app_schema.orders", "column": "user_id", "strategy": "hash"},
    )
    masking.mask(conn, "op-join", [*RULES, *seed], KEY)

    # Then every order still finds its user, each user keeps its orders, and the constraints hold
    assert rows(conn, joined) == [(ORDERS,)]
    assert sorted(count for _, count in rows(conn, per_user)) == counts_before
    assert rows(conn, "SELECT count(*) FROM app_schema.orders o JOIN public.users u ON u.id = o.user_id") == [
        (2,)
    ]
    assert all(email.endswith("@masked.test") for (email,) in rows(conn, "SELECT email FROM public.users"))
    with conn, conn.cursor() as cursor:  # the foreign keys, checked again now that triggers fire
        cursor.execute(
            "ALTER TABLE mask_test.orders DROP CONSTRAINT orders_user_id_fkey, ADD FOREIGN KEY (user_id)"
            " REFERENCES mask_test.users (id)"
        )
        cursor.execute(
            "ALTER TABLE app_schema.orders DROP CONSTRAINT orders_user_id_fkey, ADD FOREIGN KEY (user_id)"
            " REFERENCES public.users (id)"
        )


def test_the_same_key_masks_alike_in_another_database_and_another_key_does_not(conn: Any, twin: Any) -> None:
    # Given two copies of the same restored database
    # When each is masked with the same key (the environment's), under different operations
    masking.mask(conn, "op-first-refresh", RULES, KEY)
    masking.mask(twin, "op-second-refresh", RULES, KEY)

    # Then they hold the same values
    assert everything(conn) == everything(twin)


def test_another_key_gives_other_values(conn: Any, twin: Any) -> None:
    masking.mask(conn, "op-a", RULES, KEY)
    masking.mask(twin, "op-b", RULES, OTHER_KEY)

    first, second = users(conn), users(twin)
    for column in (0, 1, 2, 3, 4, 5):  # id, email, login, code, badge, token
        assert not {row[column] for row in first} & {row[column] for row in second}, column


def test_rules_naming_what_does_not_exist_fail_clearly(conn: Any) -> None:
    wrong = rules(
        {"table": "mask_test.nothing", "column": "x", "strategy": "null"},
        {"table": "mask_test.users", "column": "nickname", "strategy": "hash"},
        {"table": "mask_test.users", "column": "badge", "strategy": "email"},
        {"table": "mask_test.users", "column": "country", "strategy": "null"},
    )
    with pytest.raises(ConfigError) as raised:
        masking.check_rules(conn, wrong)
    message = raised.value.message
    assert "mask_test.nothing: no such table" in message
    assert "mask_test.users.nickname: no such column" in message
    assert "mask_test.users.badge: strategy email needs a text column, not int4" in message
    assert "mask_test.users.country: strategy null on a NOT NULL column" in message
    # and mask refuses the same before changing anything
    with pytest.raises(ConfigError):
        masking.mask(conn, "op-wrong", wrong, KEY)
    assert rows(conn, "SELECT to_regnamespace('aurora_restore_masking')") == [(None,)]


def test_a_masked_key_whose_references_are_not_masked_alike_is_refused(conn: Any) -> None:
    only_the_key = rules({"table": "mask_test.users", "column": "id", "strategy": "hash"})
    with pytest.raises(ConfigError, match=r"mask_test.orders.user_id references mask_test.users.id"):
        masking.check_rules(conn, only_the_key)
    # a fixed value the type refuses is named too
    with pytest.raises(ConfigError, match=r"mask_test.users.badge: fixed value 'many' does not fit"):
        masking.check_rules(
            conn, rules({"table": "mask_test.users", "column": "badge", "strategy": "fixed", "value": "many"})
        )


class Crash(Exception):
    pass


def crash_after(batches: int) -> Any:
    seen: list[masking.TableProgress] = []

    def on_progress(progress: masking.TableProgress) -> None:
        seen.append(progress)
        if len(seen) == batches:
            raise Crash(f"after {progress}")

    return on_progress


@pytest.mark.parametrize("batches", [1, 3, 6])
def test_a_run_stopped_between_batches_and_run_again_masks_every_row_once(
    conn: Any, twin: Any, batches: int
) -> None:
    # Given a clean run on a copy
    masking.mask(twin, "op-clean", RULES, KEY)

    # When a run in batches of 400 rows stops after some of them (the masked primary key's table first)
    with pytest.raises(Crash):
        masking.mask(conn, "op-crash", RULES, KEY, batch_rows=400, on_progress=crash_after(batches))
    partly = masking.row_counts(conn, TABLES)

    # Then the progress holds no key and no original value, only counts
    recorded = repr(rows(conn, "SELECT * FROM aurora_restore_masking.progress"))
    assert KEY.hex() not in recorded and "Corp.example.com" not in recorded and "login1" not in recorded

    # When it runs again to the end, and once more
    again = masking.mask(conn, "op-crash", RULES, KEY, batch_rows=400)
    masking.mask(conn, "op-crash", RULES, KEY, batch_rows=400)

    # Then every row was masked exactly once: the same values as the clean run
    assert [p.done for p in again] == [True, True]
    assert partly == masking.row_counts(conn, TABLES)
    assert everything(conn) == everything(twin)


def test_a_connection_killed_mid_way_resumes_on_a_new_one(
    postgres: Any, database: str, conn: Any, twin: Any
) -> None:
    masking.mask(twin, "op-clean", RULES, KEY)
    admin = postgres.connect(database)

    def kill(progress: masking.TableProgress) -> None:
        if progress.table == "mask_test.orders" and progress.rows_done >= 800:
            with admin.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", (conn.get_backend_pid(),))

    # When the server ends the connection between two batches
    with pytest.raises(DatabaseError) as raised:
        masking.mask(conn, "op-killed", RULES, KEY, batch_rows=400, on_progress=kill)
    assert raised.value.retryable
    admin.close()

    # Then a run on a new connection finishes it, each row masked once
    fresh = postgres.connect(database, autocommit=False)
    try:
        masking.mask(fresh, "op-killed", RULES, KEY, batch_rows=400)
        assert everything(fresh) == everything(twin)
    finally:
        fresh.close()


def test_two_runs_at_once_mask_each_row_once(postgres: Any, database: str, conn: Any, twin: Any) -> None:
    masking.mask(twin, "op-clean", RULES, KEY)
    conn.close()
    connections = [postgres.connect(database, autocommit=False) for _ in range(2)]
    errors: list[BaseException] = []

    def run(connection: Any) -> None:
        try:
            masking.mask(connection, "op-twice", RULES, KEY, batch_rows=250)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert not errors
        assert everything(connections[0]) == everything(twin)
    finally:
        for connection in connections:
            connection.close()


def test_the_sample_check_finds_a_column_left_unmasked(conn: Any) -> None:
    # Given samples of every rule's column before masking: keyed hashes, no plain value
    before = masking.sample_before(conn, RULES, KEY, size=50)
    assert all(1 <= len(hashes) <= 50 for name, hashes in before.items() if not name.endswith(".phone"))
    assert "Corp.example.com" not in repr(before) and KEY.hex() not in repr(before)

    # When only orders.note is masked
    note = "mask_test.orders.note"
    masking.mask(conn, "op-note", [rule for rule in RULES if rule.qualified == note], KEY)

    # Then the sample finds the users' columns unmasked (their table untouched), and the note masked
    hits = masking.masked_sample_hits(conn, RULES, KEY, before, size=50)
    assert hits[note] == 0
    assert hits["mask_test.users.email"] > 0 and hits["mask_test.users.id"] > 0

    # And when every other rule but the email's runs (each row of users rewritten, the email kept)
    email = "mask_test.users.email"
    masking.mask(conn, "op-most", [rule for rule in RULES if rule.qualified not in (note, email)], KEY)
    hits = masking.masked_sample_hits(conn, RULES, KEY, before, size=50)
    assert hits[email] > 0 and {name for name, count in hits.items() if count} == {email}

    # And once the email is masked too, nothing sampled is what it was
    masking.mask(conn, "op-email", [rule for rule in RULES if rule.qualified == email], KEY)
    assert set(masking.masked_sample_hits(conn, RULES, KEY, before, size=50).values()) == {0}


def test_a_failing_mask_leaves_no_key_in_the_server_log_and_nothing_half_done(
    postgres: Any, conn: Any
) -> None:
    logged_before = len(postgres.logfile.read_text())
    before = everything(conn)
    # a fixed value on a unique column: the UPDATE fails on the second row
    clash = [
        RULES[1],
        *rules({"table": "mask_test.users", "column": "login", "strategy": "fixed", "value": "x"}),
    ]
    with conn, conn.cursor() as cursor:
        cursor.execute("CREATE UNIQUE INDEX ON mask_test.users (login)")

    with pytest.raises(DatabaseError, match="duplicate key value violates unique constraint"):
        masking.mask(conn, "op-clash", clash, KEY)

    logged = postgres.logfile.read_text()[logged_before:]
    assert "duplicate key value" in logged and "UPDATE" in logged  # the failing statement was logged
    assert KEY.hex() not in logged
    assert everything(conn) == before


def test_forget_drops_the_progress_and_pgcrypto_it_installed(conn: Any) -> None:
    with pytest.raises(Crash):
        masking.mask(conn, "op-forget", RULES, KEY, batch_rows=300, on_progress=crash_after(2))
    masking.mask(
        conn, "op-other", rules({"table": "mask_test.orders", "column": "note", "strategy": "null"}), KEY
    )

    masking.forget(conn, "op-forget")
    assert rows(conn, "SELECT operation_id FROM aurora_restore_masking.progress") == [("op-other",)]
    assert rows(conn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'aurora_restore_masking'") == [(1,)]

    masking.forget(conn, "op-other")
    masking.forget(conn, "op-other")  # twice: nothing left to drop
    assert rows(conn, "SELECT to_regnamespace('aurora_restore_masking')") == [(None,)]
    assert rows(conn, "SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'") == [(0,)]


def test_a_deadline_stops_between_transactions_and_the_next_run_goes_on(conn: Any, twin: Any) -> None:
    masking.mask(twin, "op-clean", RULES, KEY)

    # A deadline already past: nothing is done, and mask says so
    stopped = masking.mask(conn, "op-deadline", RULES, KEY, batch_rows=400, deadline=0.0)
    assert [(p.table, p.rows_done, p.done) for p in stopped] == [
        ("mask_test.users", 0, False),
        ("mask_test.orders", 0, False),
    ]

    # The next run, with time enough, finishes it
    assert all(p.done for p in masking.mask(conn, "op-deadline", RULES, KEY, batch_rows=400))
    assert everything(conn) == everything(twin)


def test_a_table_without_a_primary_key_is_masked_in_one_transaction(conn: Any, twin: Any) -> None:
    for connection in (conn, twin):
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE mask_test.events AS SELECT 'who' || i AS who FROM generate_series(1, 900) i"
            )
    events = rules({"table": "mask_test.events", "column": "who", "strategy": "hash"})
    masking.mask(twin, "op-clean", events, KEY)
    calls: list[masking.TableProgress] = []

    masking.mask(conn, "op-no-key", events, KEY, batch_rows=100, on_progress=calls.append)

    assert calls == [masking.TableProgress("mask_test.events", 900, 900, True)]
    assert rows(conn, "SELECT who FROM mask_test.events ORDER BY 1") == rows(
        twin, "SELECT who FROM mask_test.events ORDER BY 1"
    )


def test_a_unique_column_too_narrow_for_its_rows_is_refused_before_anything_changes(conn: Any) -> None:
    # Given unique integer and smallint columns with more rows than their hashes keep apart
    with conn, conn.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE mask_test.seats (seat integer PRIMARY KEY, place smallint UNIQUE, label varchar(8) UNIQUE);"
            "INSERT INTO mask_test.seats SELECT i, i, 'l' || i"
            " FROM generate_series(1, 20000) AS i;"
            "ANALYZE mask_test.seats"
        )
    seats = rules(
        {"table": "mask_test.seats", "column": "seat", "strategy": "hash"},
        {"table": "mask_test.seats", "column": "place", "strategy": "hash"},
        {"table": "mask_test.seats", "column": "label", "strategy": "hash"},
    )

    # Then each is named, with what to do instead, and nothing is masked
    with pytest.raises(ConfigError) as raised:
        masking.mask(conn, "op-seats", seats, KEY)
    for column, bits in (("seat", 31), ("place", 15), ("label", 32)):
        assert f"mask_test.seats.{column}: unique, and its 20,000 rows' masked values ({bits} bits" in (
            raised.value.message
        )
    assert "use a wider type" in raised.value.message
    assert rows(conn, "SELECT min(seat), max(seat) FROM mask_test.seats") == [(1, 20000)]

    # And the same integer column in a small table (odds of a collision under 1%) is masked
    with conn, conn.cursor() as cursor:
        cursor.execute("DELETE FROM mask_test.seats WHERE seat > 500; ANALYZE mask_test.seats")
    masking.mask(conn, "op-few-seats", seats[:1], KEY)
    assert len({seat for (seat,) in rows(conn, "SELECT seat FROM mask_test.seats")}) == 500
