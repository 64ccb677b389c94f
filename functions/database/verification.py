"""Verifying a restore from the catalog: schemas, expected tables, each user's privileges and login."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import psycopg2

from functions.database.connection import Endpoint, connect, server_message
from functions.database.grants import UserGrant, application_schemas
from functions.errors import DatabaseError, VerificationFailed
from schemas.config import PRIVILEGES

# How many users verify_restore logs in at once.
LOGIN_WORKERS = 8


@dataclass
class Verification:
    """What verification found in the catalog: schemas, tables, and what is missing or wrong."""

    schemas: list[str]
    tables: list[dict[str, str]]
    missing_tables: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


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
        raise DatabaseError(f"reading the catalog failed: {server_message(exc)}") from exc
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
