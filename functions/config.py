"""The one configuration resolver: event > state > environment > SSM > defaults, each value with its source.

Secrets are never part of the resolved configuration: it holds secret *ids*; the values are read only
where they are used (functions.secrets), wrapped in SecretStr.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from functions import aws
from functions.errors import AwsError, ConfigError, StepError
from functions.settings import Settings
from schemas.config import CONFIG_FIELDS, DbUser, DbUsers, RestoreConfig

ENV_PREFIX = "AURORA_RESTORE_"
SOURCES = ("event", "state", "environment", "ssm", "default")
LIST_FIELDS = frozenset(
    name for name, info in RestoreConfig.model_fields.items() if "list" in str(info.annotation).lower()
)


@dataclass
class ResolvedConfig:
    """A configuration resolved for one step: its values, where each came from, and warnings about it."""

    config: RestoreConfig
    sources: dict[str, str]
    warnings: list[str] = field(default_factory=list)


def _env_value(name: str, raw: str) -> Any:
    if name in LIST_FIELDS:
        raw = raw.strip()
        if raw.startswith("["):
            return json.loads(raw)
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def environment_variables(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Configuration field -> the name of the variable `AURORA_RESTORE_<FIELD>` set (non-empty) in `environ`."""
    environ = dict(os.environ) if environ is None else environ
    named = {name: ENV_PREFIX + name.upper() for name in CONFIG_FIELDS}
    return {name: variable for name, variable in named.items() if environ.get(variable)}


def environment_values(environ: dict[str, str] | None = None) -> dict[str, Any]:
    environ = dict(os.environ) if environ is None else environ
    found: dict[str, Any] = {}
    for name, variable in environment_variables(environ).items():
        try:
            found[name] = _env_value(name, environ[variable])
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{variable} is not valid JSON: {exc}") from exc
    return found


def _ssm_error(parameter_name: str, exc: ClientError) -> StepError:
    """SSM refused a read: throttled (GetParameter's account-wide rate is low) the step is tried again and
    the operation goes on; refused for good (access, KMS), a configuration error."""
    message = f"reading SSM parameter {parameter_name}: {aws.error_code(exc)}"
    return AwsError(message, retryable=True) if aws.is_transient(exc) else ConfigError(message)


def ssm_values(parameter_name: str, region: str | None = None) -> dict[str, Any]:
    """The JSON document in /aurora-restore/<env>/config; absent is an empty document."""
    # A plain GetParameter, not Powertools' SSMProvider: its module imports boto3, which the first step would
    # import on its cold invocation for this alone, and a provider made per call never served from its cache.
    try:
        answer = aws.client("ssm", region).get_parameter(Name=parameter_name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return {}
        raise _ssm_error(parameter_name, exc) from exc
    try:
        value = json.loads(answer["Parameter"]["Value"])
    except json.JSONDecodeError as exc:
        raise ConfigError(f"SSM parameter {parameter_name} is not a JSON object: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"SSM parameter {parameter_name} must hold a JSON object")
    return value


def resolve(
    settings: Settings,
    *,
    event_values: dict[str, Any] | None = None,
    state_values: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
    lower_layers: bool = True,
) -> ResolvedConfig:
    """Merge the five sources by priority and validate the result.

    Once an operation has recorded its configuration (state), the environment and SSM are not read
    again (`lower_layers=False`): an operation keeps the configuration it started with.
    """
    layers: dict[str, dict[str, Any]] = {
        "event": {k: v for k, v in (event_values or {}).items() if k in CONFIG_FIELDS},
        "state": {k: v for k, v in (state_values or {}).items() if k in CONFIG_FIELDS},
        "environment": environment_values(environ) if lower_layers else {},
        "ssm": ssm_values(settings.config_parameter, settings.region) if lower_layers else {},
    }
    unknown = sorted(set(layers["ssm"]) - set(CONFIG_FIELDS))
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source in reversed(SOURCES[:-1]):
        for key, value in layers[source].items():
            if key in CONFIG_FIELDS:
                merged[key] = value
                sources[key] = source
    try:
        config = RestoreConfig.model_validate(merged)
    except ValidationError as exc:
        message = _describe(exc, sources)
        if lower_layers and not layers["ssm"]:
            # The usual cause of a list of missing fields: no configuration deployed for this environment.
            message += f" (SSM parameter {settings.config_parameter} does not exist or is empty in {settings.region})"
        # Not chained: pydantic's text quotes each input, and a secret id may be a pasted password.
        raise ConfigError(message) from None
    for name in CONFIG_FIELDS:
        sources.setdefault(name, "default")
    warnings = [f"unknown key {key!r} in {settings.config_parameter} is ignored" for key in unknown]
    return ResolvedConfig(config=config, sources=sources, warnings=warnings)


def _describe(exc: ValidationError, sources: dict[str, str]) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(item) for item in error["loc"]) or "config"
        source = sources.get(str(error["loc"][0])) if error["loc"] else None
        where = f" (from {source})" if source else ""
        parts.append(f"{location}{where}: {error['msg']}")
    return "invalid configuration: " + "; ".join(parts)


def load_db_users(settings: Settings) -> tuple[DbUsers, list[str]]:
    """The DB users from SSM (String or SecureString). A literal password in a String is a warning."""
    try:
        answer = aws.client("ssm", settings.region).get_parameter(
            Name=settings.db_users_parameter, WithDecryption=True
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "ParameterNotFound":
            raise ConfigError(f"SSM parameter {settings.db_users_parameter} does not exist") from exc
        raise _ssm_error(settings.db_users_parameter, exc) from exc
    parameter = answer["Parameter"]
    try:
        document = json.loads(parameter["Value"])
    except json.JSONDecodeError as exc:
        # Not chained: the JSONDecodeError holds the whole document, passwords and all.
        raise ConfigError(f"{settings.db_users_parameter} is not JSON (line {exc.lineno})") from None
    if isinstance(document, dict) and "users" in document:
        document = document["users"]
    if not isinstance(document, list):
        raise ConfigError(f"{settings.db_users_parameter} must hold a JSON list of users")
    try:
        users = DbUsers.model_validate({"users": document})
    except ValidationError as exc:
        # Not chained: pydantic's text quotes each input, literal passwords included.
        raise ConfigError("invalid DB users: " + _user_errors(exc, document)) from None
    warnings: list[str] = []
    literal = [user.username for user in users.users if user.password is not None]
    if literal and parameter.get("Type") != "SecureString":
        warnings.append(
            f"{settings.db_users_parameter} is a plain String holding literal passwords for "
            f"{', '.join(literal)}: use a SecureString or password_secret_id"
        )
    return users, warnings


def refuse_master_as_user(users: DbUsers, master_user: str | None, parameter: str) -> None:
    """The cluster's master user is not an application user: setting it up would replace the password
    its secret holds and strip it of CREATEROLE, so no later step, nor the next refresh, could log in."""
    if master_user and master_user.lower() in {user.username for user in users.users}:
        raise ConfigError(
            f"{parameter} lists {master_user.lower()!r}, the cluster's master user: remove it (the master keeps "
            "the password in master_credentials_secret_id)"
        )


def _user_errors(exc: ValidationError, document: list[Any]) -> str:
    """Name the offending user by position, never echoing a password back."""
    parts = []
    for error in exc.errors():
        loc = list(error["loc"])
        if len(loc) >= 2 and loc[0] == "users" and isinstance(loc[1], int):
            index = loc[1]
            entry = document[index] if index < len(document) and isinstance(document[index], dict) else {}
            name = entry.get("username")
            field_name = ".".join(str(item) for item in loc[2:]) or "entry"
            shown = repr(name) if isinstance(name, str) and len(name) < 80 else f"#{index}"
            parts.append(f"user {shown} {field_name}: {error['msg']}")
        else:
            parts.append(str(error["msg"]))
    return "; ".join(parts)


def describe_user(user: DbUser) -> dict[str, Any]:
    return {"username": user.username, "privileges": list(user.privileges)}
