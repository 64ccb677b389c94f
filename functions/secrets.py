"""Secret values, read from Secrets Manager only where they are used and never returned unwrapped."""

from __future__ import annotations

import json
from dataclasses import dataclass

from botocore.exceptions import ClientError
from pydantic import SecretStr

from functions import aws
from functions.errors import ConfigError
from schemas.config import DbUser, password_problem


@dataclass(frozen=True)
class Credentials:
    username: str | None
    password: SecretStr

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=**********)"


def _secret_string(secret_id: str, region: str) -> str:
    try:
        answer = aws.client("secretsmanager", region).get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        raise ConfigError(f"cannot read secret {secret_id!r} in {region}: {code}") from exc
    value = answer.get("SecretString")
    if not value:
        raise ConfigError(f"secret {secret_id!r} has no SecretString")
    return str(value)


def secret_exists(secret_id: str, region: str) -> None:
    """Check a secret is there without reading its value."""
    try:
        aws.client("secretsmanager", region).describe_secret(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        raise ConfigError(f"secret {secret_id!r} is not readable in {region}: {code}") from exc


def _password_and_username(secret_id: str, region: str) -> tuple[str, str | None]:
    """A secret holds RDS-style JSON {"username": ..., "password": ...} or the password alone: a value that
    is not a JSON object (`12345678`, `true`, a quoted string) is the password as it is written."""
    raw = _secret_string(secret_id, region)
    try:
        document = json.loads(raw)
    except json.JSONDecodeError:
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


def master_credentials(secret_id: str, region: str) -> Credentials:
    password, username = _password_and_username(secret_id, region)
    return Credentials(username=username, password=SecretStr(password))


def user_password(user: DbUser, region: str) -> SecretStr:
    if user.password is not None:
        return user.password
    assert user.password_secret_id is not None
    return SecretStr(_password_and_username(user.password_secret_id, region)[0])
