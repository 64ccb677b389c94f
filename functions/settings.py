"""Runtime settings of a function, from its environment, validated once at cold start."""

# No `from __future__ import annotations`: pydantic would compile and evaluate each field's annotation
# text when it builds the models, at every cold start (docs/performance.md, "Cold start").

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.errors import ConfigError

PROJECT = "aurora-restore"
# Every AWS name of an environment ends with it, and the longest, the EventBridge rule
# aurora-restore-recheck-check-restore-status-<env>, must fit EventBridge's and IAM's 64 characters.
ENVIRONMENT_MAX_CHARS = 20
ENVIRONMENT_PATTERN = rf"^[a-z0-9][a-z0-9-]{{0,{ENVIRONMENT_MAX_CHARS - 1}}}$"


class Settings(BaseModel):
    """Where things are. Not the restore configuration: see functions.config for that.

    Each default is written here once: get_settings passes only the variables that are set, and the
    Pulumi program (infra.settings) reads the defaults it shares from `model_fields`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: str = Field(pattern=ENVIRONMENT_PATTERN)
    region: str
    state_table: str
    event_bus: str
    config_parameter: str
    db_users_parameter: str
    state_ttl_days: int = Field(default=30, description="How long a running operation's state item is kept")
    stall_seconds: float = Field(
        default=900.0, gt=0, description="A running operation unmoved this long without a claim is re-driven"
    )
    scheduler_role_arn: str | None = Field(
        default=None, description="Role EventBridge Scheduler assumes to put wake-ups on the bus"
    )
    event_bus_arn: str | None = None
    wakeup_grace_seconds: float = Field(
        default=120.0, ge=0, description="How late a wake-up may be before the reconciler re-checks instead"
    )
    metrics_enabled: bool = True
    claim_seconds: float = Field(
        default=300.0, gt=0, description="How long a step invocation's claim lasts: the function's timeout"
    )
    pg_dsn: str | None = Field(
        default=None,
        description=(
            "Local runtime only: host and port of the stand-in database that answers for the cluster "
            "(functions.database.connection.EndpointOverride); never carries a password"
        ),
    )


# The variables each field is read from, the first one set (non-empty) winning. metrics_enabled is the
# opposite of Powertools' own switch, POWERTOOLS_METRICS_DISABLED, read apart.
VARIABLES: dict[str, tuple[str, ...]] = {
    "environment": ("AURORA_RESTORE_ENV",),
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "state_table": ("AURORA_RESTORE_STATE_TABLE",),
    "event_bus": ("AURORA_RESTORE_EVENT_BUS",),
    "config_parameter": ("AURORA_RESTORE_CONFIG_PARAMETER",),
    "db_users_parameter": ("AURORA_RESTORE_DB_USERS_PARAMETER",),
    "state_ttl_days": ("AURORA_RESTORE_STATE_TTL_DAYS",),
    "claim_seconds": ("AURORA_RESTORE_CLAIM_SECONDS",),
    "stall_seconds": ("AURORA_RESTORE_STALL_SECONDS",),
    "scheduler_role_arn": ("AURORA_RESTORE_SCHEDULER_ROLE_ARN",),
    "event_bus_arn": ("AURORA_RESTORE_EVENT_BUS_ARN",),
    "wakeup_grace_seconds": ("AURORA_RESTORE_WAKEUP_GRACE_SECONDS",),
    "pg_dsn": ("AURORA_RESTORE_PG_DSN",),
}
METRICS_DISABLED = "POWERTOOLS_METRICS_DISABLED"


def default(name: str) -> Any:
    """A setting's default, as the model declares it (the Pulumi program deploys the same)."""
    return Settings.model_fields[name].default


def resource_names(environment: str) -> dict[str, str]:
    """The names an environment's table, bus and SSM parameters have unless set (design.md, "Names")."""
    return {
        "state_table": f"{PROJECT}-state-{environment}",
        "event_bus": f"{PROJECT}-{environment}",
        "config_parameter": f"/{PROJECT}/{environment}/config",
        "db_users_parameter": f"/{PROJECT}/{environment}/db_users",
    }


def function_name(step: str, environment: str) -> str:
    return f"{PROJECT}-{step.replace('_', '-')}-{environment}"


def environment_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings `environ` sets, as text (the model converts it); unset or empty ones are left out."""
    values: dict[str, Any] = {}
    for name, variables in VARIABLES.items():
        found = next((environ[variable] for variable in variables if environ.get(variable)), None)
        if found is not None:
            values[name] = found
    if environ.get(METRICS_DISABLED):
        values["metrics_enabled"] = environ[METRICS_DISABLED].lower() != "true"
    return values


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read AURORA_RESTORE_ENV and friends. Names default from the environment name, as in design.md."""
    values = environment_values(os.environ)
    env = values.get("environment")
    if not env:
        raise ConfigError("AURORA_RESTORE_ENV is not set: it names the environment (dev, staging, ...)")
    if not values.get("region"):
        raise ConfigError("AWS_REGION is not set")
    try:
        return Settings(**{**resource_names(env), **values})
    except ValidationError as exc:
        # Each problem by its field and message: pydantic's own text quotes the value and a help link.
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise ConfigError(f"invalid function settings: {problems}") from exc
