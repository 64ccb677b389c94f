"""setup_users above its threshold: roles on several connections at once, against a real PostgreSQL server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg2
import pytest
from pydantic import SecretStr

from functions import database as db
from functions.database import setup as db_setup
from functions.errors import DatabaseError, InvalidRequest
from integration.world import World, held_privileges, roles
from schemas.config import DbUser

pytestmark = pytest.mark.integration

SEED_TABLES = ("app_schema.orders", "public.products", "public.users")
PRIVILEGE_SETS = (["SELECT"], ["SELECT", "INSERT", "UPDATE", "DELETE"], ["SELECT", "TRUNCATE"])
USERS = 130  # above PARALLEL_THRESHOLD: three connections by default


def user_grants(count: int, prefix: str = "par", password: str = "pw") -> list[db.UserGrant]:
    """Three privilege sets; every fifth user is limited to app_schema."""
    return [
        db.UserGrant(
            DbUser(
                username=f"{prefix}_{index:04d}",
                password=SecretStr("unused"),
                privileges=list(PRIVILEGE_SETS[index % 3]),
                schemas=["app_schema"] if index % 5 == 0 else None,
            ),
            SecretStr(f"{password}-{index}"),
        )
        for index in range(count)
    ]


class Connections:
    """The `connect` callable setup_users is given: counts and keeps what it opened."""

    def __init__(self, postgres: Any, dbname: str, before: Callable[[int], None] | None = None) -> None:
        self.postgres, self.dbname, self.before = postgres, dbname, before
        self.opened: list[Any] = []
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        # One at a time, so `before` runs before any worker has sent a statement.
        with self._lock:
            self.calls += 1
            if self.before is not None:
                self.before(self.calls)
            conn = self.postgres.connect(self.dbname, autocommit=False)
            self.opened.append(conn)
            return conn


def setup(postgres: Any, dbname: str, grants: list[db.UserGrant], connect: Any, **kwargs: Any) -> None:
    conn = postgres.connect(dbname, autocommit=False)
    try:
        db.setup_users(conn, dbname, grants, connect=connect, **kwargs)
    finally:
        conn.close()


def held(postgres: Any, dbname: str, names: list[str]) -> dict[str, dict[str, set[str]]]:
    conn = postgres.connect(dbname)
    try:
        with conn.cursor() as cursor:
            return held_privileges(cursor, names, ["app_schema", "public"])
    finally:
        conn.close()


def expected(grant: db.UserGrant) -> dict[str, set[str]]:
    scope = grant.user.schemas or ["app_schema", "public"]
    return {table: set(grant.user.privileges) for table in SEED_TABLES if table.split(".")[0] in scope}


def login(postgres: Any, dbname: str, user: str, password: str) -> str:
    conn = psycopg2.connect(
        host=postgres.host, port=postgres.port, dbname=dbname, user=user, password=password, connect_timeout=5
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT current_user")
            return str(cursor.fetchone()[0])
    finally:
        conn.close()


def assert_all_set_up(postgres: Any, dbname: str, grants: list[db.UserGrant]) -> None:
    names = [grant.user.username for grant in grants]
    assert roles(postgres) >= set(names)
    privileges = held(postgres, dbname, names)
    for grant in grants:
        assert privileges[grant.user.username] == expected(grant), grant.user.username
    for grant in (grants[0], grants[len(grants) // 2], grants[-1]):
        password = grant.password.get_secret_value()
        assert login(postgres, dbname, grant.user.username, password) == grant.user.username


def test_many_users_are_set_up_over_several_connections(postgres: Any, database: str) -> None:
    # Given 130 users, above the threshold
    grants = user_grants(USERS)
    connect = Connections(postgres, database)

    # When they are set up with a connect callable
    setup(postgres, database, grants, connect)

    # Then the roles went over three more connections, all closed again
    assert connect.calls == db_setup.role_workers(USERS) == 3
    assert all(conn.closed for conn in connect.opened)
    # And every role exists, holds exactly its privileges, and logs in with its password
    assert_all_set_up(postgres, database, grants)
    # And none is more than a login role
    conn = postgres.connect()
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'par\\_%%' "
            "AND rolcanlogin AND NOT rolsuper AND NOT rolcreatedb AND NOT rolcreaterole"
        )
        assert cursor.fetchone()[0] == USERS
    conn.close()


def test_the_worker_count_and_threshold_are_keywords(postgres: Any, database: str) -> None:
    # Given ten users and a threshold lowered to four
    grants = user_grants(10)
    connect = Connections(postgres, database)

    # When they are set up on two workers
    setup(postgres, database, grants, connect, workers=2, parallel_threshold=4)

    # Then two connections were opened, and every user is set up
    assert connect.calls == 2
    assert_all_set_up(postgres, database, grants)


def test_a_list_at_the_threshold_keeps_one_transaction(postgres: Any, database: str) -> None:
    # Given as many users as the threshold
    grants = user_grants(db_setup.PARALLEL_THRESHOLD)
    connect = Connections(postgres, database)

    # When they are set up
    setup(postgres, database, grants, connect)

    # Then no other connection was opened, and every user is set up
    assert connect.calls == 0
    assert_all_set_up(postgres, database, grants)


def test_running_twice_is_idempotent_and_a_changed_password_takes(postgres: Any, database: str) -> None:
    # Given 130 users set up once
    setup(postgres, database, user_grants(USERS), Connections(postgres, database))

    # When they are set up again, with new passwords
    again = user_grants(USERS, password="new")
    setup(postgres, database, again, Connections(postgres, database))

    # Then the same roles hold the same privileges, and the new passwords log in, the old ones no longer
    assert {name for name in roles(postgres) if name.startswith("par_")} == {g.user.username for g in again}
    assert_all_set_up(postgres, database, again)
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        login(postgres, database, "par_0001", "pw-1")


def test_a_rerun_finishes_roles_left_without_grants(postgres: Any, database: str) -> None:
    # Given some roles were committed without their grants (a crash between the workers' commits)
    conn = postgres.connect(database)
    with conn.cursor() as cursor:
        for index in range(0, USERS, 7):
            cursor.execute(f"CREATE ROLE par_{index:04d} LOGIN PASSWORD 'stale'")
    conn.close()
    grants = user_grants(USERS)

    # When the step runs again
    setup(postgres, database, grants, Connections(postgres, database))

    # Then every user is set up as asked
    assert_all_set_up(postgres, database, grants)


def test_a_worker_that_cannot_connect_leaves_no_role_behind(postgres: Any, database: str) -> None:
    # Given the third connection cannot be opened
    def refuse_third(call: int) -> None:
        if call == 3:
            raise DatabaseError("cannot connect to the cluster", retryable=True)

    connect = Connections(postgres, database, before=refuse_third)

    # When 130 users are set up
    with pytest.raises(DatabaseError, match="cannot connect") as raised:
        setup(postgres, database, user_grants(USERS), connect)

    # Then it is retryable, no role was created, and the connections that were opened are closed
    assert raised.value.retryable
    assert roles(postgres) == set()
    assert len(connect.opened) == 2 and all(conn.closed for conn in connect.opened)


def test_a_statement_failing_in_one_worker_rolls_back_the_others(postgres: Any, database: str) -> None:
    # Given the second connection logs in as a role that may not create roles
    admin = postgres.connect()
    with admin.cursor() as cursor:
        cursor.execute("CREATE ROLE weak LOGIN PASSWORD 'weak-password'")
    admin.close()

    def weak(call: int) -> Any:
        if call != 2:
            return postgres.connect(database, autocommit=False)
        return psycopg2.connect(
            host=postgres.host, port=postgres.port, dbname=database, user="weak", password="weak-password"
        )

    calls = {"n": 0}
    lock = threading.Lock()

    def connect() -> Any:
        with lock:
            calls["n"] += 1
            return weak(calls["n"])

    grants = user_grants(USERS)

    # When 130 users are set up
    with pytest.raises(DatabaseError) as raised:
        setup(postgres, database, grants, connect)

    # Then it fails, not retryable, with the server's primary message only (no statement, no verifier)
    error = raised.value
    assert not error.retryable
    assert "permission denied to create role" in error.message
    assert "SCRAM" not in error.message and "CREATE" not in error.message
    assert not any(grant.password.get_secret_value() in error.message for grant in grants)
    # And the other workers' roles were rolled back: nothing but `weak` exists
    assert roles(postgres) == {"weak"}


def test_a_role_created_meanwhile_is_a_retryable_conflict(postgres: Any, database: str) -> None:
    # Given another run creates one of the roles after setup_users looked and before its workers start
    def create_elsewhere(call: int) -> None:
        if call == 1:
            admin = postgres.connect()
            with admin.cursor() as cursor:
                cursor.execute("CREATE ROLE par_0007 NOLOGIN")
            admin.close()

    # When 130 users are set up
    with pytest.raises(DatabaseError, match="already exists") as raised:
        setup(
            postgres, database, user_grants(USERS), Connections(postgres, database, before=create_elsewhere)
        )

    # Then it is retryable and nothing of this run is left: only the other run's role exists
    assert raised.value.retryable
    assert roles(postgres) == {"par_0007"}


def test_a_role_held_by_another_transaction_times_out_as_retryable(
    postgres: Any, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another transaction is creating one of the roles and does not commit
    monkeypatch.setattr(db_setup, "ROLE_LOCK_TIMEOUT", "300ms")
    other = postgres.connect(autocommit=False)
    try:
        with other.cursor() as cursor:
            cursor.execute("CREATE ROLE par_0100 NOLOGIN")

        # When 130 users are set up
        with pytest.raises(DatabaseError, match="lock timeout") as raised:
            setup(postgres, database, user_grants(USERS), Connections(postgres, database))
    finally:
        other.rollback()
        other.close()

    # Then the wait ended as a retryable failure, and no role was left behind
    assert raised.value.retryable
    assert roles(postgres) == set()


@pytest.mark.parametrize("bad", ["missing-schema", "privilege", "duplicate"])
def test_bad_input_opens_no_connection_and_changes_nothing(postgres: Any, database: str, bad: str) -> None:
    # Given 130 users, one of them bad
    grants = user_grants(USERS)
    if bad == "missing-schema":
        grants[-1].user.schemas = ["no_such_schema"]
    elif bad == "privilege":
        # Past DbUser's own validation, as a caller building users by hand could
        grants[-1] = db.UserGrant(
            DbUser.model_construct(username="mallory", privileges=["SELECT", "SUPERUSER"]), SecretStr("x")
        )
    else:
        grants[-1] = grants[0]
    connect = Connections(postgres, database)

    # When they are set up
    with pytest.raises(InvalidRequest):
        setup(postgres, database, grants, connect)

    # Then no worker connection was opened and no role exists
    assert connect.calls == 0
    assert roles(postgres) == set()


def test_the_step_sets_up_many_users_over_several_connections(
    world: World, postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given eight users (the SSM parameter holds few) and the threshold lowered so they take the parallel path
    monkeypatch.setattr(db_setup, "PARALLEL_THRESHOLD", 4)
    monkeypatch.setattr(db_setup, "USERS_PER_WORKER", 3)
    users = [
        {"username": f"step_{index}", "password": f"step-password-{index}", "privileges": ["SELECT"]}
        for index in range(8)
    ]
    world.put_db_users(users, kind="SecureString")
    world.seed_operation("dev-restore-parallel", "setup_db_users")
    opened: list[Any] = []
    original = db.connect

    def counting(*args: Any, **kwargs: Any) -> Any:
        conn = original(*args, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(db, "connect", counting)

    # When setup_db_users runs
    response = world.invoke("setup_db_users", {"operation_id": "dev-restore-parallel"})

    # Then it succeeded over the step's connection and three workers, all closed
    assert response["status"] == "success", response
    assert len(opened) == 1 + 3 and all(conn.closed for conn in opened)
    # And each user logs in with its password and holds SELECT on every seed table
    privileges = held(postgres, world.database, [user["username"] for user in users])
    for user in users:
        assert login(postgres, world.database, user["username"], user["password"]) == user["username"]
        assert privileges[user["username"]] == {table: {"SELECT"} for table in SEED_TABLES}


def test_a_run_waits_for_another_setup_on_the_cluster_and_times_out_as_retryable(
    postgres: Any, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another setup of DB users holding the cluster's setup lock
    monkeypatch.setattr(db_setup, "SETUP_LOCK_TIMEOUT", "300ms")
    other = postgres.connect(database)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (db_setup.SETUP_LOCK_KEY,))

        # When users are set up meanwhile
        with pytest.raises(DatabaseError, match="another setup of DB users is running") as raised:
            setup(postgres, database, user_grants(3), Connections(postgres, database))
    finally:
        other.close()

    # Then it gave up waiting as a retryable failure, before changing anything
    assert raised.value.retryable
    assert roles(postgres) == set()


@pytest.mark.parametrize("count", [3, USERS], ids=["one-transaction", "parallel"])
def test_two_runs_at_once_both_succeed_one_after_the_other(postgres: Any, database: str, count: int) -> None:
    # Given the same users set up twice at the same moment (the runbook's direct call and the
    # choreography's event, say)
    grants = user_grants(count)
    errors: list[Exception] = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        try:
            setup(postgres, database, grants, Connections(postgres, database))
        except Exception as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    # When both run
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # Then neither failed on a role the other created, and every user holds its privileges and logs in
    assert errors == []
    names = [grant.user.username for grant in grants]
    assert roles(postgres) == set(names)
    assert held(postgres, database, names) == {grant.user.username: expected(grant) for grant in grants}
    assert login(postgres, database, names[-1], f"pw-{count - 1}") == names[-1]
