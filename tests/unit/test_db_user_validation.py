"""DB user validation: username pattern, privilege whitelist, one password source, the String warning."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from functions.config import load_db_users
from functions.database.grants import UserGrant, user_statements
from functions.database.scram import scram_verifier
from functions.errors import ConfigError, InvalidRequest
from schemas.config import PRIVILEGES, DbUser, DbUsers
from unit.fakes import SETTINGS, FakeSsm, install

RUNBOOK_USERS: list[dict[str, Any]] = [
    {
        "username": "app_user",
        "password": "app_password",
        "privileges": ["SELECT", "INSERT", "UPDATE", "DELETE"],
    },
    {"username": "readonly_user", "password": "readonly_password", "privileges": ["SELECT"]},
]


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> FakeSsm:
    fake = FakeSsm()
    install(monkeypatch, ssm=fake)
    return fake


@pytest.mark.parametrize("username", ["app_user", "_svc", "a", "reader2", "a" * 63])
def test_valid_usernames_are_accepted(username: str) -> None:
    # Given / When a user with a well-formed role name
    user = DbUser(username=username, password=SecretStr("pw"), privileges=["SELECT"])

    # Then it is accepted as is
    assert user.username == username


@pytest.mark.parametrize(
    "username",
    ['x"; DROP TABLE users; --', "App_User", "1user", "user-name", "user name", "", "a" * 64, "ümlaut"],
)
def test_malformed_usernames_are_refused(username: str) -> None:
    # Given / When a role name outside the pattern
    # Then validation refuses it, naming the field
    with pytest.raises(ValidationError, match="username"):
        DbUser(username=username, password=SecretStr("pw"), privileges=["SELECT"])


@pytest.mark.parametrize(
    "username",
    ["postgres", "rdsadmin", "rds_superuser", "public", "none", "pg_app", "rds_iam", "rds_password"],
)
def test_reserved_usernames_are_refused(username: str) -> None:
    # Given / When a role only the cluster may own
    # Then it is refused as reserved
    with pytest.raises(ValidationError, match="is reserved"):
        DbUser(username=username, password=SecretStr("pw"), privileges=["SELECT"])


@pytest.mark.parametrize(
    "privilege", ["SUPERUSER", "ALL", "ALL PRIVILEGES", "select", "CREATE", "SELECT; DROP"]
)
def test_privileges_outside_the_whitelist_are_refused(privilege: str) -> None:
    # Given / When a privilege that is not on the whitelist
    # Then it is refused, naming the field
    with pytest.raises(ValidationError, match="privileges"):
        DbUser(username="app_user", password=SecretStr("pw"), privileges=["SELECT", privilege])


def test_every_whitelisted_privilege_is_accepted() -> None:
    # Given / When a user with every whitelisted privilege
    user = DbUser(username="app_user", password=SecretStr("pw"), privileges=list(PRIVILEGES))

    # Then it is accepted
    assert tuple(user.privileges) == PRIVILEGES


def test_no_privilege_and_a_repeated_privilege_are_refused() -> None:
    # Given / When an empty list, or a privilege listed twice
    # Then both are refused
    with pytest.raises(ValidationError, match="privileges"):
        DbUser(username="app_user", password=SecretStr("pw"), privileges=[])
    with pytest.raises(ValidationError, match="lists a privilege twice"):
        DbUser(username="app_user", password=SecretStr("pw"), privileges=["SELECT", "SELECT"])


@pytest.mark.parametrize(
    "sources",
    [{}, {"password": "pw", "password_secret_id": "dev/app-user"}],
    ids=["neither", "both"],
)
def test_exactly_one_password_source(sources: dict[str, str]) -> None:
    # Given / When a user with no password source, or with two
    # Then it is refused
    with pytest.raises(ValidationError, match="exactly one of password_secret_id or password"):
        DbUser.model_validate({"username": "app_user", "privileges": ["SELECT"], **sources})


@pytest.mark.parametrize(
    ("password", "problem"),
    [("", "is empty"), ("pass\x00word", "NUL"), ("pass\ud800word", "lone surrogate")],
    ids=["empty", "nul", "surrogate"],
)
def test_a_password_postgresql_cannot_take_is_refused_without_showing_it(password: str, problem: str) -> None:
    # Given / When a literal password PostgreSQL could not store or log in with
    # Then it is refused at validation (at the first step, before anything is deleted), naming the user only
    with pytest.raises(ValidationError, match=problem) as raised:
        DbUser(username="app_user", password=SecretStr(password), privileges=["SELECT"])
    assert "app_user" in str(raised.value)
    if password:
        assert password not in str(raised.value)


def test_an_empty_schema_list_or_secret_id_is_refused() -> None:
    # Given / When `schemas: []` (which once meant every schema) or an empty secret id
    # Then both are refused: omitting `schemas` is how a user gets every non-system schema
    with pytest.raises(ValidationError, match="schemas"):
        DbUser.model_validate(
            {"username": "app_user", "password": "pw", "privileges": ["SELECT"], "schemas": []}
        )
    with pytest.raises(ValidationError, match="password_secret_id"):
        DbUser.model_validate({"username": "app_user", "password_secret_id": "", "privileges": ["SELECT"]})


def test_a_password_is_held_as_a_secret() -> None:
    # Given a user with a literal password
    user = DbUser(username="app_user", password=SecretStr("app_password"), privileges=["SELECT"])

    # When it is printed or dumped
    # Then the password does not show
    assert "app_password" not in repr(user)
    assert "app_password" not in user.model_dump_json()


def test_duplicate_usernames_are_refused() -> None:
    # Given / When two users with one name
    # Then the list is refused naming the duplicate
    with pytest.raises(ValidationError, match="duplicate usernames: app_user"):
        DbUsers.model_validate({"users": [RUNBOOK_USERS[0], RUNBOOK_USERS[0]]})


# -- loading from SSM ------------------------------------------------------------------------------------------
def test_literal_passwords_in_a_string_parameter_load_with_a_warning(ssm: FakeSsm) -> None:
    # Given the runbook's users in a plain String parameter
    ssm.put(SETTINGS.db_users_parameter, RUNBOOK_USERS, "String")

    # When loaded
    users, warnings = load_db_users(SETTINGS)

    # Then they are accepted, with one warning naming the users and not their passwords
    assert [user.username for user in users.users] == ["app_user", "readonly_user"]
    [warning] = warnings
    assert "literal passwords for app_user, readonly_user" in warning
    assert "SecureString" in warning
    assert "app_password" not in warning and "readonly_password" not in warning
    # And the request asked for decryption, so a SecureString would be readable
    assert ssm.requests[-1] == {"Name": SETTINGS.db_users_parameter, "WithDecryption": True}


def test_literal_passwords_in_a_secure_string_load_without_warning(ssm: FakeSsm) -> None:
    # Given the same users in a SecureString
    ssm.put(SETTINGS.db_users_parameter, RUNBOOK_USERS, "SecureString")

    # When loaded
    _, warnings = load_db_users(SETTINGS)

    # Then there is nothing to warn about
    assert warnings == []


def test_secret_ids_in_a_string_parameter_load_without_warning(ssm: FakeSsm) -> None:
    # Given a user whose password lives in Secrets Manager, in a String parameter
    ssm.put(
        SETTINGS.db_users_parameter,
        [{"username": "app_user", "password_secret_id": "dev/app-user", "privileges": ["SELECT"]}],
    )

    # When loaded
    users, warnings = load_db_users(SETTINGS)

    # Then it loads with no warning
    assert users.users[0].password_secret_id == "dev/app-user"
    assert warnings == []


def test_a_users_object_is_accepted_as_well_as_a_list(ssm: FakeSsm) -> None:
    # Given {"users": [...]} instead of a bare list
    ssm.put(SETTINGS.db_users_parameter, {"users": RUNBOOK_USERS}, "SecureString")

    # When loaded
    users, _ = load_db_users(SETTINGS)

    # Then the users are the same
    assert [user.username for user in users.users] == ["app_user", "readonly_user"]


def test_an_invalid_user_is_named_without_echoing_its_password(ssm: FakeSsm) -> None:
    # Given an injected username whose entry carries a password
    bad = {"username": 'x"; DROP TABLE users; --', "password": "hunter2-secret", "privileges": ["SELECT"]}
    ssm.put(SETTINGS.db_users_parameter, [RUNBOOK_USERS[0], bad])

    # When loaded
    with pytest.raises(ConfigError) as raised:
        load_db_users(SETTINGS)

    # Then the error names the user and the field, and not the password
    message = raised.value.message
    assert message.startswith("invalid DB users: user 'x\"; DROP TABLE users; --' username:")
    assert "hunter2-secret" not in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[{not json", "is not JSON"),
        ('"just a string"', "must hold a JSON list of users"),
        ("42", "must hold a JSON list of users"),
    ],
)
def test_a_malformed_users_parameter_is_a_clear_error(ssm: FakeSsm, value: str, expected: str) -> None:
    # Given a users parameter that is not a list of users
    ssm.put(SETTINGS.db_users_parameter, value)

    # When loaded
    # Then the error names the parameter and what is wrong
    with pytest.raises(ConfigError, match=expected) as raised:
        load_db_users(SETTINGS)
    assert SETTINGS.db_users_parameter in raised.value.message


def test_a_missing_users_parameter_is_a_clear_error(ssm: FakeSsm) -> None:
    # Given no users parameter
    # When loaded
    # Then the error says it does not exist
    with pytest.raises(ConfigError, match="/aurora-restore/dev/db_users does not exist"):
        load_db_users(SETTINGS)


def test_the_database_adapter_refuses_a_privilege_that_bypassed_validation() -> None:
    # Given a user built without validation, carrying SQL in a privilege
    smuggled: list[Any] = ["SELECT", "SELECT; DROP TABLE users"]
    user = DbUser.model_construct(username="app_user", privileges=smuggled, password=SecretStr("pw"))
    grant = UserGrant(user=user, password=SecretStr("pw"))

    # When its statements are built
    # Then the whitelist check in the adapter refuses it before any SQL exists
    with pytest.raises(InvalidRequest, match="is not in the whitelist"):
        user_statements(grant, exists=False, dbname="restored", schemas=["public"])


def test_passwords_reach_sql_only_as_scram_verifiers() -> None:
    # Given a user with a literal password
    user = DbUser(username="app_user", password=SecretStr("app_password"), privileges=["SELECT"])
    grant = UserGrant(user=user, password=SecretStr("app_password"))

    # When its statements are built
    statements = user_statements(grant, exists=False, dbname="restored", schemas=["public"])

    # Then the role statement carries a SCRAM-SHA-256 verifier, never the password
    rendered = repr(statements)
    assert "app_password" not in rendered
    assert "SCRAM-SHA-256$4096:" in rendered


def test_a_scram_verifier_is_what_rfc_7677_computes() -> None:
    # Given a password and a fixed salt
    import base64
    import hashlib
    import hmac

    salt = bytes(range(16))

    # When its verifier is computed
    verifier = scram_verifier("pencil", salt=salt)

    # Then it is SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, from PBKDF2-HMAC-SHA256
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    assert verifier == (
        f"SCRAM-SHA-256$4096:{b64(salt).decode()}${b64(stored).decode()}:{b64(server).decode()}"
    )


def test_a_password_pasted_as_a_secret_id_is_refused_without_being_shown(ssm: FakeSsm) -> None:
    """A secret id is named in errors and kept in the operation's outputs: a value that cannot be a secret's
    name, likely the password pasted in its place, is refused with the user named and the value not shown."""
    # Given a user whose password was pasted where its secret id belongs, beside a literal password
    pasted = "s3cr3t pass!word"
    ssm.put(
        SETTINGS.db_users_parameter,
        [
            {"username": "app_user", "password_secret_id": pasted, "privileges": ["SELECT"]},
            {"username": "reader", "password": "other-password", "privileges": ["SELEKT"]},
        ],
        "SecureString",
    )

    # When loaded
    # Then both users' problems are named, and neither password is in the error or chained to it
    with pytest.raises(ConfigError) as raised:
        load_db_users(SETTINGS)
    message = raised.value.message
    assert "user 'app_user' password_secret_id: Value error, is not a Secrets Manager secret name" in message
    assert "user 'reader' privileges" in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert pasted not in message and "other-password" not in message
