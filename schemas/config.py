"""The restore configuration (the runbook's eleven fields plus what real use needs) and the DB users."""

# No `from __future__ import annotations`: pydantic would compile and evaluate each field's annotation
# text when it builds the models, at every cold start (docs/performance.md, "Cold start").

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    model_validator,
)

from schemas.common import ClusterId, Region, TableName, empty_list
from schemas.masking import MaskingRules
from schemas.post_restore import PostRestoreScript

# Privileges a DB user may be granted on the restored tables: a whitelist, nothing else reaches SQL.
PRIVILEGES: tuple[str, ...] = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
Privilege = Literal["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"]
Username = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,62}$"),
    Field(
        description="A PostgreSQL role name: lower-case letters, digits and '_', not starting with a digit"
    ),
]
# Roles that only the cluster itself may own; PostgreSQL reserves `pg_*` and Aurora makes its own `rds_*`
# roles (rds_superuser, rds_iam, rds_password, rds_replication, ...).
RESERVED_USERNAMES = frozenset(
    # "none": PostgreSQL reserves it too (CREATE ROLE none is a syntax error, whatever the quoting).
    {"postgres", "rdsadmin", "rds_superuser", "public", "none", "pg_monitor", "rdsrepladmin"}
)
RESERVED_PREFIXES = ("pg_", "rds_")
# RDS's limit for a cluster, instance and cluster snapshot identifier (functions/identifiers.py cites it).
RDS_IDENTIFIER_MAX = 63
# A restored cluster's writer is `<target_cluster_id>-writer`.
WRITER_SUFFIX = "-writer"
MAX_TARGET_CLUSTER_ID = RDS_IDENTIFIER_MAX - len(WRITER_SUFFIX)
# A final snapshot is `<target_cluster_id>-final-<operation>` (the IAM policy and the pruning match that
# prefix), the operation cut and followed by a hash of it when too long (functions.identifiers.fitted): the
# target leaves room for the hash at least.
FINAL_SNAPSHOT_INFIX = "-final-"
IDENTIFIER_HASH_LENGTH = 8
MAX_FINAL_TARGET_CLUSTER_ID = RDS_IDENTIFIER_MAX - len(FINAL_SNAPSHOT_INFIX) - IDENTIFIER_HASH_LENGTH
# Under the swap strategy the restore is `<target_cluster_id>-new-<hash>` and the old target is renamed
# `<target_cluster_id>-old-<hash>` (functions.identifiers.swap_names), the hash the operation's; the new
# cluster's writer `<...-new-hash>-writer` must fit too.
SWAP_NEW_INFIX = "-new-"
SWAP_OLD_INFIX = "-old-"
SWAP_HASH_LENGTH = 6
MAX_SWAP_TARGET_CLUSTER_ID = MAX_TARGET_CLUSTER_ID - len(SWAP_NEW_INFIX) - SWAP_HASH_LENGTH
# What snapshot_name_pattern may name.
PATTERN_FIELDS = frozenset({"source_cluster_id", "date"})


def password_problem(password: str) -> str | None:
    """Why a password cannot be a PostgreSQL role's password (None: it can). Never names the password."""
    if not password:
        return "is empty"
    if "\x00" in password:
        return "holds a NUL character, which PostgreSQL cannot take"
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text (it holds a lone surrogate)"
    return None


def pattern_problem(pattern: str) -> str | None:
    """Why snapshot_name_pattern cannot name a snapshot (None: it can)."""
    import string

    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        return f"is not a format string ({exc})"
    names = {name for _, name, _, _ in parsed if name is not None}
    if "date" not in names:
        return "must contain {date}"
    unknown = sorted(names - PATTERN_FIELDS)
    if unknown or any(spec or conversion for _, name, spec, conversion in parsed if name is not None):
        return "may only use {source_cluster_id} and {date}, without a format spec"
    return None


AccountId = Annotated[
    str, StringConstraints(pattern=r"^\d{12}$"), Field(description="A 12-digit AWS account id")
]
RoleArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}$")
]
# STS's rule for an external id: 2 to 1224 characters of letters, digits and _+=,.@:/-.
ExternalId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_+=,.@:/-]{2,1224}$")]


def source_account_problem(account: str | None, role_arn: str | None, external_id: str | None) -> str | None:
    """Why the cross-account fields do not go together (None: they do): the role is the source account's,
    and the external id its trust policy asks for is set."""
    if account is None:
        if role_arn or external_id:
            return "source_role_arn and source_external_id need source_account_id"
        return None
    if role_arn and role_arn.split(":")[4] != account:
        return f"source_role_arn {role_arn} is not a role in the source account {account}"
    if not external_id:
        return "source_account_id needs source_external_id: the source role trusts the target with it only"
    return None


# A Secrets Manager secret's name (ASCII letters, digits and /_+=.@-) or its ARN.
_SECRET_ID = re.compile(
    r"(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:)?[A-Za-z0-9/_+=.@-]{1,512}"
)


def _secret_id(value: str) -> str:
    """Never quoted back: a value that is no secret name may well be the password itself, pasted."""
    if not _SECRET_ID.fullmatch(value):
        raise ValueError(
            "is not a Secrets Manager secret name (ASCII letters, digits and /_+=.@-) or ARN; the value is not"
            " shown, in case it is a password pasted in its place"
        )
    return value


SecretId = Annotated[
    str, AfterValidator(_secret_id), Field(description="A Secrets Manager secret's name or ARN")
]


class DbUser(BaseModel):
    """One application user. The password comes from Secrets Manager or, in a SecureString, a literal."""

    # Built on first use (USER_MODELS): only the steps that read the users need it.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    username: Username
    privileges: list[Privilege] = Field(min_length=1)
    password: SecretStr | None = None
    password_secret_id: SecretId | None = None
    schemas: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]] | None = Field(
        default=None,
        min_length=1,
        description="Schemas whose tables the privileges apply to; default (omitted): every non-system schema",
    )

    @model_validator(mode="after")
    def _one_password_source(self) -> "DbUser":
        if self.username in RESERVED_USERNAMES or self.username.startswith(RESERVED_PREFIXES):
            raise ValueError(f"username {self.username!r} is reserved")
        if (self.password is None) == (self.password_secret_id is None):
            raise ValueError(f"user {self.username!r} needs exactly one of password_secret_id or password")
        problem = password_problem(self.password.get_secret_value()) if self.password is not None else None
        if problem:
            raise ValueError(f"user {self.username!r}: the password {problem}")
        if len(set(self.privileges)) != len(self.privileges):
            raise ValueError(f"user {self.username!r} lists a privilege twice")
        return self


class DbUsers(BaseModel):
    model_config = ConfigDict(defer_build=True)  # as DbUser

    users: list[DbUser]

    @model_validator(mode="after")
    def _unique(self) -> "DbUsers":
        names = [user.username for user in self.users]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate usernames: {', '.join(duplicates)}")
        return self


# Deferred (defer_build): of the handlers, only snapshot_check, setup_db_users and verify_restore read the
# users, and they build these at import (functions.handler.make_handler's `models`); the others never do.
USER_MODELS: tuple[type[BaseModel], ...] = (DbUser, DbUsers)

# Bounds that keep every duration a number DynamoDB stores and datetime adds: a copy may take days, not years.
MAX_MINUTES = 30 * 24 * 60
MAX_SECONDS = 24 * 60 * 60


class RestoreConfig(BaseModel):
    """Everything an operation needs, resolved once per step. Holds no secret values, only their ids."""

    model_config = ConfigDict(extra="forbid")

    # The runbook's eleven.
    source_region: Region
    target_region: Region
    source_cluster_id: ClusterId
    target_cluster_id: ClusterId
    target_subnet_group: str = Field(min_length=1)
    target_security_groups: list[Annotated[str, StringConstraints(pattern=r"^sg-[0-9a-f]{8,17}$")]] = Field(
        min_length=1
    )
    master_credentials_secret_id: SecretId
    notification_topic_arn: Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:sns:")]
    notification_queue_url: Annotated[str, StringConstraints(pattern=r"^https?://")]
    log_bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    log_prefix: str = "aurora-restore-logs"

    # What real use needs.
    strategy: Literal["replace", "swap"] = Field(
        default="replace",
        description="replace: delete the target, then restore under its name (the runbook's order); swap:"
        " restore beside the target, verify, then switch by rename and delete the old cluster",
    )
    engine: Literal["aurora-postgresql"] = "aurora-postgresql"
    engine_version: str | None = None
    instance_class: str = Field(default="db.r6g.large", pattern=r"^db\.[a-z0-9.]+$")
    serverless_min_capacity: float = Field(default=0.5, ge=0, le=256)
    serverless_max_capacity: float = Field(default=4.0, ge=1, le=256)
    kms_key_id: str | None = None
    cluster_parameter_group: str | None = Field(
        default=None,
        min_length=1,
        description="The restored cluster's DB cluster parameter group; unset: the old target's (unless RDS's"
        " default), else RDS's default for the version",
    )
    db_parameter_group: str | None = Field(
        default=None,
        min_length=1,
        description="The writer's DB parameter group; unset: the old writer's (unless RDS's default), else RDS's"
        " default",
    )
    snapshot_name_pattern: str = Field(default="{source_cluster_id}-snapshot-{date}")
    database_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")] = "postgres"
    expected_tables: list[TableName] = Field(default_factory=empty_list)
    copy_timeout_minutes: float = Field(default=240, ge=0.001, le=MAX_MINUTES)
    delete_timeout_minutes: float = Field(default=90, ge=0.001, le=MAX_MINUTES)
    restore_timeout_minutes: float = Field(default=180, ge=0.001, le=MAX_MINUTES)
    swap_timeout_minutes: float = Field(
        default=30, ge=0.001, le=MAX_MINUTES, description="How long swap_clusters may wait for its renames"
    )
    recheck_interval_seconds: float = Field(
        default=60.0,
        ge=0.001,
        le=MAX_SECONDS,
        description="Shortest time between two checks of a wait (and the copy's first re-check)",
    )
    event_wait_recheck_seconds: float = Field(
        default=900.0,
        ge=0.001,
        le=MAX_SECONDS,
        description="Safety re-check of a wait that RDS events end (deletion, restore)",
    )
    delete_copied_snapshot: bool = True
    delete_logs: bool = False
    delete_state: bool = False
    state_retention_days: int = Field(default=30, ge=1, le=3650)
    final_snapshot: bool = False
    final_snapshots_kept: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Keep only the N newest final snapshots of the target (cleanup deletes older ones);"
        " unset keeps them all",
    )
    protected_cluster_ids: list[ClusterId] = Field(default_factory=empty_list)
    allow_deletion_protected: bool = False
    # Masking and post-restore SQL (docs/masking.md): the environment's configuration only, never a request.
    masking_rules: MaskingRules = Field(
        default_factory=empty_list, description="Columns masked after the restore, before any user can log in"
    )
    masking_key_secret_id: SecretId | None = Field(
        default=None, description="The secret holding the environment's masking key (required with rules)"
    )
    masking_batch_rows: int = Field(
        default=1_000_000, ge=1, le=100_000_000, description="Rows masked per transaction on a large table"
    )
    masking_timeout_minutes: float = Field(
        default=720, ge=0.001, le=MAX_MINUTES, description="How long mask_data may take, all invocations"
    )
    post_restore_sql: list[PostRestoreScript] = Field(
        default_factory=empty_list,
        description="Scripts run once each, in order, after masking, before the users",
    )

    @model_validator(mode="after")
    def _masking(self) -> "RestoreConfig":
        if self.masking_rules and not self.masking_key_secret_id:
            raise ValueError("masking_rules need masking_key_secret_id: the secret holding the masking key")
        return self

    # Cross-account source (docs/cross-account.md): unset, the source cluster is in the target's account.
    source_account_id: AccountId | None = Field(
        default=None, description="The AWS account holding the source cluster; unset: the target's account"
    )
    source_role_arn: RoleArn | None = Field(
        default=None,
        description="The role assumed in the source account; unset with source_account_id:"
        " arn:<partition>:iam::<source_account_id>:role/aurora-restore-source-<environment>",
    )
    source_external_id: ExternalId | None = Field(
        default=None,
        description="The external id the source role's trust policy requires (not a secret, per AWS)",
    )

    @model_validator(mode="after")
    def _guard(self) -> "RestoreConfig":
        if self.target_cluster_id == self.source_cluster_id and self.target_region == self.source_region:
            raise ValueError("target_cluster_id is the source cluster: refusing to restore over the source")
        if self.target_cluster_id in self.protected_cluster_ids:
            raise ValueError(f"target cluster {self.target_cluster_id!r} is on the protected list")
        if self.serverless_min_capacity > self.serverless_max_capacity:
            raise ValueError("serverless_min_capacity is above serverless_max_capacity")
        problem = pattern_problem(self.snapshot_name_pattern)
        if problem:
            raise ValueError(f"snapshot_name_pattern {problem}")
        problem = source_account_problem(
            self.source_account_id, self.source_role_arn, self.source_external_id
        )
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _derived_names_fit(self) -> "RestoreConfig":
        """The names derived from the target fit RDS's identifiers, or the configuration is refused before
        anything changes (a name RDS refuses would fail the operation after the target was deleted)."""
        length = len(self.target_cluster_id)
        if length > MAX_TARGET_CLUSTER_ID:
            raise ValueError(
                f"target_cluster_id has {length} characters: at most {MAX_TARGET_CLUSTER_ID}, so that its writer"
                f" `<target_cluster_id>{WRITER_SUFFIX}` fits RDS's {RDS_IDENTIFIER_MAX} for an instance identifier"
            )
        if self.final_snapshot and length > MAX_FINAL_TARGET_CLUSTER_ID:
            raise ValueError(
                f"final_snapshot: target_cluster_id has {length} characters, at most {MAX_FINAL_TARGET_CLUSTER_ID}"
                f" with final_snapshot on, so that the final snapshot `<target_cluster_id>{FINAL_SNAPSHOT_INFIX}"
                f"<operation>` (the operation shortened to a {IDENTIFIER_HASH_LENGTH}-character hash at least) fits"
                f" RDS's {RDS_IDENTIFIER_MAX} for a DB cluster snapshot identifier"
            )
        if self.strategy == "swap" and length > MAX_SWAP_TARGET_CLUSTER_ID:
            raise ValueError(
                f"strategy swap: target_cluster_id has {length} characters, at most {MAX_SWAP_TARGET_CLUSTER_ID}"
                f" under swap, so that the cluster restored beside it `<target_cluster_id>{SWAP_NEW_INFIX}<hash>`"
                f" and its writer fit RDS's {RDS_IDENTIFIER_MAX} for an identifier (or use strategy replace)"
            )
        return self

    @property
    def serverless(self) -> bool:
        return self.instance_class == "db.serverless"


CONFIG_FIELDS: tuple[str, ...] = tuple(RestoreConfig.model_fields)
# Fields a request may not set (its overrides, a direct payload): masking and the SQL run as the master come
# from the environment's configuration only, so no request can weaken or skip them.
ENVIRONMENT_ONLY_FIELDS: tuple[str, ...] = ("masking_rules", "masking_key_secret_id", "post_restore_sql")


def environment_only_problem(requested: object) -> str | None:
    """Why a request's overrides or payload may not be used (None: it may): it names a field that comes
    from the environment's configuration only, whatever its value (an empty list too)."""
    named = sorted(set(requested) & set(ENVIRONMENT_ONLY_FIELDS)) if isinstance(requested, dict) else []
    if not named:
        return None
    return (
        f"{', '.join(named)} come(s) from the environment's configuration only: a request may not set"
        " them (masking and post-restore SQL cannot be changed or skipped per request)"
    )
