"""The database adapter (psycopg2): users and grants in one transaction, verification from the catalog.

Identifiers reach SQL only through psycopg2.sql.Identifier and privileges only from the whitelist.
Passwords are sent as SCRAM-SHA-256 verifiers computed here, so no plaintext password is ever part of a
statement the server could log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import psycopg2.errors
from psycopg2 import sql
from pydantic import SecretStr

from functions.errors import DatabaseError, InvalidRequest, VerificationFailed
from schemas.config import PRIVILEGES, DbUser

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
SCRAM_ITERATIONS = 4096
STATEMENTS_PER_ROUND_TRIP = 200


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


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores (RFC 5802/7677), as `\\password` computes it."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
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


def role_statement(grant: UserGrant, exists: bool, verifier: str) -> sql.Composable:
    verb = sql.SQL("ALTER ROLE") if exists else sql.SQL("CREATE ROLE")
    return sql.SQL("{} {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
        verb, sql.Identifier(grant.user.username), sql.Literal(verifier)
    )


def setup_statements(
    grants: Sequence[UserGrant], existing: set[str], dbname: str, schemas: Sequence[str]
) -> list[sql.Composable]:
    """Every role with its password, then each schema's grants to all the users it concerns at once.

    One GRANT per (schema, privilege set) names every role that gets it, so a table's ACL is rewritten a
    handful of times rather than once per user: 1,000 users cost what a few do.
    """
    granting = grant_statements(grants, dbname, schemas)
    # PBKDF2 releases the GIL: the verifiers of many users are computed side by side.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        verifiers = list(pool.map(lambda grant: scram_verifier(grant.password.get_secret_value()), grants))
    roles = [
        role_statement(grant, grant.user.username in existing, secret)
        for grant, secret in zip(grants, verifiers, strict=True)
    ]
    return roles + granting


def grant_statements(
    grants: Sequence[UserGrant], dbname: str, schemas: Sequence[str]
) -> list[sql.Composable]:
    """CONNECT, then per schema: revoke everything, grant usage and each privilege set (see setup_statements)."""
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
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(name, roles),
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} REVOKE ALL ON TABLES FROM {}").format(name, roles),
            sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(name, roles),
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
                sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(granted, name, group_roles),
                sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT {} ON TABLES TO {}").format(
                    name, granted, group_roles
                ),
            ]
        inserters = [grant for grant in members if "INSERT" in grant.user.privileges]
        if inserters:
            # INSERT into a serial/identity column calls nextval(): without USAGE on the sequence it fails.
            statements += [
                sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(name, _roles(inserters)),
                sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT USAGE ON SEQUENCES TO {}").format(
                    name, _roles(inserters)
                ),
            ]
    return statements


def user_statements(
    grant: UserGrant, exists: bool, dbname: str, schemas: Sequence[str]
) -> list[sql.Composable]:
    """One user's statements (the same SQL as setup_statements, for a single user)."""
    return setup_statements([grant], {grant.user.username} if exists else set(), dbname, schemas)


def setup_users(conn: Any, dbname: str, grants: Sequence[UserGrant]) -> list[str]:
    """Create or update every role with its password and exactly its privileges, in one transaction."""
    names = [grant.user.username for grant in grants]
    try:
        with conn:
            with conn.cursor() as cursor:
                schemas = application_schemas(cursor)
                missing = sorted({s for g in grants for s in (g.user.schemas or []) if s not in schemas})
                if missing:
                    raise InvalidRequest(f"schemas named for DB users do not exist: {', '.join(missing)}")
                cursor.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (names,))
                existing = {row[0] for row in cursor.fetchall()}
                _execute_batched(cursor, setup_statements(grants, existing, dbname, schemas))
    except psycopg2.Error as exc:
        # A concurrent run creating the same role, or a serialization conflict: running again succeeds.
        conflict = isinstance(exc, psycopg2.errors.UniqueViolation | psycopg2.errors.TransactionRollbackError)
        raise DatabaseError(
            f"setting up DB users failed and was rolled back: {_pg_message(exc)}", retryable=conflict
        ) from exc
    return schemas


def _execute_batched(cursor: Any, statements: Sequence[sql.Composable]) -> None:
    for start in range(0, len(statements), STATEMENTS_PER_ROUND_TRIP):
        chunk = statements[start : start + STATEMENTS_PER_ROUND_TRIP]
        cursor.execute(sql.SQL(";\n").join(chunk))


def _pg_message(exc: psycopg2.Error) -> str:
    # The primary message only: never the statement text, which may carry a password verifier.
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


def held_privileges(
    cursor: Any, usernames: Sequence[str], schemas: Sequence[str]
) -> dict[str, dict[str, set[str]]]:
    """For each user, each table (schema.name) and the whitelisted privileges it holds, in one query."""
    cursor.execute(
        "SELECT r.rolname, n.nspname || '.' || c.relname, p.privilege "
        "FROM pg_roles r CROSS JOIN pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "CROSS JOIN unnest(%s::text[]) AS p(privilege) "
        "WHERE r.rolname = ANY(%s) AND c.relkind IN ('r', 'p') AND n.nspname = ANY(%s) "
        "AND has_table_privilege(r.oid, c.oid, p.privilege)",
        (list(PRIVILEGES), list(usernames), list(schemas)),
    )
    held: dict[str, dict[str, set[str]]] = {name: {} for name in usernames}
    for role, table, privilege in cursor.fetchall():
        held[role].setdefault(table, set()).add(privilege)
    return held


def verify(
    conn: Any,
    endpoint: Endpoint,
    grants: Sequence[UserGrant],
    expected_tables: Iterable[str],
) -> Verification:
    """Schemas and tables from the catalog, expected tables present, each user logs in with exactly its grants."""
    try:
        with conn:
            with conn.cursor() as cursor:
                schemas, tables = catalog(cursor)
                held = held_privileges(cursor, [g.user.username for g in grants], schemas)
    except psycopg2.Error as exc:
        raise DatabaseError(f"reading the catalog failed: {_pg_message(exc)}") from exc
    result = Verification(schemas=schemas, tables=tables)
    present = {f"{t['schema']}.{t['name']}" for t in tables}
    result.missing_tables = sorted(set(expected_tables) - present)
    for grant in grants:
        user = grant.user
        wanted = set(user.privileges)
        scope = set(user.schemas or schemas)
        for table in sorted(present):
            have = held[user.username].get(table, set())
            expected = wanted if table.split(".", 1)[0] in scope else set()
            if have != expected:
                result.problems.append(
                    f"{user.username} on {table}: holds {sorted(have) or 'nothing'}, expected {sorted(expected) or 'nothing'}"
                )
                break
        try:
            login = connect(endpoint, user.username, grant.password, timeout=5)
        except DatabaseError as exc:
            result.problems.append(f"{user.username} cannot log in: {exc.message}")
            continue
        try:
            with login.cursor() as cursor:
                cursor.execute("SELECT current_user")
                (who,) = cursor.fetchone()
                if who != user.username:
                    result.problems.append(f"{user.username} logged in as {who}")
        finally:
            login.close()
    return result


def require(verification: Verification) -> None:
    problems = list(verification.problems)
    if verification.missing_tables:
        problems.insert(0, "missing tables: " + ", ".join(verification.missing_tables))
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise VerificationFailed("verification failed: " + "; ".join(shown))
