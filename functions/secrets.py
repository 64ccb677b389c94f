"""Secret values, read from Secrets Manager only where they are used and never returned unwrapped."""

from __future__ import annotations

import json
from dataclasses import dataclass

from botocore.exceptions import ClientError
from pydantic import SecretStr

from functions import aws
from functions.errors import ConfigError
from schemas.config import DbUser


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


def master_credentials(secret_id: str, region: str) -> Credentials:
    """RDS-style JSON {"username": ..., "password": ...}, or the password alone."""
    raw = _secret_string(secret_id, region)
    try:
        document = json.loads(raw)
    except json.JSONDecodeError:
        return Credentials(username=None, password=SecretStr(raw))
    if not isinstance(document, dict) or not document.get("password"):
        raise ConfigError(f"secret {secret_id!r} must hold a password (JSON with a 'password' key)")
    return Credentials(username=document.get("username"), password=SecretStr(str(document["password"])))


def user_password(user: DbUser, region: str) -> SecretStr:
    if user.password is not None:
        return user.password
    assert user.password_secret_id is not None
    raw = _secret_string(user.password_secret_id, region)
    try:
        document = json.loads(raw)
    except json.JSONDecodeError:
        return SecretStr(raw)
    if isinstance(document, dict) and document.get("password"):
        return SecretStr(str(document["password"]))
    raise ConfigError(f"secret {user.password_secret_id!r} must hold a password")
