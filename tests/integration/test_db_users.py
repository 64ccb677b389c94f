"""setup_db_users and verify_restore against a real PostgreSQL server loaded with the seed schema."""

from __future__ import annotations

import json
from typing import Any

import psycopg2
import pytest
from psycopg2 import errors

from integration.world import MASTER_SECRET_ID, RUNBOOK_USERS, TARGET_REGION, World, roles
from schemas.config import PRIVILEGES

pytestmark = pytest.mark.integration

OPERATION = "dev-restore-db-users"
SEED_TABLES = ("app_schema.orders", "public.products", "public.users")


def login(postgres: Any, dbname: str, user: str, password: str) -> Any:
    conn = psycopg2.connect(
        host=postgres.host, port=postgres.port, dbname=dbname, user=user, password=password, connect_timeout=5
    )
    conn.autocommit = True
    return conn


def privileges(postgres: Any, dbname: str, role: str) -> dict[str, set[str]]:
    """Each seed table and the whitelisted privileges `role` holds on it, from the catalog."""
    conn = postgres.connect(dbname)
    try:
        with conn.cursor() as cursor:
            found: dict[str, set[str]] = {}
            for table in SEED_TABLES:
                found[table] = set()
                for privilege in PRIVILEGES:
                    cursor.execute("SELECT has_table_privilege(%s, %s, %s)", (role, table, privilege))
                    if cursor.fetchone()[0]:
                        found[table].add(privilege)
            return found
    finally:
        conn.close()


def user_rows(postgres: Any, dbname: str) -> int:
    conn = postgres.connect(dbname)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM public.users")
            return int(cursor.fetchone()[0])
    finally:
        conn.close()


def test_each_user_logs_in_with_its_password_and_holds_exactly_its_privileges(
    world: World, postgres: Any
) -> None:
    # Given an operation at setup_db_users and the runbook's two users
    world.seed_operation(OPERATION, "setup_db_users")

    # When setup_db_users runs
    response = world.invoke("setup_db_users", {"operation_id": OPERATION})

    # Then each user logs in with its password
    assert response["status"] == "success", response
    for user in RUNBOOK_USERS:
        conn = login(postgres, world.database, user["username"], user["password"])
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT current_user, rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user"
            )
            assert cursor.fetchone() == (user["username"], False, False)
        conn.close()
    # And holds exactly its privileges on every seed table
    assert privileges(postgres, world.database, "app_user") == {
        table: {"SELECT", "INSERT", "UPDATE", "DELETE"} for table in SEED_TABLES
    }
    assert privileges(postgres, world.database, "readonly_user") == {
        table: {"SELECT"} for table in SEED_TABLES
    }
    # And the database enforces them
    readonly = login(postgres, world.database, "readonly_user", "readonly_password")
    with readonly.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM app_schema.orders")
        assert cursor.fetchone()[0] == 2
        with pytest.raises(errors.InsufficientPrivilege):
            cursor.execute("INSERT INTO public.products (name, price_cents) VALUES ('x', 1)")
    readonly.close()
    app = login(postgres, world.database, "app_user", "app_password")
    with app.cursor() as cursor:
        cursor.execute("INSERT INTO public.products (name, price_cents) VALUES ('sprocket', 5)")
        with pytest.raises(errors.InsufficientPrivilege):
            cursor.execute("TRUNCATE public.products CASCADE")
    app.close()


def test_a_wrong_password_is_refused(world: World, postgres: Any) -> None:
    # Given the users are set up
    world.seed_operation(OPERATION, "setup_db_users")
    assert world.invoke("setup_db_users", {"operation_id": OPERATION})["status"] == "success"

    # When app_user tries another user's password
    # Then the server refuses the login
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        login(postgres, world.database, "app_user", "readonly_password")


def test_a_rerun_updates_a_changed_password(world: World, postgres: Any) -> None:
    # Given one operation set up the users
    world.seed_operation(OPERATION, "setup_db_users")
    assert world.invoke("setup_db_users", {"operation_id": OPERATION})["status"] == "success"

    # When app_user's password changes and the next operation sets up the users again
    changed = [dict(RUNBOOK_USERS[0], password="app_password_2"), RUNBOOK_USERS[1]]
    world.put_db_users(changed)
    world.seed_operation(f"{OPERATION}-again", "setup_db_users")
    response = world.invoke("setup_db_users", {"operation_id": f"{OPERATION}-again"})

    # Then the new password logs in, the old one no longer does, and the privileges are unchanged
    assert response["status"] == "success", response
    login(postgres, world.database, "app_user", "app_password_2").close()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        login(postgres, world.database, "app_user", "app_password")
    assert privileges(postgres, world.database, "app_user")["public.users"] == {
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
    }


def test_a_rerun_with_fewer_privileges_revokes_the_rest(world: World, postgres: Any) -> None:
    # Given app_user was set up with SELECT, INSERT, UPDATE, DELETE
    world.seed_operation(OPERATION, "setup_db_users")
    assert world.invoke("setup_db_users", {"operation_id": OPERATION})["status"] == "success"

    # When the next operation gives it SELECT only
    world.put_db_users([dict(RUNBOOK_USERS[0], privileges=["SELECT"]), RUNBOOK_USERS[1]])
    world.seed_operation(f"{OPERATION}-again", "setup_db_users")
    assert world.invoke("setup_db_users", {"operation_id": f"{OPERATION}-again"})["status"] == "success"

    # Then it holds exactly SELECT
    assert privileges(postgres, world.database, "app_user") == {table: {"SELECT"} for table in SEED_TABLES}


@pytest.mark.parametrize(
    ("bad_user", "named"),
    [
        (
            {
                "username": 'x"; DROP TABLE users; --',
                "password": "injected-password",
                "privileges": ["SELECT"],
            },
            "username",
        ),
        (
            {"username": "mallory", "password": "mallory-password", "privileges": ["SELECT", "SUPERUSER"]},
            "privileges",
        ),
        (
            {"username": "mallory", "password": "mallory-password", "privileges": ["ALL PRIVILEGES"]},
            "privileges",
        ),
    ],
    ids=["injected-username", "unknown-privilege", "all-privileges"],
)
def test_a_bad_user_is_refused_and_nothing_is_created(
    world: World, postgres: Any, bad_user: dict[str, Any], named: str
) -> None:
    # Given the users parameter holds one bad user next to a good one
    world.put_db_users([RUNBOOK_USERS[1], bad_user])
    world.seed_operation(OPERATION, "setup_db_users")

    # When setup_db_users runs
    response = world.invoke("setup_db_users", {"operation_id": OPERATION})

    # Then it is refused with an error naming the field, and the operation is recorded failed
    assert response["status"] == "error"
    assert response["error"]["type"] == "ConfigError"
    assert "invalid DB users" in response["message"] and named in response["message"]
    state = world.state(OPERATION)
    assert state is not None and state["status"] == "failed"
    assert state["error"]["message"] == response["message"]
    # And no role was created (not even the good one), and the seed data is intact
    assert roles(postgres) == set()
    assert user_rows(postgres, world.database) == 2
    # And the password of the refused user is not echoed back
    assert bad_user["password"] not in json.dumps(response)


def test_a_user_for_a_missing_schema_rolls_everything_back(world: World, postgres: Any) -> None:
    # Given one user is limited to a schema the database does not have
    world.put_db_users([RUNBOOK_USERS[0], dict(RUNBOOK_USERS[1], schemas=["no_such_schema"])])
    world.seed_operation(OPERATION, "setup_db_users")

    # When setup_db_users runs
    response = world.invoke("setup_db_users", {"operation_id": OPERATION})

    # Then it fails naming the schema, and the transaction left no role behind
    assert response["status"] == "error"
    assert "no_such_schema" in response["message"]
    assert roles(postgres) == set()


def test_a_password_from_secrets_manager_is_used(world: World, postgres: Any) -> None:
    # Given app_user's password lives in Secrets Manager
    world.client("secretsmanager", TARGET_REGION).create_secret(
        Name="dev/app-user", SecretString=json.dumps({"password": "secret-manager-password"})
    )
    app_user = {"username": "app_user", "password_secret_id": "dev/app-user", "privileges": ["SELECT"]}
    world.put_db_users([app_user], kind="SecureString")
    world.seed_operation(OPERATION, "setup_db_users")

    # When setup_db_users runs
    response = world.invoke("setup_db_users", {"operation_id": OPERATION})

    # Then app_user logs in with that password
    assert response["status"] == "success", response
    login(postgres, world.database, "app_user", "secret-manager-password").close()


def test_verify_restore_passes_after_setup(world: World) -> None:
    # Given the configuration expects the seed's tables and the users were set up
    world.put_config(expected_tables=list(SEED_TABLES))
    world.seed_operation(OPERATION, "setup_db_users")
    assert world.invoke("setup_db_users", {"operation_id": OPERATION})["status"] == "success"

    # When verify_restore runs
    response = world.invoke("verify_restore", {"operation_id": OPERATION})

    # Then it succeeds and routes to notification
    assert response["status"] == "success", response
    assert response["next_step"] == "notify_completion"


def test_verify_restore_fails_when_a_user_holds_more_than_its_privileges(world: World, postgres: Any) -> None:
    # Given the users were set up, and then readonly_user was granted INSERT behind our back
    world.seed_operation(OPERATION, "setup_db_users")
    assert world.invoke("setup_db_users", {"operation_id": OPERATION})["status"] == "success"
    conn = postgres.connect(world.database)
    with conn.cursor() as cursor:
        cursor.execute("GRANT INSERT ON public.products TO readonly_user")
    conn.close()

    # When verify_restore runs
    response = world.invoke("verify_restore", {"operation_id": OPERATION})

    # Then it fails, naming the user, the table and what it holds
    assert response["status"] == "error"
    assert response["error"]["type"] == "VerificationFailed"
    assert "readonly_user on public.products" in response["message"]
    assert "INSERT" in response["message"]


def test_verify_restore_fails_when_a_user_cannot_log_in(world: World, postgres: Any) -> None:
    # Given the users were set up, and then app_user's password was changed in the database
    world.seed_operation(OPERATION, "setup_db_users")
    assert world.invoke("setup_db_users", {"operation_id": OPERATION})["status"] == "success"
    conn = postgres.connect(world.database)
    with conn.cursor() as cursor:
        cursor.execute("ALTER ROLE app_user PASSWORD 'something-else'")
    conn.close()

    # When verify_restore runs
    response = world.invoke("verify_restore", {"operation_id": OPERATION})

    # Then it fails, saying app_user cannot log in
    assert response["status"] == "error"
    assert "app_user cannot log in" in response["message"]


def test_verify_restore_fails_when_an_expected_table_is_missing(world: World) -> None:
    # Given the users were set up and the configuration expects a table the database lacks
    world.put_config(expected_tables=["public.users", "public.invoices"])
    world.seed_operation(OPERATION, "setup_db_users")
    assert world.invoke("setup_db_users", {"operation_id": OPERATION})["status"] == "success"

    # When verify_restore runs
    response = world.invoke("verify_restore", {"operation_id": OPERATION})

    # Then it fails naming the missing table
    assert response["status"] == "error"
    assert "missing tables: public.invoices" in response["message"]


def test_the_master_user_listed_as_a_db_user_is_refused_before_any_role_changes(
    world: World, postgres: Any
) -> None:
    # Given an operation at setup_db_users, and DB users listing the master user of the secret (`dbadmin`)
    world.client("secretsmanager").put_secret_value(
        SecretId=MASTER_SECRET_ID, SecretString=json.dumps({"username": "dbadmin", "password": "master-pw-1"})
    )
    world.put_db_users(
        [*RUNBOOK_USERS, {"username": "dbadmin", "password": "taken-over", "privileges": ["SELECT"]}],
        kind="SecureString",
    )
    world.seed_operation(OPERATION, "setup_db_users")
    before = roles(postgres)

    # When setup_db_users runs
    response = world.invoke("setup_db_users", {"operation_id": OPERATION})

    # Then it is refused naming the master user, and no role was created or changed
    assert response["status"] == "error" and response["error"]["type"] == "ConfigError", response
    assert "'dbadmin', the cluster's master user" in response["message"]
    assert roles(postgres) == before


@pytest.mark.parametrize("plain", ["12345678", "true", '"quoted"', "1e3"])
def test_a_plaintext_secret_that_parses_as_json_is_the_password_as_written(
    world: World, postgres: Any, plain: str
) -> None:
    # Given a user whose secret holds its password as plain text that happens to parse as JSON
    world.client("secretsmanager").create_secret(Name="dev/plain-user", SecretString=plain)
    world.put_db_users(
        [{"username": "plain_user", "password_secret_id": "dev/plain-user", "privileges": ["SELECT"]}]
    )
    world.seed_operation(OPERATION, "setup_db_users")

    # When setup_db_users runs
    response = world.invoke("setup_db_users", {"operation_id": OPERATION})

    # Then the user logs in with that text, as written
    assert response["status"] == "success", response
    login(postgres, world.database, "plain_user", plain).close()
