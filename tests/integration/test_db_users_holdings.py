"""setup_users leaves out of REVOKE/GRANT ... ON ALL the users already holding exactly their privileges:
the ACLs it leaves must be the ones revoking and granting everything leaves, from any starting state,
against a real PostgreSQL server (two copies of the same database, one set up each way). And setup as a
master like Aurora's (CREATEROLE, not superuser, not always the owner): roles that exist are updated,
and a grant the master may make only in part fails and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql
from pydantic import SecretStr

from functions import database as db
from functions.database.grants import TABLES, Holdings, application_schemas, grant_statements, read_holdings
from functions.errors import DatabaseError
from schemas.config import DbUser

pytestmark = pytest.mark.integration

SCHEMAS = ["app_schema", "public"]


def user_grants() -> list[db.UserGrant]:
    def grant(name: str, privileges: list[str], schemas: list[str] | None = None) -> db.UserGrant:
        user = DbUser(username=name, password=SecretStr("unused"), privileges=privileges, schemas=schemas)
        return db.UserGrant(user, SecretStr(f"pw-{name}"))

    return [
        grant("hold_reader", ["SELECT"]),
        grant("hold_writer", ["SELECT", "INSERT", "UPDATE", "DELETE"]),
        grant("hold_limited", ["SELECT"], ["app_schema"]),
    ]


# Starting states, applied alike to both copies. "IN PLACE" is what setting up everything leaves.
IN_PLACE = "IN PLACE"
SCENARIOS: dict[str, list[str]] = {
    "new users": [],
    "users without privileges": ["CREATE ROLES"],
    "all in place": ["CREATE ROLES", IN_PLACE],
    "an extra privilege": [
        "CREATE ROLES",
        IN_PLACE,
        "GRANT TRUNCATE ON public.users TO hold_reader",
    ],
    "a missing privilege": ["CREATE ROLES", IN_PLACE, "REVOKE SELECT ON public.products FROM hold_writer"],
    "a grant option": [
        "CREATE ROLES",
        IN_PLACE,
        "GRANT SELECT ON public.users TO hold_reader WITH GRANT OPTION",
    ],
    "only a column privilege": ["CREATE ROLES", "GRANT UPDATE (email) ON public.users TO hold_reader"],
    "a column privilege": ["CREATE ROLES", IN_PLACE, "GRANT UPDATE (email) ON public.users TO hold_reader"],
    "another grantor": [
        "CREATE ROLES",
        IN_PLACE,
        "GRANT SELECT ON public.users TO hold_helper WITH GRANT OPTION",
        "SET ROLE hold_helper",
        "GRANT SELECT ON public.users TO hold_reader",
        "RESET ROLE",
    ],
    "a sequence held by a reader": [
        "CREATE ROLES",
        IN_PLACE,
        "GRANT USAGE ON public.users_id_seq TO hold_reader",
    ],
    "a sequence missing for a writer": [
        "CREATE ROLES",
        IN_PLACE,
        "REVOKE USAGE ON public.users_id_seq FROM hold_writer",
    ],
    "a user owning a table": ["CREATE ROLES", IN_PLACE, "ALTER TABLE public.products OWNER TO hold_reader"],
    "another owner": ["CREATE ROLES", IN_PLACE, "ALTER TABLE app_schema.orders OWNER TO hold_helper"],
    "privileges outside a user's schemas": [
        "CREATE ROLES",
        IN_PLACE,
        "GRANT SELECT ON public.users TO hold_limited",
    ],
    "a view and a new table": [
        "CREATE ROLES",
        IN_PLACE,
        "CREATE VIEW public.emails AS SELECT email FROM public.users",
        "CREATE TABLE app_schema.later (id serial)",
    ],
    # Set up by a master that neither owns the tables nor is superuser (as Aurora's master often is not):
    # its GRANT is by itself, not by the owner who granted what the users hold.
    "a master that does not own the tables": [
        "CREATE MASTER",
        "SET ROLE hold_master",
        "CREATE ROLES",
        "RESET ROLE",
        IN_PLACE,
        "GRANT ALL ON SCHEMA app_schema, public TO hold_master WITH GRANT OPTION",
        "GRANT ALL ON ALL TABLES IN SCHEMA app_schema, public TO hold_master WITH GRANT OPTION",
        "GRANT ALL ON ALL SEQUENCES IN SCHEMA app_schema, public TO hold_master WITH GRANT OPTION",
        "DO $$ BEGIN EXECUTE format('GRANT ALL ON DATABASE %I TO hold_master WITH GRANT OPTION', "
        "current_database()); END $$",
    ],
}
MASTER, MASTER_PASSWORD = "hold_master", "pw-hold-master"


@pytest.fixture
def twin(postgres: Any, database: str) -> Iterator[str]:
    """A second copy of the seeded database (the `database` fixture drops the roles afterwards)."""
    name = f"twin_{uuid.uuid4().hex[:10]}"
    admin = postgres.connect()
    try:
        with admin.cursor() as cursor:
            cursor.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE restore_template").format(sql.Identifier(name))
            )
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


def prepare(postgres: Any, dbname: str, steps: list[str], grants: list[db.UserGrant]) -> None:
    conn = postgres.connect(dbname)
    try:
        with conn.cursor() as cursor:
            for step in steps:
                if step == "CREATE ROLES":
                    for name in ("hold_helper", *(g.user.username for g in grants)):
                        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
                        if cursor.fetchone() is None:
                            cursor.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
                elif step == "CREATE MASTER":
                    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (MASTER,))
                    if cursor.fetchone() is None:
                        cursor.execute(
                            sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                                sql.Identifier(MASTER), sql.Literal(MASTER_PASSWORD)
                            )
                        )
                elif step == IN_PLACE:
                    for statement in grant_statements(grants, dbname, SCHEMAS):
                        cursor.execute(statement)
                else:
                    cursor.execute(step)
    finally:
        conn.close()


def master_of(postgres: Any, scenario: str) -> Callable[[str], Any]:
    """Connections as the scenario's master: the server's superuser, or MASTER when it creates one."""
    if "CREATE MASTER" not in SCENARIOS[scenario]:
        return lambda dbname: postgres.connect(dbname, autocommit=False)
    return lambda dbname: psycopg2.connect(
        host=postgres.host, port=postgres.port, dbname=dbname, user=MASTER, password=MASTER_PASSWORD
    )


def everything_revoked_and_granted(
    connect: Callable[[str], Any], dbname: str, grants: list[db.UserGrant]
) -> None:
    conn = connect(dbname)
    try:
        with conn, conn.cursor() as cursor:
            for statement in grant_statements(grants, dbname, application_schemas(cursor)):
                cursor.execute(statement)
    finally:
        conn.close()


def acls(postgres: Any, dbname: str) -> dict[str, list[str]]:
    """Every object's and column's ACL (the default one when none is stored), items sorted; default ACLs."""
    conn = postgres.connect(dbname)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                """
                SELECT n.nspname || '.' || c.relname, array(
                    SELECT unnest(coalesce(c.relacl, acldefault(
                        (CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner)))::text
                    ORDER BY 1)
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
                UNION ALL
                SELECT n.nspname || '.' || c.relname || '.' || a.attname,
                       array(SELECT unnest(a.attacl)::text ORDER BY 1)
                FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = ANY(%(schemas)s) AND a.attacl IS NOT NULL
                UNION ALL
                SELECT 'default ' || coalesce(n.nspname, '') || ' ' || d.defaclrole::regrole::text || ' '
                       || d.defaclobjtype::text, array(SELECT unnest(d.defaclacl)::text ORDER BY 1)
                FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
                """,
                {"schemas": SCHEMAS},
            )
            return dict(cursor.fetchall())
    finally:
        conn.close()


# The roles on several connections, the grants after them: the holdings are read in the grants' transaction.
PATHS = [(scenario, False) for scenario in SCENARIOS] + [
    (scenario, True)
    for scenario in ("new users", "all in place", "an extra privilege", "a sequence held by a reader")
]


@pytest.mark.parametrize(
    ("scenario", "parallel"),
    PATHS,
    ids=[f"{s}, {'several connections' if p else 'one transaction'}" for s, p in PATHS],
)
def test_the_acls_are_those_revoking_and_granting_everything_leaves(
    postgres: Any, database: str, twin: str, scenario: str, parallel: bool
) -> None:
    grants = user_grants()
    for dbname in (database, twin):
        prepare(postgres, dbname, SCENARIOS[scenario], grants)
    connect = master_of(postgres, scenario)
    conn = connect(database)
    try:
        db.setup_users(
            conn,
            database,
            grants,
            connect=lambda: connect(database),
            parallel_threshold=0 if parallel else None,
        )
    finally:
        conn.close()
    everything_revoked_and_granted(connect, twin, grants)

    assert acls(postgres, database) == acls(postgres, twin)


def statements_now(postgres: Any, dbname: str, grants: list[db.UserGrant]) -> list[str]:
    conn = postgres.connect(dbname)
    try:
        with conn.cursor() as cursor:
            holdings = read_holdings(cursor, grants, SCHEMAS)
            return [s.as_string(conn) for s in grant_statements(grants, dbname, SCHEMAS, holdings)]
    finally:
        conn.close()


def on_all(statements: list[str]) -> list[str]:
    return [s for s in statements if " ON ALL " in s]


def test_users_in_place_are_neither_revoked_nor_granted_on_every_object_again(
    postgres: Any, database: str
) -> None:
    grants = user_grants()
    prepare(postgres, database, ["CREATE ROLES", IN_PLACE], grants)

    assert on_all(statements_now(postgres, database, grants)) == []


def test_only_the_user_out_of_place_is_revoked_and_granted_again(postgres: Any, database: str) -> None:
    grants = user_grants()
    prepare(
        postgres,
        database,
        ["CREATE ROLES", IN_PLACE, "GRANT TRUNCATE ON public.users TO hold_reader"],
        grants,
    )

    assert on_all(statements_now(postgres, database, grants)) == [
        'REVOKE ALL ON ALL TABLES IN SCHEMA "public" FROM "hold_reader"',
        'GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "hold_reader"',
    ]


def test_new_users_are_granted_without_a_revoke(postgres: Any, database: str) -> None:
    grants = user_grants()
    prepare(postgres, database, ["CREATE ROLES"], grants)

    statements = on_all(statements_now(postgres, database, grants))
    assert statements and not [s for s in statements if s.startswith("REVOKE")]
    assert 'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "public" TO "hold_writer"' in statements


# -- a master like Aurora's: CREATEROLE, not superuser ------------------------------------------------------------
def test_a_master_that_is_not_superuser_updates_the_roles_that_exist(postgres: Any, database: str) -> None:
    """ALTER ROLE naming NOSUPERUSER is refused to anyone but a superuser: the second run failed on Aurora."""
    grants = user_grants()
    prepare(postgres, database, SCENARIOS["a master that does not own the tables"], grants)
    as_master = master_of(postgres, "a master that does not own the tables")
    changed = [db.UserGrant(g.user, SecretStr(f"changed-{g.user.username}")) for g in grants]
    for run in (grants, changed):
        conn = as_master(database)
        try:
            db.setup_users(conn, database, run)
        finally:
            conn.close()

    reader = psycopg2.connect(
        host=postgres.host,
        port=postgres.port,
        dbname=database,
        user="hold_reader",
        password="changed-hold_reader",
    )
    reader.close()


def test_a_superuser_master_still_takes_superuser_from_a_configured_user(
    postgres: Any, database: str
) -> None:
    grants = user_grants()
    prepare(postgres, database, ["CREATE ROLES", "ALTER ROLE hold_reader SUPERUSER"], grants)
    conn = postgres.connect(database, autocommit=False)
    try:
        db.setup_users(conn, database, grants)
        with conn.cursor() as cursor:
            cursor.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'hold\\_%' AND rolsuper")
            assert cursor.fetchall() == []
    finally:
        conn.close()


NO_GRANT_OPTION = "REVOKE GRANT OPTION FOR ALL ON public.products FROM hold_master"
MASTER_SHORT_OF_GRANTS = {
    # PostgreSQL revokes or grants what it may, warns and goes on: the users would have been left short
    "users in place, a privilege without its grant option": (True, NO_GRANT_OPTION, 'revoked for "products"'),
    "new users, a privilege without its grant option": (False, NO_GRANT_OPTION, 'granted for "products"'),
    # PostgreSQL refuses outright
    "no privilege at all": (True, "REVOKE ALL ON public.products FROM hold_master", "permission denied"),
}


@pytest.mark.parametrize("case", list(MASTER_SHORT_OF_GRANTS))
def test_a_master_that_may_not_grant_on_a_table_fails_saying_so_and_changes_nothing(
    postgres: Any, database: str, case: str
) -> None:
    grants = user_grants()
    in_place, taken_away, said = MASTER_SHORT_OF_GRANTS[case]
    steps = SCENARIOS["a master that does not own the tables"]
    prepare(
        postgres, database, [step for step in steps if in_place or step != IN_PLACE] + [taken_away], grants
    )
    before = acls(postgres, database)
    conn = master_of(postgres, "a master that does not own the tables")(database)
    try:
        with pytest.raises(DatabaseError) as raised:
            db.setup_users(conn, database, grants)
    finally:
        conn.close()

    assert said in raised.value.message and "WITH GRANT OPTION" in raised.value.message
    assert not raised.value.retryable
    assert acls(postgres, database) == before


def test_a_user_whose_holdings_were_not_read_is_revoked_and_granted_as_without_holdings(
    postgres: Any,
) -> None:
    unread = user_grants()[:1]
    holdings = Holdings(held={}, objects={("public", TABLES): 3})
    conn = postgres.connect()
    try:
        statements = [s.as_string(conn) for s in grant_statements(unread, "restored", ["public"], holdings)]
    finally:
        conn.close()

    assert on_all(statements) == [
        'REVOKE ALL ON ALL TABLES IN SCHEMA "public" FROM "hold_reader"',
        'GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "hold_reader"',
    ]
