"""Secret values, read from Secrets Manager only where they are used and never returned unwrapped."""

from __future__ import annotations

import json
from dataclasses import dataclass

from botocore.exceptions import ClientError
from pydantic import SecretBytes, SecretStr

from functions import aws
from functions.errors import AwsError, ConfigError
from schemas.config import DbUser, password_problem


@dataclass(frozen=True)
class Credentials:
    """A user name and password read from Secrets Manager (the password is never shown)."""

    username: str | None
    password: SecretStr

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=**********)"


def _secret_string(secret_id: str, region: str) -> str:
    try:
        answer = aws.client("secretsmanager", region).get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if aws.is_transient(exc):  # throttled: the step is tried again, the operation goes on
            raise AwsError(f"reading secret {secret_id!r} in {region}: {code}", retryable=True) from exc
        raise ConfigError(f"cannot read secret {secret_id!r} in {region}: {code}") from exc
    value = answer.get("SecretString")
    if not value:
        raise ConfigError(f"secret {secret_id!r} has no SecretString")
    return str(value)


def _password_and_username(secret_id: str, region: str) -> tuple[str, str | None]:
    """A secret holds RDS-style JSON {"username": ..., "password": ...} or the password alone: a value that
    is not a JSON object (`12345678`, `true`, a quoted string) is the password as it is written. One that
    starts as a JSON object (`{"`) but does not parse is refused: taken as the password, a damaged
    `{"password": "x"` would become the password whole, and nobody could log in with what they meant."""
    raw = _secret_string(secret_id, region)
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        if raw.lstrip().startswith('{"'):
            # Where it breaks, never what it holds (the exception's `doc` is the secret: not chained).
            raise ConfigError(
                f"secret {secret_id!r} starts as JSON but is not valid JSON ({exc.msg} at line {exc.lineno}"
                f' column {exc.colno}): store {{"password": "..."}} or the password alone'
            ) from None
        document = None
    if not isinstance(document, dict):
        password, username = raw, None
    elif not isinstance(document.get("password"), str) or not document["password"]:
        raise ConfigError(f"secret {secret_id!r} must hold a password (JSON with a 'password' string)")
    else:
        password = document["password"]
        username = document.get("username") if isinstance(document.get("username"), str) else None
    problem = password_problem(password)
    if problem:
        raise ConfigError(f"the password in secret {secret_id!r} {problem}")
    return password, username


# What RDS takes as an Aurora cluster's master password: 8 to 41 characters, printable ASCII but "/", '"'
# and "@" (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html and
# API_CreateDBCluster.html, MasterUserPassword), and no space.
MASTER_PASSWORD_REFUSED = frozenset('/"@')
MASTER_PASSWORD_MAX = 41


def master_password_problem(password: str) -> str | None:
    """Why RDS would refuse `password` as the cluster's master password (None: it takes it). Never names it."""
    if len(password) < 8:
        return "is shorter than the 8 characters RDS requires of a master password"
    if len(password) > MASTER_PASSWORD_MAX:
        return f"is longer than the {MASTER_PASSWORD_MAX} characters RDS takes for an Aurora master password"
    if any(not (" " < char <= "~") or char in MASTER_PASSWORD_REFUSED for char in password):
        return 'holds a character RDS refuses in a master password (a space, /, ", @, or one outside printable ASCII)'
    return None


def master_credentials(secret_id: str, region: str) -> Credentials:
    """The target's master user and password, checked as RDS will check the password: snapshot_check reads
    them so that a password RDS refuses fails the operation before the target is deleted, not after."""
    password, username = _password_and_username(secret_id, region)
    problem = master_password_problem(password)
    if problem:
        raise ConfigError(f"the password in secret {secret_id!r} {problem}")
    return Credentials(username=username, password=SecretStr(password))


def user_password(user: DbUser, region: str) -> SecretStr:
    if user.password is not None:
        return user.password
    assert user.password_secret_id is not None
    return SecretStr(_password_and_username(user.password_secret_id, region)[0])


# The least a masking key holds: shorter, its keyed hashes could be found by trying every key.
MASKING_KEY_MIN = 32


def masking_key(secret_id: str, region: str) -> SecretBytes:
    """The environment's masking key (the secret's whole text, as bytes): the same key masks the same value
    the same way on every refresh; it never leaves this wrapper but into a query parameter."""
    raw = _secret_string(secret_id, region)
    if len(raw) < MASKING_KEY_MIN:
        raise ConfigError(f"secret {secret_id!r} holds a masking key under {MASKING_KEY_MIN} characters")
    return SecretBytes(raw.encode("utf-8"))
