"""The stack's configuration (Pulumi.<stack>.yaml), read and checked once, before any resource is declared."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
from pydantic import ValidationError

from functions.routes import FUNCTIONS, RECONCILE_SCHEDULE
from functions.settings import ENVIRONMENT_MAX_CHARS, PROJECT, function_name, resource_names
from functions.settings import ENVIRONMENT_PATTERN as FUNCTION_ENVIRONMENT_PATTERN
from functions.settings import default as function_default
from infra.package import DEFAULT_ARCHITECTURE, DEFAULT_PYTHON_VERSION, PLATFORMS
from schemas.config import CONFIG_FIELDS, DbUsers, RestoreConfig

ENVIRONMENT_PATTERN = re.compile(FUNCTION_ENVIRONMENT_PATTERN)
RUNTIMES = ("python3.12", "python3.13")
ARCHITECTURES = tuple(PLATFORMS)
# The defaults of the stack's settings, each written once: the runtime and architecture are what
# `make package` builds for, the state item's TTL is the functions' own default.
DEFAULT_RUNTIME = f"python{DEFAULT_PYTHON_VERSION}"
LOG_RETENTION_DAYS = 30
STATE_TTL_DAYS: int = function_default("state_ttl_days")
ARCHIVE_RETENTION_DAYS = 30
LOG_EXPIRATION_DAYS = 90
# The stack creates these and writes them into the SSM config document itself.
STACK_OWNED_KEYS = ("notification_topic_arn", "notification_queue_url", "log_bucket", "masking_key_secret_id")
# Stand-ins for the stack-owned keys, only to validate the rest of the document before deploying.
_PLACEHOLDERS = {
    "notification_topic_arn": "arn:aws:sns:us-east-1:000000000000:placeholder",
    "notification_queue_url": "https://sqs.us-east-1.amazonaws.com/000000000000/placeholder",
    "log_bucket": "placeholder-bucket",
    "masking_key_secret_id": "aurora-restore/placeholder/masking-key",
}
# The database steps load psycopg2 and talk to PostgreSQL: more memory and time than the API-only steps.
# setup_db_users computes a SCRAM verifier (PBKDF2, 4,096 rounds) per user: 1,769 MB is where Lambda gives
# a whole vCPU (at 512 MB, ~0.3 of one, 1,000 users' verifiers alone took ~3 s); one short run per restore.
# mask_data masks in batches for half its timeout per invocation: the longest Lambda allows.
DEFAULT_SIZING: dict[str, tuple[int, int]] = {
    "mask_data": (1769, 900),
    "setup_db_users": (1769, 300),
    "verify_restore": (512, 300),
}
DEFAULT_MEMORY_MB = 256
DEFAULT_TIMEOUT_S = 60


class StackConfigError(ValueError):
    """The stack configuration is wrong; the message says which key and how to fix it."""


@dataclass(frozen=True)
class Sizing:
    memory_mb: int
    timeout_s: int


@dataclass(frozen=True)
class AlertEndpoint:
    protocol: str
    endpoint: str


@dataclass(frozen=True)
class StackSettings:
    environment: str
    region: str
    restore: dict[str, Any]
    runtime: str = DEFAULT_RUNTIME
    architecture: Literal["arm64", "x86_64"] = DEFAULT_ARCHITECTURE
    artifact_path: str | None = None
    sizing: dict[str, Sizing] = field(default_factory=dict)
    log_retention_days: int = LOG_RETENTION_DAYS
    lambda_subnet_ids: tuple[str, ...] = ()
    lambda_security_group_ids: tuple[str, ...] = ()
    alert_endpoints: tuple[AlertEndpoint, ...] = ()
    tracing: bool = False
    state_ttl_days: int = STATE_TTL_DAYS
    archive_retention_days: int = ARCHIVE_RETENTION_DAYS
    log_bucket_name: str | None = None
    log_expiration_days: int = LOG_EXPIRATION_DAYS
    force_destroy: bool = False
    target_instance_ids: tuple[str, ...] = ()
    extra_kms_key_arns: tuple[str, ...] = ()
    reconcile_schedule: str = RECONCILE_SCHEDULE

    # -- derived names (design.md, "Names"): the ones the functions default to --------------------------
    def function_name(self, function: str) -> str:
        return function_name(function, self.environment)

    @property
    def bus_name(self) -> str:
        return resource_names(self.environment)["event_bus"]

    @property
    def table_name(self) -> str:
        return resource_names(self.environment)["state_table"]

    @property
    def config_parameter(self) -> str:
        return resource_names(self.environment)["config_parameter"]

    @property
    def db_users_parameter(self) -> str:
        return resource_names(self.environment)["db_users_parameter"]

    def name(self, what: str) -> str:
        """aurora-restore-<what>-<env>, the pattern of every other resource name."""
        return f"{PROJECT}-{what}-{self.environment}"

    @property
    def source_region(self) -> str:
        return str(self.restore["source_region"])

    @property
    def target_cluster_id(self) -> str:
        return str(self.restore["target_cluster_id"])

    @property
    def log_prefix(self) -> str:
        return str(self.restore.get("log_prefix") or RestoreConfig.model_fields["log_prefix"].default).strip(
            "/"
        )

    @property
    def in_vpc(self) -> bool:
        return bool(self.lambda_subnet_ids)

    def sizing_of(self, function: str) -> Sizing:
        return self.sizing[function]


def _string_list(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise StackConfigError(f"{PROJECT}:{key} must be a list of strings")
    return tuple(value)


# A key of another region (the source region's snapshot key) can only be named by its ARN: a key id or an
# alias name alone means a key of the target region, where the functions run.
KMS_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/\S+$")


def kms_key_arns(value: Any) -> tuple[str, ...]:
    """aurora-restore:kmsKeyArns: key ARNs or alias ARNs, each granted in the region its ARN names."""
    arns = _string_list(value, "kmsKeyArns")
    wrong = [arn for arn in arns if not KMS_ARN.match(arn)]
    if wrong:
        raise StackConfigError(
            f"{PROJECT}:kmsKeyArns: {', '.join(wrong)} is not a KMS key or alias ARN"
            " (arn:aws:kms:<region>:<account>:key/<key id> or ...:alias/<name>): a key id or an alias name"
            " alone would name a key of the target region, not the source region's"
        )
    return arns


def validate_restore(document: dict[str, Any]) -> dict[str, Any]:
    """The restore configuration as the functions will validate it, minus what the stack fills in."""
    unknown = sorted(set(document) - set(CONFIG_FIELDS))
    if unknown:
        raise StackConfigError(f"{PROJECT}:restore has unknown keys: {', '.join(unknown)}")
    owned = sorted(set(document) & set(STACK_OWNED_KEYS))
    if owned:
        raise StackConfigError(
            f"{PROJECT}:restore sets {', '.join(owned)}: the stack creates these and fills them in "
            "(name the log bucket with aurora-restore:logBucketName)"
        )
    try:
        RestoreConfig.model_validate({**document, **_PLACEHOLDERS})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise StackConfigError(f"{PROJECT}:restore is invalid: {problems}") from exc
    return document


def validate_db_users(document: Any) -> DbUsers:
    """The DB users document; errors name the user and field, never echo a value (they may be passwords)."""
    if isinstance(document, dict) and "users" in document:
        document = document["users"]
    if not isinstance(document, list):
        raise StackConfigError(f"{PROJECT}:dbUsers must be a JSON list of users")
    try:
        return DbUsers.model_validate({"users": document})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise StackConfigError(f"{PROJECT}:dbUsers is invalid: {problems}") from None


def user_secret_ids(document: Any) -> list[str]:
    """The Secrets Manager ids the DB users name (ids, not passwords: they go into IAM policies)."""
    users = validate_db_users(document)
    return sorted({user.password_secret_id for user in users.users if user.password_secret_id})


def _sizing(raw: Any) -> dict[str, Sizing]:
    overrides = raw or {}
    if not isinstance(overrides, dict) or not set(overrides) <= set(FUNCTIONS):
        raise StackConfigError(
            f"{PROJECT}:functions must map function names ({', '.join(FUNCTIONS)}) to "
            "{{memorySize, timeout}}"
        )
    sizing: dict[str, Sizing] = {}
    for function in FUNCTIONS:
        memory, timeout = DEFAULT_SIZING.get(function, (DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S))
        override = overrides.get(function) or {}
        memory = int(override.get("memorySize", memory))
        timeout = int(override.get("timeout", timeout))
        if not 128 <= memory <= 10240 or not 1 <= timeout <= 900:
            raise StackConfigError(f"{PROJECT}:functions.{function}: memorySize 128-10240, timeout 1-900")
        sizing[function] = Sizing(memory, timeout)
    return sizing


def _alerts(config: pulumi.Config) -> tuple[AlertEndpoint, ...]:
    found = [
        AlertEndpoint("email", email)
        for email in _string_list(config.get_object("alertEmails"), "alertEmails")
    ]
    for item in config.get_object("alertEndpoints") or []:
        if not isinstance(item, dict) or not item.get("protocol") or not item.get("endpoint"):
            raise StackConfigError(f"{PROJECT}:alertEndpoints entries need protocol and endpoint")
        found.append(AlertEndpoint(str(item["protocol"]), str(item["endpoint"])))
    return tuple(found)


def load() -> StackSettings:
    """Read the stack's configuration. Raises StackConfigError with the key to fix."""
    config = pulumi.Config(PROJECT)
    environment = config.get("environment") or pulumi.get_stack()
    if not ENVIRONMENT_PATTERN.match(environment):
        raise StackConfigError(
            f"environment {environment!r} (the stack name or {PROJECT}:environment) must be lower-case"
            f" letters, digits and hyphens, at most {ENVIRONMENT_MAX_CHARS} characters (it ends every AWS name)"
        )
    region = pulumi.Config("aws").require("region")
    restore = config.require_object("restore")
    if not isinstance(restore, dict):
        raise StackConfigError(f"{PROJECT}:restore must be an object of the runbook's config keys")
    restore = validate_restore(restore)
    if restore["target_region"] != region:
        raise StackConfigError(
            f"{PROJECT}:restore.target_region is {restore['target_region']} but aws:region is {region}: "
            "the functions run in the target region, where RDS delivers its events"
        )
    runtime = config.get("runtime") or DEFAULT_RUNTIME
    if runtime not in RUNTIMES:
        raise StackConfigError(f"{PROJECT}:runtime must be one of {', '.join(RUNTIMES)}")
    architecture = config.get("architecture") or DEFAULT_ARCHITECTURE
    if architecture not in ARCHITECTURES:
        raise StackConfigError(f"{PROJECT}:architecture must be one of {', '.join(ARCHITECTURES)}")
    subnets = _string_list(config.get_object("lambdaSubnetIds"), "lambdaSubnetIds")
    groups = _string_list(config.get_object("lambdaSecurityGroupIds"), "lambdaSecurityGroupIds")
    if bool(subnets) != bool(groups):
        raise StackConfigError(f"{PROJECT}:lambdaSubnetIds and lambdaSecurityGroupIds go together")
    return StackSettings(
        environment=environment,
        region=region,
        restore=restore,
        runtime=runtime,
        architecture=architecture,  # type: ignore[arg-type]
        artifact_path=config.get("artifactPath"),
        sizing=_sizing(config.get_object("functions")),
        log_retention_days=config.get_int("logRetentionDays") or LOG_RETENTION_DAYS,
        lambda_subnet_ids=subnets,
        lambda_security_group_ids=groups,
        alert_endpoints=_alerts(config),
        tracing=bool(config.get_bool("tracing")),
        state_ttl_days=config.get_int("stateTtlDays") or STATE_TTL_DAYS,
        archive_retention_days=config.get_int("archiveRetentionDays") or ARCHIVE_RETENTION_DAYS,
        log_bucket_name=config.get("logBucketName"),
        log_expiration_days=config.get_int("logExpirationDays") or LOG_EXPIRATION_DAYS,
        force_destroy=bool(config.get_bool("forceDestroy")),
        target_instance_ids=_string_list(config.get_object("targetInstanceIds"), "targetInstanceIds"),
        extra_kms_key_arns=kms_key_arns(config.get_object("kmsKeyArns")),
        reconcile_schedule=config.get("reconcileSchedule") or RECONCILE_SCHEDULE,
    )
