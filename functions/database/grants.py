"""Role and grant statements for the DB users, built from what they hold now in the catalog."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from psycopg2 import sql
from pydantic import SecretStr

from functions.database.scram import scram_verifier
from functions.errors import InvalidRequest
from schemas.config import PRIVILEGES, DbUser

# Identifiers reach SQL only through psycopg2.sql.Identifier, and privileges only from the whitelist.

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
TABLES, SEQUENCES = "tables", "sequences"


@dataclass
class UserGrant:
    """One user to set up, with the password read for it."""

    user: DbUser
    password: SecretStr


def application_schemas(cursor: Any) -> list[str]:
    cursor.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname <> ALL(%s) AND nspname NOT LIKE 'pg\\_%%' ORDER BY nspname",
        (list(SYSTEM_SCHEMAS),),
    )
    return [row[0] for row in cursor.fetchall()]


def privilege_list(user: DbUser) -> sql.Composable:
    """The user's privileges as SQL; InvalidRequest for one not in the whitelist."""
    for privilege in user.privileges:
        if privilege not in PRIVILEGES:
            raise InvalidRequest(f"privilege {privilege!r} of {user.username} is not in the whitelist")
    return sql.SQL(", ").join(sql.SQL(privilege) for privilege in user.privileges)


def _roles(grants: Sequence[UserGrant]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(grant.user.username) for grant in grants)


def role_statement(grant: UserGrant, existing: Mapping[str, bool], verifier: str) -> sql.Composable:
    """CREATE ROLE, or ALTER ROLE for one of `existing` (role name -> whether it is a superuser now).

    The password goes as its SCRAM-SHA-256 `verifier`, never as plaintext the server could log.
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


def user_statements(
    grant: UserGrant, exists: bool, dbname: str, schemas: Sequence[str]
) -> list[sql.Composable]:
    """One user's statements (the same SQL as setup_statements, for a single user)."""
    roles, granting = setup_statements(
        [grant], {grant.user.username: False} if exists else {}, dbname, schemas
    )
    return roles + granting


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
    privileges = {grant.user.username: privilege_list(grant.user) for grant in grants}
    statements.append(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(dbname), _roles(grants))
    )
    by_schema: dict[str, list[UserGrant]] = {}
    for grant in grants:
        for schema in grant.user.schemas or schemas:
            by_schema.setdefault(schema, []).append(grant)
    for schema, members in by_schema.items():
        statements += _schema_statements(holdings, schema, members, privileges)
    return statements


def _schema_statements(
    holdings: Holdings | None,
    schema: str,
    members: Sequence[UserGrant],
    privileges: Mapping[str, sql.Composable],
) -> list[sql.Composable]:
    """One schema's share of grant_statements: revoke, usage, each privilege set, sequences for inserters."""
    name, roles = sql.Identifier(schema), _roles(members)
    statements = [
        *_revoke_all(holdings, schema, TABLES, members),
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} REVOKE ALL ON TABLES FROM {}").format(name, roles),
        *_revoke_all(holdings, schema, SEQUENCES, members),
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} REVOKE ALL ON SEQUENCES FROM {}").format(name, roles),
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
