"""Our SCRAM verifiers against a real PostgreSQL: a password SASLprep changes still logs in.

The server prepares a plaintext password with SASLprep before hashing it, and libpq the password it logs
in with; our client-side verifier must start from the same string. The server's own verifier, rebuilt by
us with its salt and iteration count, is the strongest check: the two must be equal byte for byte.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import psycopg2
import pytest
from pydantic import SecretStr

from functions.database.grants import UserGrant, role_statement
from functions.database.scram import saslprep, scram_verifier
from schemas.config import DbUser

pytestmark = pytest.mark.integration


class Case(NamedTuple):
    password: str
    prepared: str  # what PostgreSQL's pg_saslprep hashes: the password itself when preparing fails


CASES = {
    # SASLprep changes these: the old raw-UTF-8 verifier could never log in.
    "decomposed-accent": Case("cafe\u0301-secret", "caf\u00e9-secret"),
    "no-break-space": Case("pass\u00a0word", "pass word"),
    "fi-ligature": Case("\ufb01le-secret", "file-secret"),
    "soft-hyphen": Case("pass\u00adword", "password"),
    "zero-width-space-becomes-a-space": Case("pass\u200bword", "pass word"),
    "hebrew-with-no-break-space": Case("\u05d0\u00a0\u05d1", "\u05d0 \u05d1"),
    # PostgreSQL checks bidi on the string before NFKC: "TM" (L) appears only after it.
    "bidi-checked-before-nfkc": Case("\u05d0\u2122\u05d1", "\u05d0TM\u05d1"),
    # PostgreSQL's NFKC is today's Unicode, not 3.2's (Corrigendum #4 changed this ideograph).
    "cjk-compatibility-ideograph": Case("\U0002f874-secret", "\u5f53-secret"),
    # PostgreSQL hashes these as they are.
    "ascii-with-controls": Case("pass\x01word\x7f", "pass\x01word\x7f"),
    "private-use-is-prohibited": Case("pass\ue000word", "pass\ue000word"),
    "control-beside-non-ascii": Case("cafe\u0301\x01", "cafe\u0301\x01"),
    "hebrew-then-latin-breaks-bidi": Case("\u05d0abc", "\u05d0abc"),
    "nothing-left-after-mapping": Case("\u00ad\u00ad", "\u00ad\u00ad"),
}


def login(postgres: Any, user: str, password: str) -> None:
    """A libpq login over TCP (host rules: scram-sha-256), closed at once; raises if refused."""
    psycopg2.connect(
        host=postgres.host,
        port=postgres.port,
        dbname="postgres",
        user=user,
        password=password,
        connect_timeout=5,
    ).close()


@dataclass
class Roles:
    """A superuser connection (pg_authid is readable only by one) and the roles a test made on it."""

    admin: Any
    made: list[str] = field(default_factory=list)

    def new(self) -> str:
        role = f"saslprep_{uuid.uuid4().hex[:10]}"
        self.made.append(role)
        return role

    def stored_verifier(self, role: str) -> str:
        with self.admin.cursor() as cursor:
            cursor.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))
            return str(cursor.fetchone()[0])

    def create_with_our_verifier(self, role: str, password: str) -> str:
        """CREATE ROLE ... PASSWORD '<verifier>' as setup_db_users sends it (role_statement)."""
        user = DbUser(username=role, password=SecretStr(password), privileges=["SELECT"])
        grant = UserGrant(user=user, password=SecretStr(password))
        verifier = scram_verifier(password)
        with self.admin.cursor() as cursor:
            cursor.execute(role_statement(grant, {}, verifier))
        return verifier


@pytest.fixture
def roles(postgres: Any) -> Iterator[Roles]:
    made = Roles(postgres.connect())
    try:
        yield made
    finally:
        with made.admin.cursor() as cursor:
            for role in made.made:
                cursor.execute(f'DROP ROLE IF EXISTS "{role}"')
        made.admin.close()


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_saslprep_prepares_a_password_as_postgresql_does(case: Case) -> None:
    # Given a password
    # When it is prepared
    prepared = saslprep(case.password)

    # Then it is what pg_saslprep hashes (the server tests below show PostgreSQL agrees)
    assert prepared == case.prepared


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_role_with_our_verifier_logs_in_with_its_password(postgres: Any, roles: Roles, case: Case) -> None:
    # Given a role created with the verifier we compute for the password
    role = roles.new()
    verifier = roles.create_with_our_verifier(role, case.password)
    assert roles.stored_verifier(role) == verifier

    # When libpq logs in as it with that password
    # Then the server lets it in
    login(postgres, role, case.password)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_our_verifier_is_the_one_the_server_builds_from_the_plaintext(
    postgres: Any, roles: Roles, case: Case
) -> None:
    # Given the server builds a role's verifier itself from the plaintext password
    role = roles.new()
    with roles.admin.cursor() as cursor:
        cursor.execute("SET password_encryption = 'scram-sha-256'")
        cursor.execute(f'CREATE ROLE "{role}" LOGIN')
        cursor.execute(f'ALTER ROLE "{role}" PASSWORD %s', (case.password,))
    server_built = roles.stored_verifier(role)
    iterations, salt = server_built.removeprefix("SCRAM-SHA-256$").split("$")[0].split(":")

    # When we compute ours with the server's salt and iteration count
    ours = scram_verifier(case.password, salt=base64.b64decode(salt), iterations=int(iterations))

    # Then the two are the same verifier, and the password logs in against the server's as against ours
    assert ours == server_built
    login(postgres, role, case.password)
    other = roles.new()
    roles.create_with_our_verifier(other, case.password)
    login(postgres, other, case.password)


def test_host_logins_are_checked_with_scram(postgres: Any, roles: Roles) -> None:
    # Given the server's host rules and a role with our verifier
    with roles.admin.cursor() as cursor:
        cursor.execute("SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE type = 'host'")
        methods = {row[0] for row in cursor.fetchall()}
    role = roles.new()
    roles.create_with_our_verifier(role, "pass\u00a0word")

    # When it logs in with a password SASLprep does not turn into its own
    # Then the server refuses it: the logins above were really checked against the verifiers
    assert methods == {"scram-sha-256"}
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        login(postgres, role, "pass\u00a0w0rd")
