"""A failing grant must not write the users' SCRAM verifiers to the server's log.

PostgreSQL writes a failing statement's text to its log (log_min_error_statement, `error` by default), and
a round trip's text is every statement sent in it. Role statements carry verifiers (a stolen verifier
allows an offline dictionary attack), so they never share a round trip with a grant, whose failure (a
schema the master may not grant on) is the usual one.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from functions import database as db
from functions.errors import DatabaseError
from schemas.config import DbUser

MASTER, MASTER_PASSWORD = "log_test_admin", "master-pw-for-the-log-test"


@pytest.fixture
def endpoint(postgres: Any, database: str) -> db.Endpoint:
    """A master like Aurora's (CREATEROLE, not superuser), and a schema another role owns."""
    admin = postgres.connect()
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {MASTER} LOGIN CREATEROLE PASSWORD '{MASTER_PASSWORD}'")
        cursor.execute("CREATE ROLE someone_else")
    admin.close()
    restored = postgres.connect(database)
    with restored.cursor() as cursor:
        cursor.execute("CREATE SCHEMA locked AUTHORIZATION someone_else")
    restored.close()
    return db.Endpoint(postgres.host, postgres.port, database)


@pytest.mark.parametrize("parallel", [False, True])
def test_a_grant_that_fails_logs_no_verifier(postgres: Any, endpoint: db.Endpoint, parallel: bool) -> None:
    grants = [
        db.UserGrant(
            DbUser(username=f"log_user_{n}", privileges=["SELECT"], password=f"pw-{n}-x", schemas=["locked"]),
            SecretStr(f"pw-{n}-x"),
        )
        for n in range(3)
    ]
    logged_before = len(postgres.logfile.read_text())

    def connect() -> Any:
        return db.connect(endpoint, MASTER, SecretStr(MASTER_PASSWORD))

    options: dict[str, Any] = {"connect": connect, "parallel_threshold": 1, "workers": 2} if parallel else {}
    conn = connect()
    try:
        with pytest.raises(DatabaseError, match="permission denied for schema locked"):
            db.setup_users(conn, endpoint.dbname, grants, **options)
    finally:
        conn.close()

    logged = postgres.logfile.read_text()[logged_before:]
    assert "permission denied for schema locked" in logged  # the failure was logged, with its statement
    assert "SCRAM-SHA-256$" not in logged
