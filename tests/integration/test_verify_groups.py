"""verify() on many tables: privileges evaluated once per group of alike tables, checked against PostgreSQL's
own answer table by table, against a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from psycopg2 import sql
from pydantic import SecretStr

from functions import database as db
from functions.database.verification import PrivilegeGroup, Verification, privilege_groups
from integration.world import held_privileges
from schemas.config import PRIVILEGES, DbUser

pytestmark = pytest.mark.integration

SCHEMAS = ("grp_a", "grp_b", "grp_c")
PER_SCHEMA = 40
SEED_SCHEMAS = ("app_schema", "public")
ALL_SCHEMAS = [*SCHEMAS, *SEED_SCHEMAS]


def user_grants(count: int, limited: bool = True) -> list[db.UserGrant]:
    """Two privilege sets; with `limited`, the third user is limited to grp_a."""
    return [
        db.UserGrant(
            DbUser(
                username=f"vg_{index:02d}",
                password=SecretStr("unused"),
                privileges=["SELECT"] if index % 2 else ["SELECT", "INSERT", "UPDATE", "DELETE"],
                schemas=["grp_a"] if index == 2 and limited else None,
            ),
            SecretStr(f"pw-{index}"),
        )
        for index in range(count)
    ]


@pytest.fixture
def many_tables(postgres: Any, database: str) -> list[str]:
    """PER_SCHEMA tables in each of SCHEMAS, beside the seed's."""
    conn = postgres.connect(database)
    try:
        with conn.cursor() as cursor:
            for schema in SCHEMAS:
                cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
                cursor.execute(
                    sql.SQL(";").join(
                        sql.SQL("CREATE TABLE {}.{} (id int)").format(
                            sql.Identifier(schema), sql.Identifier(f"t_{index:03d}")
                        )
                        for index in range(PER_SCHEMA)
                    )
                )
    finally:
        conn.close()
    return [f"{schema}.t_{index:03d}" for schema in SCHEMAS for index in range(PER_SCHEMA)]


def set_up(postgres: Any, database: str, grants: list[db.UserGrant]) -> None:
    conn = postgres.connect(database, autocommit=False)
    try:
        db.setup_users(conn, database, grants)
    finally:
        conn.close()


@contextmanager
def cursor_on(postgres: Any, database: str) -> Iterator[Any]:
    conn = postgres.connect(database)
    try:
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.close()


def run_sql(postgres: Any, database: str, *statements: str) -> None:
    with cursor_on(postgres, database) as cursor:
        for statement in statements:
            cursor.execute(statement)


def verify(postgres: Any, database: str, grants: list[db.UserGrant], expected: list[str]) -> Verification:
    conn = postgres.connect(database, autocommit=False)
    try:
        return db.verify(conn, db.Endpoint(postgres.host, postgres.port, database), grants, expected)
    finally:
        conn.close()


def table_by_table(postgres: Any, database: str, usernames: list[str]) -> dict[str, dict[str, set[str]]]:
    """PostgreSQL's own answer, one has_table_privilege() per user, table and privilege."""
    with cursor_on(postgres, database) as cursor:
        cursor.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)",
            (ALL_SCHEMAS,),
        )
        tables = [row[0] for row in cursor.fetchall()]
        held: dict[str, dict[str, set[str]]] = {name: {} for name in usernames}
        for user in usernames:
            for table in tables:
                for privilege in PRIVILEGES:
                    cursor.execute("SELECT has_table_privilege(%s, %s, %s)", (user, table, privilege))
                    if cursor.fetchone()[0]:
                        held[user].setdefault(table, set()).add(privilege)
        return held


def groups(postgres: Any, database: str, usernames: list[str]) -> list[PrivilegeGroup]:
    with cursor_on(postgres, database) as cursor:
        return privilege_groups(cursor, usernames, ALL_SCHEMAS)


def held(postgres: Any, database: str, usernames: list[str]) -> dict[str, dict[str, set[str]]]:
    with cursor_on(postgres, database) as cursor:
        return held_privileges(cursor, usernames, ALL_SCHEMAS)


def test_tables_granted_alike_form_one_group_and_agree_with_postgres_table_by_table(
    postgres: Any, database: str, many_tables: list[str]
) -> None:
    # Given three users set up on 120 tables in three schemas (and the seed's three)
    grants = user_grants(3)
    set_up(postgres, database, grants)
    names = [grant.user.username for grant in grants]

    # When the privileges are read in groups
    found = groups(postgres, database, names)

    # Then the 123 tables fall into a handful of groups, one per distinct ACL and owner...
    assert sum(len(group.tables) for group in found) == len(many_tables) + 3
    assert len(found) <= 6
    # ...and what each user holds on each table is what PostgreSQL answers for that table
    assert held(postgres, database, names) == table_by_table(postgres, database, names)
    assert verify(postgres, database, grants, many_tables).problems == []


def test_one_table_granted_differently_among_many_is_the_one_named(
    postgres: Any, database: str, many_tables: list[str]
) -> None:
    # Given the users were set up, and then vg_01 (SELECT only) got UPDATE on one table of grp_b
    grants = user_grants(3)
    set_up(postgres, database, grants)
    run_sql(postgres, database, "GRANT UPDATE ON grp_b.t_017 TO vg_01")

    # When verify runs
    result = verify(postgres, database, grants, many_tables)

    # Then exactly that user and table are named
    assert result.problems == ["vg_01 on grp_b.t_017: holds ['SELECT', 'UPDATE'], expected ['SELECT']"]


def test_privileges_held_through_a_group_role_or_as_owner_are_seen(
    postgres: Any, database: str, many_tables: list[str]
) -> None:
    # Given the users were set up; then vg_01 joined a role that may TRUNCATE every table of grp_c, and
    # vg_00 was made the owner of one table of grp_a (an owner holds every privilege)
    grants = user_grants(3)
    set_up(postgres, database, grants)
    run_sql(
        postgres,
        database,
        "CREATE ROLE vg_truncaters NOLOGIN",
        "GRANT TRUNCATE ON ALL TABLES IN SCHEMA grp_c TO vg_truncaters",
        "GRANT vg_truncaters TO vg_01",
        "ALTER TABLE grp_a.t_005 OWNER TO vg_00",
    )
    names = [grant.user.username for grant in grants]

    # When verify runs
    result = verify(postgres, database, grants, many_tables)

    # Then both are named at the first table where they hold more, as PostgreSQL itself answers
    assert result.problems == [
        f"vg_00 on grp_a.t_005: holds {sorted(PRIVILEGES)}, expected ['DELETE', 'INSERT', 'SELECT', 'UPDATE']",
        "vg_01 on grp_c.t_000: holds ['SELECT', 'TRUNCATE'], expected ['SELECT']",
    ]
    assert held(postgres, database, names) == table_by_table(postgres, database, names)


def test_users_who_cannot_log_in_are_named_in_the_users_order(postgres: Any, database: str) -> None:
    # Given twelve users set up, and then two of them given another password in the database
    grants = user_grants(12, limited=False)
    set_up(postgres, database, grants)
    run_sql(postgres, database, "ALTER ROLE vg_09 PASSWORD 'changed'", "ALTER ROLE vg_04 PASSWORD 'changed'")

    # When verify runs
    result = verify(postgres, database, grants, [])

    # Then those two, and only they, cannot log in, named in the users' order
    assert [problem.split(":")[0] for problem in result.problems] == [
        "vg_04 cannot log in",
        "vg_09 cannot log in",
    ]


def test_a_schema_with_a_dot_in_its_name_is_verified_as_itself(postgres: Any, database: str) -> None:
    # Given the restored database has a schema whose name holds a dot (a table "a.b.c" is not schema "a")
    run_sql(postgres, database, 'CREATE SCHEMA "app.v2"', 'CREATE TABLE "app.v2".orders (id int)')
    grants = user_grants(2, limited=False)
    set_up(postgres, database, grants)

    # When verify runs
    result = verify(postgres, database, grants, ["app.v2.orders"])

    # Then the users hold their privileges there as everywhere else, and nothing is reported
    assert ("app.v2", "orders") in [(t["schema"], t["name"]) for t in result.tables]
    assert result.problems == [] and result.missing_tables == []
