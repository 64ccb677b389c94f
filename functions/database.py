"""The database adapter (psycopg2): users and their grants, verification from the catalog.

Identifiers reach SQL only through psycopg2.sql.Identifier and privileges only from the whitelist.
Passwords are sent as SCRAM-SHA-256 verifiers computed here, so no plaintext password is ever part of a
statement the server could log. The verifiers are (PostgreSQL's own `createuser` does the same): a
failing statement is written to the server's log (log_min_error_statement), and every one with
log_statement = ddl or pg_stat_statements.track_utility. So a role statement never shares a round trip
with a grant (a grant's failure, the usual one, logs no verifier), and each role is a round trip of its
own (a failure, or a cancel, logs that user's verifier alone). docs/deploy.md says what to set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import stringprep
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

import psycopg2
import psycopg2.errors
from psycopg2 import sql
from pydantic import SecretStr, TypeAdapter, ValidationError

from functions.errors import DatabaseError, InvalidRequest, VerificationFailed
from schemas.config import PRIVILEGES, RESERVED_USERNAMES, DbUser, Username

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
SCRAM_ITERATIONS = 4096
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
# How many users verify_restore logs in at once.
LOGIN_WORKERS = 8
# A concurrent run creating or changing the same roles: running again succeeds.
CONFLICTS = (
    psycopg2.errors.UniqueViolation,  # created at the same moment by another transaction
    psycopg2.errors.DuplicateObject,  # created by another run after we looked
    psycopg2.errors.TransactionRollbackError,  # deadlock or serialization failure
    psycopg2.errors.LockNotAvailable,  # ROLE_LOCK_TIMEOUT ran out
)


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    dbname: str


@dataclass
class UserGrant:
    user: DbUser
    password: SecretStr


@dataclass
class Verification:
    schemas: list[str]
    tables: list[dict[str, str]]
    missing_tables: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def connect(endpoint: Endpoint, user: str, password: SecretStr, *, timeout: int = 10) -> Any:
    try:
        return psycopg2.connect(
            host=endpoint.host,
            port=endpoint.port,
            dbname=endpoint.dbname,
            user=user,
            password=password.get_secret_value(),
            connect_timeout=timeout,
            application_name="aurora-restore",
        )
    except psycopg2.OperationalError as exc:
        # psycopg2 never echoes the password; keep only the first line of the server's answer.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseError(
            f"cannot connect to {endpoint.host}:{endpoint.port}/{endpoint.dbname} as {user}: {first_line}",
            retryable=True,
        ) from exc


# SASLprep's "prohibited output" (RFC 4013 section 2.3: C.1.2, C.2.1 to C.9) and unassigned (A.1) tables.
_SASLPREP_PROHIBITED: tuple[Callable[[str], bool], ...] = (
    stringprep.in_table_c12,
    stringprep.in_table_c21,
    stringprep.in_table_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
    stringprep.in_table_a1,
)


def saslprep(password: str) -> str:
    """The password as PostgreSQL's SASLprep (pg_saslprep, src/common/saslprep.c) prepares it for SCRAM.

    The server prepares a plaintext password this way before hashing it, and libpq the password it logs
    in with, so a verifier computed from the raw password would never match a login whenever SASLprep
    changes it ("e" + combining acute, a no-break space, a ligature, a soft hyphen...). Where PostgreSQL
    departs from RFC 4013 we follow PostgreSQL, since it is what checks the login: ASCII is returned as it
    is (control characters included); U+200B becomes a space (C.1.2 is tried before B.1); the prohibited
    and bidirectional checks look at the mapped string before NFKC, not after; and whenever preparing
    fails (nothing left after mapping, a prohibited or unassigned character, bidi rules broken) the
    ORIGINAL password is used. NFKC is the current Unicode one, as PostgreSQL's own tables are: for the
    characters left after the A.1 check it is stable since Unicode 4.1, and unicodedata.ucd_3_2_0 would
    differ from PostgreSQL on five CJK compatibility ideographs (Corrigendum #4, e.g. U+2F874).
    """
    if password.isascii():
        return password
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else "" if stringprep.in_table_b1(char) else char
        for char in password
    )
    if not mapped or any(check(char) for char in mapped for check in _SASLPREP_PROHIBITED):
        return password
    if any(map(stringprep.in_table_d1, mapped)) and (
        any(map(stringprep.in_table_d2, mapped))
        or not stringprep.in_table_d1(mapped[0])
        or not stringprep.in_table_d1(mapped[-1])
    ):
        return password
    return unicodedata.normalize("NFKC", mapped)


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores (RFC 5802/7677), as `\\password` computes it.

    The password goes through `saslprep` first, as the server and libpq do, or some passwords could never
    log in.
    """
    # PBKDF2 through cryptography's own OpenSSL: ~0.8 ms against hashlib's ~1.3 ms on the OpenSSL 3.0 that
    # Python links here (same bytes; tests/unit check them against hashlib and a known verifier).
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    salt = salt or os.urandom(16)
    salted = PBKDF2HMAC(SHA256(), 32, salt, iterations).derive(saslprep(password).encode("utf-8"))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _privileges(user: DbUser) -> sql.Composable:
    for privilege in user.privileges:
        if privilege not in PRIVILEGES:
            raise InvalidRequest(f"privilege {privilege!r} of {user.username} is not in the whitelist")
    return sql.SQL(", ").join(sql.SQL(privilege) for privilege in user.privileges)


def application_schemas(cursor: Any) -> list[str]:
    cursor.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname <> ALL(%s) AND nspname NOT LIKE 'pg\\_%%' ORDER BY nspname",
        (list(SYSTEM_SCHEMAS),),
    )
    return [row[0] for row in cursor.fetchall()]


def _roles(grants: Sequence[UserGrant]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(grant.user.username) for grant in grants)


def role_statement(grant: UserGrant, existing: Mapping[str, bool], verifier: str) -> sql.Composable:
    """CREATE ROLE, or ALTER ROLE for one of `existing` (role name -> whether it is a superuser now).

    ALTER ROLE names the SUPERUSER attribute only to take it away: PostgreSQL lets only a superuser name
    it at all, even as NOSUPERUSER, and Aurora's master user is not one (it is rds_superuser with
    CREATEROLE), so saying it always made every run on roles that exist fail there.
    """
    name = grant.user.username
    if name not in existing:
        verb, attributes = "CREATE ROLE", "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
    else:
        verb, attributes = (
            "ALTER ROLE",
            "LOGIN NOCREATEDB NOCREATEROLE" + (" NOSUPERUSER" if existing[name] else ""),
        )
    return sql.SQL("{} {} WITH {} PASSWORD {}").format(
        sql.SQL(verb), sql.Identifier(name), sql.SQL(attributes), sql.Literal(verifier)
    )


def setup_statements(
    grants: Sequence[UserGrant],
    existing: Mapping[str, bool],
    dbname: str,
    schemas: Sequence[str],
    holdings: Holdings | None = None,
) -> tuple[list[sql.Composable], list[sql.Composable]]:
    """Every role with its password; then each schema's grants to all the users it concerns at once.

    One GRANT per (schema, privilege set) names every role that gets it, so a table's ACL is rewritten a
    handful of times rather than once per user: 1,000 users cost what a few do.
    """
    granting = grant_statements(grants, dbname, schemas, holdings)
    # The verifiers of many users are computed side by side (PBKDF2 runs in OpenSSL, outside the GIL).
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        verifiers = list(pool.map(lambda grant: scram_verifier(grant.password.get_secret_value()), grants))
    roles = [role_statement(grant, existing, secret) for grant, secret in zip(grants, verifiers, strict=True)]
    return roles, granting


def grant_statements(
    grants: Sequence[UserGrant], dbname: str, schemas: Sequence[str], holdings: Holdings | None = None
) -> list[sql.Composable]:
    """CONNECT, then per schema: revoke everything, grant usage and each privilege set.

    With `holdings` (what the users hold now, read in the same transaction), a user already holding
    exactly its privileges on a schema's tables (or sequences) is left out of that schema's REVOKE and
    GRANT ... ON ALL TABLES (SEQUENCES), and one holding nothing there out of the REVOKE: the end state is
    the same, and those two statements are where the cost is (see Holdings).
    """
    statements: list[sql.Composable] = []
    if not grants:
        return statements
    privileges = {grant.user.username: _privileges(grant.user) for grant in grants}
    statements.append(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(dbname), _roles(grants))
    )
    by_schema: dict[str, list[UserGrant]] = {}
    for grant in grants:
        for schema in grant.user.schemas or schemas:
            by_schema.setdefault(schema, []).append(grant)
    for schema, members in by_schema.items():
        name, roles = sql.Identifier(schema), _roles(members)
        statements += [
            *_revoke_all(holdings, schema, TABLES, members),
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} REVOKE ALL ON TABLES FROM {}").format(name, roles),
            *_revoke_all(holdings, schema, SEQUENCES, members),
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} REVOKE ALL ON SEQUENCES FROM {}").format(
                name, roles
            ),
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(name, roles),
        ]
        by_privileges: dict[tuple[str, ...], list[UserGrant]] = {}
        for grant in members:
            by_privileges.setdefault(tuple(sorted(grant.user.privileges)), []).append(grant)
        for group in by_privileges.values():
            granted, group_roles = privileges[group[0].user.username], _roles(group)
            statements += [
                *_grant_all(holdings, schema, TABLES, granted, group),
                sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT {} ON TABLES TO {}").format(
                    name, granted, group_roles
                ),
            ]
        inserters = [grant for grant in members if "INSERT" in grant.user.privileges]
        if inserters:
            # INSERT into a serial/identity column calls nextval(): without USAGE on the sequence it fails.
            statements += [
                *_grant_all(holdings, schema, SEQUENCES, sql.SQL("USAGE"), inserters),
                sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT USAGE ON SEQUENCES TO {}").format(
                    name, _roles(inserters)
                ),
            ]
    return statements


TABLES, SEQUENCES = "tables", "sequences"


def _revoke_all(
    holdings: Holdings | None, schema: str, kind: str, members: Sequence[UserGrant]
) -> list[sql.Composable]:
    """REVOKE ALL ON ALL <kind> IN SCHEMA from the members who may hold something to revoke there."""
    held = [g for g in members if holdings is None or holdings.needs_revoke(schema, kind, g.user)]
    if not held:
        return []
    return [
        sql.SQL("REVOKE ALL ON ALL {} IN SCHEMA {} FROM {}").format(
            sql.SQL(kind.upper()), sql.Identifier(schema), _roles(held)
        )
    ]


def _grant_all(
    holdings: Holdings | None, schema: str, kind: str, granted: sql.Composable, group: Sequence[UserGrant]
) -> list[sql.Composable]:
    """GRANT <granted> ON ALL <kind> IN SCHEMA to the members of `group` not holding exactly that already."""
    lacking = [g for g in group if holdings is None or holdings.needs_grant(schema, kind, g.user)]
    if not lacking:
        return []
    return [
        sql.SQL("GRANT {} ON ALL {} IN SCHEMA {} TO {}").format(
            granted, sql.SQL(kind.upper()), sql.Identifier(schema), _roles(lacking)
        )
    ]


def _wanted(user: DbUser, kind: str) -> frozenset[str]:
    """What setup gives `user` on each of a schema's tables or sequences (see grant_statements)."""
    if kind == TABLES:
        return frozenset(user.privileges)
    return frozenset({"USAGE"}) if "INSERT" in user.privileges else frozenset()


@dataclass(frozen=True)
class Holding:
    """What one user holds directly on the objects of one kind in one schema, as REVOKE ALL would see it."""

    privileges: frozenset[str]  # the same on every object, granted by its owner, without grant option
    uniform: bool  # every object holds exactly `privileges` that way, and our GRANT would be by its owner
    bare: bool  # nothing at all, on no object nor column: a REVOKE would remove nothing


@dataclass
class Holdings:
    """What the users hold now, per (schema, kind, username), and how many objects of each kind there are.

    REVOKE ... ON ALL TABLES and GRANT ... ON ALL TABLES rewrite each table's ACL once per role named, and
    each rewrite scans and copies an ACL that names every user: their cost grows with users x users x
    tables. Here 400 users already in place on 1,000 tables took 29 s to set up again, 1,000 users on 200
    tables 30 s, so 1,000 users on 10,000 tables would have outlasted any Lambda on every run after the
    first (a retry, or a refresh whose snapshot brings the users along). Users already holding exactly
    their privileges are left out, so such a run costs one catalog read.
    """

    held: dict[tuple[str, str, str], Holding] = field(default_factory=dict)
    objects: dict[tuple[str, str], int] = field(default_factory=dict)  # (schema, kind) -> how many

    def needs_revoke(self, schema: str, kind: str, user: DbUser) -> bool:
        if self.objects.get((schema, kind), 0) == 0:
            return False  # no object to revoke on
        holding = self.held.get((schema, kind, user.username))
        if holding is None:
            return True  # not read: revoke and grant, as without holdings
        return not holding.bare and not self._settled(holding, user, kind)

    def needs_grant(self, schema: str, kind: str, user: DbUser) -> bool:
        if self.objects.get((schema, kind), 0) == 0:
            return False  # no object to grant on
        holding = self.held.get((schema, kind, user.username))
        return holding is None or not self._settled(holding, user, kind)

    @staticmethod
    def _settled(holding: Holding, user: DbUser, kind: str) -> bool:
        return holding.uniform and holding.privileges == _wanted(user, kind)


# Per (schema, kind, user): the distinct ways the user's direct entries look across the distinct ACLs there,
# with how many objects each covers. An entry is "plain" when the object's owner granted it without grant
# option and our GRANT would be by that owner too (we own the object, or are superuser).
_HOLDINGS_QUERY = """
WITH me AS (
    SELECT oid, rolsuper FROM pg_roles WHERE rolname = current_user
), objects AS (
    SELECT n.nspname AS schema, CASE WHEN c.relkind = 'S' THEN 'sequences' ELSE 'tables' END AS kind,
           c.relowner, count(*) AS objects,
           coalesce(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))::text
           AS acl
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
    GROUP BY 1, 2, 3, 5
), users AS (
    SELECT oid, rolname FROM pg_roles WHERE rolname = ANY(%(users)s)
), entries AS (
    SELECT o.schema, o.kind, o.objects, u.rolname,
           bool_and(e.grantor = o.relowner AND NOT e.is_grantable
                    AND (o.relowner = me.oid OR me.rolsuper)) AS plain,
           array_agg(e.privilege_type::text ORDER BY e.privilege_type) AS privileges
    FROM objects o CROSS JOIN me
    CROSS JOIN LATERAL aclexplode(o.acl::aclitem[]) e
    JOIN users u ON u.oid = e.grantee
    GROUP BY o.schema, o.kind, o.relowner, o.acl, o.objects, u.rolname
), columns AS (
    SELECT DISTINCT n.nspname AS schema, u.rolname
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL aclexplode(a.attacl) e JOIN users u ON u.oid = e.grantee
    WHERE a.attacl IS NOT NULL AND n.nspname = ANY(%(schemas)s)
)
SELECT 'objects', schema, kind, NULL, NULL, NULL, sum(objects)::int FROM objects GROUP BY schema, kind
UNION ALL
SELECT 'entries', schema, kind, rolname, plain, privileges, sum(objects)::int FROM entries
GROUP BY schema, kind, rolname, plain, privileges
UNION ALL
SELECT 'columns', schema, 'tables', rolname, NULL, NULL, NULL FROM columns
"""


def read_holdings(cursor: Any, grants: Sequence[UserGrant], schemas: Sequence[str]) -> Holdings:
    """What the users hold now on the tables and sequences of `schemas`, in one catalog read."""
    cursor.execute(_HOLDINGS_QUERY, {"schemas": list(schemas), "users": [g.user.username for g in grants]})
    objects: dict[tuple[str, str], int] = {}
    ways: dict[tuple[str, str, str], list[tuple[bool, frozenset[str], int]]] = {}
    columns: set[tuple[str, str, str]] = set()
    for row_kind, schema, kind, username, plain, privileges, count in cursor.fetchall():
        if row_kind == "objects":
            objects[(schema, kind)] = count
        elif row_kind == "entries":
            ways.setdefault((schema, kind, username), []).append((plain, frozenset(privileges), count))
        else:
            columns.add((schema, kind, username))
    held: dict[tuple[str, str, str], Holding] = {}
    for schema, kind in objects:
        for grant in grants:
            key = (schema, kind, grant.user.username)
            found = ways.get(key, [])
            bare = not found and key not in columns
            uniform = key not in columns and (
                not found or (len(found) == 1 and found[0][0] and found[0][2] == objects[key[:2]])
            )
            held[key] = Holding(found[0][1] if found else frozenset(), uniform, bare)
    return Holdings(held, objects)


def user_statements(
    grant: UserGrant, exists: bool, dbname: str, schemas: Sequence[str]
) -> list[sql.Composable]:
    """One user's statements (the same SQL as setup_statements, for a single user)."""
    roles, granting = setup_statements(
        [grant], {grant.user.username: False} if exists else {}, dbname, schemas
    )
    return roles + granting


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
    try:
        return _setup_users(conn, dbname, grants, connect, workers, parallel_threshold)
    finally:
        try:
            with conn:
                with conn.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK_KEY,))
        except psycopg2.Error:
            pass  # the connection is gone, and the lock with its session


def _setup_users(
    conn: Any,
    dbname: str,
    grants: Sequence[UserGrant],
    connect: Callable[[], Any] | None,
    workers: int | None,
    parallel_threshold: int | None,
) -> list[str]:
    names = [grant.user.username for grant in grants]
    threshold = PARALLEL_THRESHOLD if parallel_threshold is None else parallel_threshold
    opener = connect if len(grants) > threshold else None
    count = role_workers(len(grants), workers) if opener is not None else 1
    try:
        with conn:
            with conn.cursor() as cursor:
                schemas = application_schemas(cursor)
                missing = sorted({s for g in grants for s in (g.user.schemas or []) if s not in schemas})
                if missing:
                    raise InvalidRequest(f"schemas named for DB users do not exist: {', '.join(missing)}")
                cursor.execute("SELECT rolname, rolsuper FROM pg_roles WHERE rolname = ANY(%s)", (names,))
                existing = dict(cursor.fetchall())
                if opener is None or count == 1:
                    holdings = read_holdings(cursor, grants, schemas)
                    roles, granting = setup_statements(grants, existing, dbname, schemas, holdings)
                    for statement in roles:  # one a round trip: see the module's docstring
                        cursor.execute(statement)
                    _execute_batched(cursor, granting)
                    return schemas
        _create_roles(opener, grants, existing, count)
    except (psycopg2.Error, ShortGrant) as exc:
        raise DatabaseError(
            f"setting up DB users failed and was rolled back: {_setup_message(exc)}", retryable=_conflict(exc)
        ) from exc
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
    return schemas


def role_workers(users: int, workers: int | None = None) -> int:
    """How many connections create `users` roles: `workers`, or one per USERS_PER_WORKER up to the max."""
    if workers is None:
        workers = min(MAX_ROLE_WORKERS, math.ceil(users / USERS_PER_WORKER))
    return max(1, min(workers, users))


def _create_roles(
    connect: Callable[[], Any], grants: Sequence[UserGrant], existing: Mapping[str, bool], count: int
) -> None:
    """Every role on `count` connections at once; all commit only if all succeeded (see setup_users)."""
    shares = [grants[index::count] for index in range(count)]
    opened: list[Any] = []
    failures: list[Exception] = []
    lock = threading.Lock()
    stop = threading.Event()

    def fail(exc: Exception, own: Any) -> None:
        with lock:
            failures.append(exc)
            others = [other for other in opened if other is not own]
        stop.set()
        for other in others:
            try:
                other.cancel()  # ends a statement running on the server; ignored by an idle connection
            except psycopg2.Error:
                pass

    def work(share: Sequence[UserGrant]) -> None:
        own = None
        try:
            own = connect()
            with lock:
                opened.append(own)
            own.autocommit = False
            with own.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", (ROLE_LOCK_TIMEOUT,))
                for grant in share:
                    if stop.is_set():  # another worker failed: its cancel only reaches a running statement
                        return
                    # One role a round trip (see the module's docstring). psycopg2 releases the GIL while
                    # the server hashes, so the workers' hashing and the server's overlap all the same.
                    verifier = scram_verifier(grant.password.get_secret_value())
                    cursor.execute(role_statement(grant, existing, verifier))
        except Exception as exc:
            fail(exc, own)
            raise  # kept in its future too; the first failure recorded is the one reported

    committed = 0
    try:
        with ThreadPoolExecutor(max_workers=count) as pool:
            for share in shares:
                pool.submit(work, share)
        # Leaving the block waited for every worker.
        if failures:
            raise failures[0]
        for worker in opened:
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
        for worker in opened[committed:]:
            try:
                worker.rollback()
            except psycopg2.Error:
                pass  # a broken connection: closing it ends its transaction all the same
        for worker in opened:
            worker.close()


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
        _privileges(grant.user)


@cache
def _username() -> TypeAdapter[str]:
    return TypeAdapter(Username)


# What PostgreSQL warns, and goes on, when the role running GRANT (REVOKE) may grant (revoke) only part of
# what it was asked on an object: it has privileges there but not their grant options.
SHORT_GRANTS = ("privileges were granted for", "privileges could be revoked for")
GRANTOR_HINT = (
    "the master user must own the schemas, tables and sequences or hold their privileges WITH GRANT OPTION"
)


class ShortGrant(Exception):
    """PostgreSQL granted or revoked less than asked: a warning, which setup treats as the error it is."""


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
    # The primary message only: never the statement text, which may carry a password verifier.
    if isinstance(exc, ShortGrant):
        return str(exc)
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    return str(primary or type(exc).__name__)


def catalog(cursor: Any) -> tuple[list[str], list[dict[str, str]]]:
    """Application schemas and their tables, in one round trip each."""
    schemas = application_schemas(cursor)
    cursor.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s) ORDER BY n.nspname, c.relname",
        (schemas,),
    )
    return schemas, [{"schema": row[0], "name": row[1]} for row in cursor.fetchall()]


@dataclass
class PrivilegeGroup:
    """Tables whose privileges are alike for every role: the same ACL and the same owner.

    A role's privileges on an ordinary table depend only on the table's ACL (or its owner's default
    when it has none), its owner and the role (its memberships, superuser or not), so one table stands
    for all of them. Tables granted schema by schema share a handful of ACLs between them.
    """

    tables: list[tuple[str, str]]  # (schema, name), sorted
    held: dict[str, frozenset[str]]  # username -> the whitelisted privileges it holds on each of them

    @cached_property
    def first_by_schema(self) -> dict[str, tuple[str, str]]:
        """Each schema's first table in the group: what a user must hold depends on the schema only."""
        first: dict[str, tuple[str, str]] = {}
        for table in self.tables:
            first.setdefault(table[0], table)
        return first


# One has_table_privilege() per (group, role, privilege), not per table: each call scans the table's ACL,
# which names every user, so table by table the cost grew with users x users x tables (200 users on
# 10,000 tables took 81 s here, against 1.9-2.9 s in groups with the logins; 1,000 users would have outlasted
# a Lambda).
_GROUPS_QUERY = """
WITH tables AS (
    SELECT c.oid, n.nspname, c.relname, coalesce(c.relacl::text, '') AS acl, c.relowner
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%(schemas)s)
), alike AS (
    SELECT min(oid) AS sample, array_agg(nspname) AS schemas, array_agg(relname) AS names
    FROM tables GROUP BY acl, relowner
)
SELECT alike.schemas, alike.names, (
    SELECT coalesce(json_object_agg(held.rolname, held.privileges), '{}'::json) FROM (
        SELECT r.rolname, array_agg(p.privilege) AS privileges
        FROM pg_roles r CROSS JOIN unnest(%(privileges)s::text[]) AS p(privilege)
        WHERE r.rolname = ANY(%(users)s) AND has_table_privilege(r.oid, alike.sample, p.privilege)
        GROUP BY r.rolname
    ) AS held
)
FROM alike
"""


def privilege_groups(cursor: Any, usernames: Sequence[str], schemas: Sequence[str]) -> list[PrivilegeGroup]:
    """The tables of `schemas` in groups of alike privileges, with what each user holds on them."""
    cursor.execute(
        _GROUPS_QUERY, {"schemas": list(schemas), "privileges": list(PRIVILEGES), "users": list(usernames)}
    )
    groups = [
        PrivilegeGroup(
            sorted(zip(table_schemas, names, strict=True)),
            {user: frozenset(held.get(user, ())) for user in usernames},
        )
        for table_schemas, names, held in cursor.fetchall()
    ]
    return sorted(groups, key=lambda group: group.tables[0])


def _privilege_problem(
    grant: UserGrant, groups: Sequence[PrivilegeGroup], schemas: Sequence[str]
) -> str | None:
    """The first table (by schema, then name) on which the user does not hold exactly its privileges."""
    user = grant.user
    scope = set(user.schemas or schemas)
    wanted: frozenset[str] = frozenset(user.privileges)
    first: tuple[tuple[str, str], frozenset[str], frozenset[str]] | None = None
    for group in groups:
        have = group.held[user.username]
        for schema, table in group.first_by_schema.items():
            expected = wanted if schema in scope else frozenset()
            if have != expected and (first is None or table < first[0]):
                first = (table, have, expected)
    if first is None:
        return None
    (schema, name), have, expected = first
    return (
        f"{user.username} on {schema}.{name}: holds {sorted(have) or 'nothing'}, "
        f"expected {sorted(expected) or 'nothing'}"
    )


def _login_problem(endpoint: Endpoint, grant: UserGrant) -> str | None:
    username = grant.user.username
    try:
        login = connect(endpoint, username, grant.password, timeout=5)
    except DatabaseError as exc:
        return f"{username} cannot log in: {exc.message}"
    try:
        with login.cursor() as cursor:
            cursor.execute("SELECT current_user")
            (who,) = cursor.fetchone()
    finally:
        login.close()
    return f"{username} logged in as {who}" if who != username else None


def verify(
    conn: Any,
    endpoint: Endpoint,
    grants: Sequence[UserGrant],
    expected_tables: Iterable[str],
) -> Verification:
    """Schemas and tables from the catalog, expected tables present, each user logs in with exactly its grants.

    The users log in side by side (LOGIN_WORKERS at a time): each login is a SCRAM exchange, a PBKDF2 on
    both ends, and a new backend.
    """
    try:
        with conn:
            with conn.cursor() as cursor:
                schemas, tables = catalog(cursor)
                groups = privilege_groups(cursor, [g.user.username for g in grants], schemas)
    except psycopg2.Error as exc:
        raise DatabaseError(f"reading the catalog failed: {_pg_message(exc)}") from exc
    result = Verification(schemas=schemas, tables=tables)
    present = {f"{t['schema']}.{t['name']}" for t in tables}
    result.missing_tables = sorted(set(expected_tables) - present)
    with ThreadPoolExecutor(max_workers=max(1, min(LOGIN_WORKERS, len(grants)))) as pool:
        logins = list(pool.map(lambda grant: _login_problem(endpoint, grant), grants))
    for grant, login_problem in zip(grants, logins, strict=True):
        for problem in (_privilege_problem(grant, groups, schemas), login_problem):
            if problem is not None:
                result.problems.append(problem)
    return result


def require(verification: Verification) -> None:
    problems = list(verification.problems)
    if verification.missing_tables:
        problems.insert(0, "missing tables: " + ", ".join(verification.missing_tables))
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise VerificationFailed("verification failed: " + "; ".join(shown))
