"""Setting up the DB users: roles and grants in transactions, one run per cluster, roles over workers."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import psycopg2
import psycopg2.errors
from psycopg2 import sql
from pydantic import TypeAdapter, ValidationError

from functions.database.connection import server_message
from functions.database.grants import (
    UserGrant,
    application_schemas,
    grant_statements,
    privilege_list,
    read_holdings,
    role_statement,
    setup_statements,
)
from functions.database.scram import scram_verifier
from functions.errors import DatabaseError, InvalidRequest
from schemas.config import RESERVED_USERNAMES, Username

# Round trips. Passwords go to the server as SCRAM-SHA-256 verifiers (functions.database.scram), so no
# plaintext password is ever part of a statement the server could log. The verifiers are (PostgreSQL's own
# `createuser` does the same): a failing statement is written to the server's log
# (log_min_error_statement), and every one with log_statement = ddl or pg_stat_statements.track_utility.
# So a role statement never shares a round trip with a grant (a grant's failure, the usual one, logs no
# verifier), and each role is a round trip of its own (a failure, or a cancel, logs that user's verifier
# alone). docs/deploy.md says what to set.
STATEMENTS_PER_ROUND_TRIP = 200
# Above this many users the roles are created on several connections at once (see setup_users).
PARALLEL_THRESHOLD = 64
USERS_PER_WORKER = 64
MAX_ROLE_WORKERS = 4
# How long a worker waits for a role another transaction is creating. Two runs (or a run and a
# single-transaction one) can each hold a role the other waits for while our workers wait for each other
# outside the server, a deadlock PostgreSQL cannot see; the timeout ends it as a retryable failure.
ROLE_LOCK_TIMEOUT = "10s"
# One setup_db_users at a time per cluster (roles are the cluster's, not a database's): a session-level
# advisory lock. The runbook's direct call and the choreography's event can start the step together; the
# second waits for the first, then finds its users in place, instead of failing on a role the first just
# created. A run that waits longer than SETUP_LOCK_TIMEOUT ends as a retryable failure.
SETUP_LOCK_KEY = 0x61757273  # "aurs"
SETUP_LOCK_TIMEOUT = "120s"
# A concurrent run creating or changing the same roles: running again succeeds.
CONFLICTS = (
    psycopg2.errors.UniqueViolation,  # created at the same moment by another transaction
    psycopg2.errors.DuplicateObject,  # created by another run after we looked
    psycopg2.errors.TransactionRollbackError,  # deadlock or serialization failure
    psycopg2.errors.LockNotAvailable,  # ROLE_LOCK_TIMEOUT ran out
)
# What PostgreSQL warns, and goes on, when the role running GRANT (REVOKE) may grant (revoke) only part of
# what it was asked on an object: it has privileges there but not their grant options.
SHORT_GRANTS = ("privileges were granted for", "privileges could be revoked for")
GRANTOR_HINT = (
    "the master user must own the schemas, tables and sequences or hold their privileges WITH GRANT OPTION"
)


class ShortGrant(Exception):
    """PostgreSQL granted or revoked less than asked: a warning, which setup treats as the error it is."""


def setup_users(
    conn: Any,
    dbname: str,
    grants: Sequence[UserGrant],
    *,
    connect: Callable[[], Any] | None = None,
    workers: int | None = None,
    parallel_threshold: int | None = None,
) -> list[str]:
    """Create or update every role with its password and exactly its privileges; returns the schemas.

    Everything is checked before any statement changes anything: usernames (pattern, reserved, listed
    once), the privilege whitelist, and that every schema a user names exists. Bad input changes nothing.

    Up to `parallel_threshold` users (default PARALLEL_THRESHOLD), or without `connect`, everything runs
    in one transaction on `conn`. Above it, the roles are spread over `workers` more connections opened
    with `connect` (default: one per USERS_PER_WORKER users, at most MAX_ROLE_WORKERS). The reason:
    PostgreSQL checks every new SCRAM secret against the empty password, a PBKDF2 of 4,096 iterations
    (~4 ms of server CPU per role) in the one backend running the statement; several backends use several
    CPUs. Each worker hashes its own share of the passwords one at a time, so the client's hashing
    overlaps the server's work (psycopg2 releases the GIL while the server works). Each worker runs its share in
    its own transaction and none commits until every one has finished without error; if one fails the
    others are cancelled and all roll back, so nothing is changed. Then all commit, and the grants run in
    one transaction on `conn` (they need the roles committed).

    Without two-phase commit (Aurora has max_prepared_transactions=0) that is as atomic as PostgreSQL
    allows, with one narrow window: if the process dies or a commit fails between the first worker's commit
    and the last one's, or the grants fail after them, some roles are created or altered (with their new
    passwords) without their grants; a new role then holds only what PUBLIC has. Running the step again is
    idempotent and finishes the job: it alters the roles that exist and grants everything.

    A concurrent run on the same roles (UniqueViolation, DuplicateObject), a deadlock or serialization
    failure, or a worker waiting longer than ROLE_LOCK_TIMEOUT for a role another transaction holds, is a
    retryable DatabaseError; any other PostgreSQL error a non-retryable one. Messages carry the server's
    primary message only, never a statement (statements carry password verifiers).

    Runs hold SETUP_LOCK_KEY, an advisory lock, from start to end: one at a time per cluster.
    """
    _check_users(grants)
    _lock_setup(conn)
    try:
        return _setup_users(conn, dbname, grants, connect, workers, parallel_threshold)
    finally:
        try:
            with conn:
                with conn.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK_KEY,))
        except psycopg2.Error:
            pass  # the connection is gone, and the lock with its session


def _lock_setup(conn: Any) -> None:
    """Wait, up to SETUP_LOCK_TIMEOUT, for any other setup of DB users on the cluster to end."""
    try:
        with conn:
            with conn.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", (SETUP_LOCK_TIMEOUT,))
                cursor.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK_KEY,))
    except psycopg2.Error as exc:
        raise DatabaseError(
            f"another setup of DB users is running on this cluster: {_setup_message(exc)}",
            retryable=_conflict(exc),
        ) from exc


def _setup_users(
    conn: Any,
    dbname: str,
    grants: Sequence[UserGrant],
    connect: Callable[[], Any] | None,
    workers: int | None,
    parallel_threshold: int | None,
) -> list[str]:
    threshold = PARALLEL_THRESHOLD if parallel_threshold is None else parallel_threshold
    opener = connect if len(grants) > threshold else None
    count = role_workers(len(grants), workers) if opener is not None else 1
    try:
        with conn:
            with conn.cursor() as cursor:
                schemas = _existing_schemas(cursor, grants)
                cursor.execute(
                    "SELECT rolname, rolsuper FROM pg_roles WHERE rolname = ANY(%s)",
                    ([grant.user.username for grant in grants],),
                )
                existing = dict(cursor.fetchall())
                if opener is None or count == 1:
                    _set_up_in_one_transaction(cursor, dbname, grants, existing, schemas)
                    return schemas
        _create_roles(opener, grants, existing, count)
    except (psycopg2.Error, ShortGrant) as exc:
        raise DatabaseError(
            f"setting up DB users failed and was rolled back: {_setup_message(exc)}", retryable=_conflict(exc)
        ) from exc
    _grant_to_committed_roles(conn, dbname, grants, schemas)
    return schemas


def _existing_schemas(cursor: Any, grants: Sequence[UserGrant]) -> list[str]:
    """The application schemas; InvalidRequest when a user names one that does not exist."""
    schemas = application_schemas(cursor)
    missing = sorted({s for g in grants for s in (g.user.schemas or []) if s not in schemas})
    if missing:
        raise InvalidRequest(f"schemas named for DB users do not exist: {', '.join(missing)}")
    return schemas


def _set_up_in_one_transaction(
    cursor: Any, dbname: str, grants: Sequence[UserGrant], existing: Mapping[str, bool], schemas: list[str]
) -> None:
    holdings = read_holdings(cursor, grants, schemas)
    roles, granting = setup_statements(grants, existing, dbname, schemas, holdings)
    for statement in roles:  # one a round trip: see the note on round trips at the top of this module
        cursor.execute(statement)
    _execute_batched(cursor, granting)


def _grant_to_committed_roles(
    conn: Any, dbname: str, grants: Sequence[UserGrant], schemas: list[str]
) -> None:
    """The grants, in one transaction, once the workers committed the roles."""
    try:
        with conn:
            with conn.cursor() as cursor:
                holdings = read_holdings(cursor, grants, schemas)
                _execute_batched(cursor, grant_statements(grants, dbname, schemas, holdings))
    except (psycopg2.Error, ShortGrant) as exc:
        raise DatabaseError(
            "the DB users' roles were committed but granting their privileges failed and was rolled back "
            f"(running the step again finishes the job): {_setup_message(exc)}",
            retryable=_conflict(exc),
        ) from exc


def role_workers(users: int, workers: int | None = None) -> int:
    """How many connections create `users` roles: `workers`, or one per USERS_PER_WORKER up to the max."""
    if workers is None:
        workers = min(MAX_ROLE_WORKERS, math.ceil(users / USERS_PER_WORKER))
    return max(1, min(workers, users))


def _create_roles(
    connect: Callable[[], Any], grants: Sequence[UserGrant], existing: Mapping[str, bool], count: int
) -> None:
    """Every role on `count` connections at once; all commit only if all succeeded (see setup_users)."""
    workers = _RoleWorkers(connect, existing)
    committed = 0
    try:
        workers.run([grants[index::count] for index in range(count)])
        for worker in workers.opened:
            worker.commit()
            committed += 1
    except psycopg2.Error as exc:
        if committed == 0:
            raise
        raise DatabaseError(
            f"setting up DB users failed after {committed} of {count} connections committed their roles "
            f"(running the step again finishes the job): {_pg_message(exc)}",
            retryable=True,
        ) from exc
    finally:
        workers.close(committed)


class _RoleWorkers:
    """Connections creating their shares of the roles side by side, each in its own open transaction.

    The first failure stops them all: the others are cancelled and take no further role.
    """

    def __init__(self, connect: Callable[[], Any], existing: Mapping[str, bool]) -> None:
        self.connect, self.existing = connect, existing
        self.opened: list[Any] = []
        self.failures: list[Exception] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def run(self, shares: Sequence[Sequence[UserGrant]]) -> None:
        """Each share on a connection of its own; raises the first failure once every worker is done."""
        with ThreadPoolExecutor(max_workers=len(shares)) as pool:
            for share in shares:
                pool.submit(self._work, share)
        # Leaving the block waited for every worker.
        if self.failures:
            raise self.failures[0]

    def close(self, committed: int) -> None:
        """Roll back the connections past the first `committed`, then close them all."""
        for worker in self.opened[committed:]:
            try:
                worker.rollback()
            except psycopg2.Error:
                pass  # a broken connection: closing it ends its transaction all the same
        for worker in self.opened:
            worker.close()

    def _work(self, share: Sequence[UserGrant]) -> None:
        own = None
        try:
            own = self.connect()
            with self._lock:
                self.opened.append(own)
            own.autocommit = False
            with own.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", (ROLE_LOCK_TIMEOUT,))
                self._create(cursor, share)
        except Exception as exc:
            self._fail(exc, own)
            raise  # kept in its future too; the first failure recorded is the one reported

    def _create(self, cursor: Any, share: Sequence[UserGrant]) -> None:
        for grant in share:
            if self._stop.is_set():  # another worker failed: its cancel only reaches a running statement
                return
            # One role a round trip (see the note on round trips at the top of this module). psycopg2
            # releases the GIL while the server hashes, so the workers' hashing and the server's overlap
            # all the same.
            verifier = scram_verifier(grant.password.get_secret_value())
            cursor.execute(role_statement(grant, self.existing, verifier))

    def _fail(self, exc: Exception, own: Any) -> None:
        with self._lock:
            self.failures.append(exc)
            others = [other for other in self.opened if other is not own]
        self._stop.set()
        for other in others:
            try:
                other.cancel()  # ends a statement running on the server; ignored by an idle connection
            except psycopg2.Error:
                pass


def _conflict(exc: Exception) -> bool:
    return isinstance(exc, CONFLICTS)


def _check_users(grants: Sequence[UserGrant]) -> None:
    """Role names well formed, not reserved, each listed once; privileges from the whitelist.

    DbUsers checks this when the configuration is loaded; checked again here because the parallel path
    relies on it: two workers creating the same role would wait for each other until ROLE_LOCK_TIMEOUT.
    """
    seen: set[str] = set()
    for grant in grants:
        name = grant.user.username
        try:
            _username().validate_python(name)
        except ValidationError:
            raise InvalidRequest(f"username {name!r} is not a valid role name") from None
        if name in RESERVED_USERNAMES:
            raise InvalidRequest(f"username {name!r} is reserved")
        if name in seen:
            raise InvalidRequest(f"username {name!r} is listed twice")
        seen.add(name)
        privilege_list(grant.user)


@cache
def _username() -> TypeAdapter[str]:
    return TypeAdapter(Username)


def _execute_batched(cursor: Any, statements: Sequence[sql.Composable]) -> None:
    """The statements a round trip at a time; PostgreSQL's warning that it granted less is raised."""
    notices = cursor.connection.notices
    for start in range(0, len(statements), STATEMENTS_PER_ROUND_TRIP):
        chunk = statements[start : start + STATEMENTS_PER_ROUND_TRIP]
        del notices[:]
        cursor.execute(sql.SQL(";\n").join(chunk))
        short = [notice for notice in notices if any(text in notice for text in SHORT_GRANTS)]
        if short:
            raise ShortGrant(short[0].split(":", 1)[-1].strip())


def _setup_message(exc: Exception) -> str:
    """The server's primary message; when an object refused the master ("permission denied for table
    x", not "... to create role"), or granted it less, what the master needs."""
    message = _pg_message(exc)
    if isinstance(exc, ShortGrant) or message.startswith("permission denied for "):
        return f"{message} ({GRANTOR_HINT})"
    return message


def _pg_message(exc: Exception) -> str:
    # ShortGrant's own text is PostgreSQL's warning, which names no statement.
    if isinstance(exc, ShortGrant):
        return str(exc)
    return server_message(exc)
