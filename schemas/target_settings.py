"""The target cluster's own settings, recorded before a refresh changes it and put back on what replaces it."""

# No `from __future__ import annotations`: pydantic would compile and evaluate each field's annotation
# text when it builds the models, at every cold start (docs/performance.md, "Cold start").

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import empty_list


class ScalingRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_capacity: float
    max_capacity: float


class WriterSettings(BaseModel):
    """The writer instance's settings (on Aurora, Performance Insights and monitoring are per instance)."""

    model_config = ConfigDict(extra="forbid")

    instance_class: str | None = None
    db_parameter_group: str | None = Field(default=None, description="Its DB parameter group")
    auto_minor_version_upgrade: bool | None = None
    ca_certificate: str | None = Field(default=None, description="The CA certificate its server presents")
    preferred_maintenance_window: str | None = None
    performance_insights: bool | None = None
    performance_insights_kms_key_id: str | None = None
    performance_insights_retention_days: int | None = None
    monitoring_interval_s: int | None = Field(default=None, description="Enhanced monitoring; 0 is off")
    monitoring_role_arn: str | None = None


class TargetSettings(BaseModel):
    """What the target cluster was configured with before the refresh; no secret is among them."""

    model_config = ConfigDict(extra="forbid")

    cluster_id: str
    engine_version: str | None = None
    cluster_parameter_group: str | None = None
    subnet_group: str | None = None
    security_groups: list[str] = Field(default_factory=empty_list)
    backup_retention_days: int | None = None
    preferred_backup_window: str | None = None
    preferred_maintenance_window: str | None = None
    cloudwatch_logs_exports: list[str] = Field(default_factory=empty_list)
    iam_database_authentication: bool | None = None
    copy_tags_to_snapshot: bool | None = None
    deletion_protection: bool = False
    tags: dict[str, str] = Field(
        default_factory=dict, description="Its own tags: neither AWS's (`aws:`) nor ours (`aurora-restore:`)"
    )
    serverless_v2_scaling: ScalingRange | None = None
    writer: WriterSettings | None = Field(default=None, description="None when the cluster had no writer")
