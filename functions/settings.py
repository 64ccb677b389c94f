"""Runtime settings of a function, from its environment, validated once at cold start."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.errors import ConfigError

# Every AWS name of an environment ends with it, and the longest, the EventBridge rule
# aurora-restore-recheck-check-restore-status-<env>, must fit EventBridge's and IAM's 64 characters.
ENVIRONMENT_MAX_CHARS = 20
ENVIRONMENT_PATTERN = rf"^[a-z0-9][a-z0-9-]{{0,{ENVIRONMENT_MAX_CHARS - 1}}}$"


class Settings(BaseModel):
    """Where things are. Not the restore configuration: see functions.config for that."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: str = Field(pattern=ENVIRONMENT_PATTERN)
    region: str
    state_table: str
    event_bus: str
    config_parameter: str
    db_users_parameter: str
    state_ttl_days: int = 30
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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read AURORA_RESTORE_ENV and friends. Names default from the environment name, as in design.md."""
    env = os.environ.get("AURORA_RESTORE_ENV")
    if not env:
        raise ConfigError("AURORA_RESTORE_ENV is not set: it names the environment (dev, staging, ...)")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise ConfigError("AWS_REGION is not set")
    try:
        return Settings(
            environment=env,
            region=region,
            state_table=os.environ.get("AURORA_RESTORE_STATE_TABLE") or f"aurora-restore-state-{env}",
            event_bus=os.environ.get("AURORA_RESTORE_EVENT_BUS") or f"aurora-restore-{env}",
            config_parameter=os.environ.get("AURORA_RESTORE_CONFIG_PARAMETER")
            or f"/aurora-restore/{env}/config",
            db_users_parameter=os.environ.get("AURORA_RESTORE_DB_USERS_PARAMETER")
            or f"/aurora-restore/{env}/db_users",
            state_ttl_days=int(os.environ.get("AURORA_RESTORE_STATE_TTL_DAYS", "30")),
            claim_seconds=float(os.environ.get("AURORA_RESTORE_CLAIM_SECONDS", "300")),
            stall_seconds=float(os.environ.get("AURORA_RESTORE_STALL_SECONDS", "900")),
            scheduler_role_arn=os.environ.get("AURORA_RESTORE_SCHEDULER_ROLE_ARN") or None,
            event_bus_arn=os.environ.get("AURORA_RESTORE_EVENT_BUS_ARN") or None,
            wakeup_grace_seconds=float(os.environ.get("AURORA_RESTORE_WAKEUP_GRACE_SECONDS", "120")),
            metrics_enabled=os.environ.get("POWERTOOLS_METRICS_DISABLED", "false").lower() != "true",
            pg_dsn=os.environ.get("AURORA_RESTORE_PG_DSN") or None,
        )
    except ValidationError as exc:
        # Each problem by its field and message: pydantic's own text quotes the value and a help link.
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise ConfigError(f"invalid function settings: {problems}") from exc
    except ValueError as exc:
        raise ConfigError(f"invalid function settings: {exc}") from exc


def function_name(step: str, environment: str) -> str:
    return f"aurora-restore-{step.replace('_', '-')}-{environment}"
