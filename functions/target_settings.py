"""The target's own settings: read before a refresh, checked up front, and put back on the restored cluster.

A restore from a snapshot takes RDS's defaults for everything the request leaves out (the default parameter
groups, a day of backups, no log exports, no tags), so what the target had is read while it still exists and
asked for again by name. Configuration wins where it speaks: a field set anywhere but its default.
"""

from __future__ import annotations

from typing import Any

from functions.errors import ConfigError
from functions.rds import RdsAdapter
from schemas.config import RestoreConfig
from schemas.target_settings import ScalingRange, TargetSettings, WriterSettings

# Tags that are not the target's own: AWS's, and the ones each operation puts on what it restores.
FOREIGN_TAG_PREFIXES = ("aws:", "aurora-restore:")
# RDS's own parameter groups: the restore gets the default of its engine version without naming one, and a
# default of another version (the restore at a newer one) would be refused.
DEFAULT_GROUP_PREFIX = "default."


def read(rds: RdsAdapter, cluster: dict[str, Any]) -> TargetSettings:
    """The settings of `cluster` as RDS describes it, and of its writer."""
    writer_id = next(
        (m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", []) if m.get("IsClusterWriter")),
        None,
    )
    instance = rds.instance(writer_id) if writer_id else None
    scaling = cluster.get("ServerlessV2ScalingConfiguration")
    return TargetSettings(
        cluster_id=cluster["DBClusterIdentifier"],
        engine_version=cluster.get("EngineVersion"),
        cluster_parameter_group=cluster.get("DBClusterParameterGroup"),
        subnet_group=cluster.get("DBSubnetGroup"),
        security_groups=[group["VpcSecurityGroupId"] for group in cluster.get("VpcSecurityGroups", [])],
        backup_retention_days=cluster.get("BackupRetentionPeriod"),
        preferred_backup_window=cluster.get("PreferredBackupWindow"),
        preferred_maintenance_window=cluster.get("PreferredMaintenanceWindow"),
        cloudwatch_logs_exports=list(cluster.get("EnabledCloudwatchLogsExports") or []),
        iam_database_authentication=cluster.get("IAMDatabaseAuthenticationEnabled"),
        copy_tags_to_snapshot=cluster.get("CopyTagsToSnapshot"),
        deletion_protection=bool(cluster.get("DeletionProtection")),
        tags={
            tag["Key"]: tag["Value"]
            for tag in cluster.get("TagList", [])
            if not tag["Key"].startswith(FOREIGN_TAG_PREFIXES)
        },
        serverless_v2_scaling=ScalingRange(
            min_capacity=scaling["MinCapacity"], max_capacity=scaling["MaxCapacity"]
        )
        if scaling
        else None,
        writer=_writer(instance) if instance else None,
    )


def _writer(instance: dict[str, Any]) -> WriterSettings:
    groups = [group["DBParameterGroupName"] for group in instance.get("DBParameterGroups", [])]
    insights = bool(instance.get("PerformanceInsightsEnabled"))
    return WriterSettings(
        instance_class=instance.get("DBInstanceClass"),
        db_parameter_group=groups[0] if groups else None,
        auto_minor_version_upgrade=instance.get("AutoMinorVersionUpgrade"),
        ca_certificate=instance.get("CACertificateIdentifier"),
        preferred_maintenance_window=instance.get("PreferredMaintenanceWindow"),
        performance_insights=insights,
        performance_insights_kms_key_id=instance.get("PerformanceInsightsKMSKeyId") if insights else None,
        performance_insights_retention_days=instance.get("PerformanceInsightsRetentionPeriod")
        if insights
        else None,
        monitoring_interval_s=instance.get("MonitoringInterval"),
        monitoring_role_arn=instance.get("MonitoringRoleArn") if instance.get("MonitoringInterval") else None,
    )


def _spoken(sources: dict[str, str], name: str) -> bool:
    return sources.get(name, "default") != "default"


def family(engine: str, version: str | None) -> str | None:
    """The parameter group family of an Aurora PostgreSQL version: `aurora-postgresql` and its major."""
    return f"{engine}{version.split('.')[0]}" if version else None


def cluster_parameter_group(settings: TargetSettings | None, config: RestoreConfig) -> str | None:
    if config.cluster_parameter_group:
        return config.cluster_parameter_group
    recorded = settings.cluster_parameter_group if settings else None
    return recorded if recorded and not recorded.startswith(DEFAULT_GROUP_PREFIX) else None


def db_parameter_group(settings: TargetSettings | None, config: RestoreConfig) -> str | None:
    if config.db_parameter_group:
        return config.db_parameter_group
    recorded = settings.writer.db_parameter_group if settings and settings.writer else None
    return recorded if recorded and not recorded.startswith(DEFAULT_GROUP_PREFIX) else None


def instance_class(settings: TargetSettings | None, config: RestoreConfig, sources: dict[str, str]) -> str:
    """The writer's class: the configuration's when set, else the old writer's, else the default."""
    recorded = settings.writer.instance_class if settings and settings.writer else None
    if recorded and not _spoken(sources, "instance_class"):
        return recorded
    return config.instance_class


def check_parameter_groups(
    rds: RdsAdapter, settings: TargetSettings | None, config: RestoreConfig, version: str | None
) -> None:
    """A parameter group of another family than the restore's version is refused by RDS after the target
    was deleted: refused here instead, with the fix."""
    wanted = family(config.engine, version)
    if wanted is None:
        return
    groups = (
        ("cluster_parameter_group", cluster_parameter_group(settings, config), True),
        ("db_parameter_group", db_parameter_group(settings, config), False),
    )
    for field, group, of_cluster in groups:
        if group is None:
            continue
        found = rds.parameter_group_family(group, cluster=of_cluster)
        if found is None:
            raise ConfigError(f"{field}: no parameter group {group} in {config.target_region}")
        if found != wanted:
            raise ConfigError(
                f"{field}: parameter group {group} is of family {found}, and the restore is {config.engine}"
                f" {version} ({wanted}): set {field} to a group of family {wanted}"
            )


def restore_arguments(
    settings: TargetSettings | None, config: RestoreConfig, sources: dict[str, str]
) -> dict[str, Any]:
    """RestoreDBClusterFromSnapshot's arguments for the settings (tags are merged by the caller)."""
    arguments: dict[str, Any] = {"DeletionProtection": False, "CopyTagsToSnapshot": True}
    group = cluster_parameter_group(settings, config)
    if group:
        arguments["DBClusterParameterGroupName"] = group
    if instance_class(settings, config, sources) == "db.serverless":
        arguments["ServerlessV2ScalingConfiguration"] = _scaling(settings, config, sources)
    if settings is None:
        return arguments
    arguments["DeletionProtection"] = settings.deletion_protection
    optional = {
        "CopyTagsToSnapshot": settings.copy_tags_to_snapshot,
        "BackupRetentionPeriod": settings.backup_retention_days,
        "PreferredBackupWindow": settings.preferred_backup_window,
        "EnableCloudwatchLogsExports": settings.cloudwatch_logs_exports or None,
        "EnableIAMDatabaseAuthentication": settings.iam_database_authentication,
    }
    arguments.update({key: value for key, value in optional.items() if value is not None})
    return arguments


def _scaling(
    settings: TargetSettings | None, config: RestoreConfig, sources: dict[str, str]
) -> dict[str, float]:
    recorded = settings.serverless_v2_scaling if settings else None
    low = config.serverless_min_capacity
    high = config.serverless_max_capacity
    if recorded and not _spoken(sources, "serverless_min_capacity"):
        low = recorded.min_capacity
    if recorded and not _spoken(sources, "serverless_max_capacity"):
        high = recorded.max_capacity
    return {"MinCapacity": low, "MaxCapacity": max(low, high)}


def cluster_modifications(settings: TargetSettings | None) -> dict[str, Any]:
    """What RestoreDBClusterFromSnapshot cannot take, asked for with the master password's ModifyDBCluster."""
    window = settings.preferred_maintenance_window if settings else None
    return {"PreferredMaintenanceWindow": window} if window else {}


def writer_arguments(
    settings: TargetSettings | None, config: RestoreConfig, sources: dict[str, str]
) -> dict[str, Any]:
    """CreateDBInstance's arguments for the writer's settings, its class included."""
    arguments: dict[str, Any] = {"DBInstanceClass": instance_class(settings, config, sources)}
    group = db_parameter_group(settings, config)
    if group:
        arguments["DBParameterGroupName"] = group
    writer = settings.writer if settings else None
    if writer is None:
        return arguments
    optional: dict[str, Any] = {
        "AutoMinorVersionUpgrade": writer.auto_minor_version_upgrade,
        "CACertificateIdentifier": writer.ca_certificate,
        "PreferredMaintenanceWindow": writer.preferred_maintenance_window,
    }
    if writer.performance_insights:
        optional |= {
            "EnablePerformanceInsights": True,
            "PerformanceInsightsKMSKeyId": writer.performance_insights_kms_key_id,
            "PerformanceInsightsRetentionPeriod": writer.performance_insights_retention_days,
        }
    if writer.monitoring_interval_s:
        optional |= {
            "MonitoringInterval": writer.monitoring_interval_s,
            "MonitoringRoleArn": writer.monitoring_role_arn,
        }
    arguments.update({key: value for key, value in optional.items() if value is not None})
    return arguments


def current(rds: RdsAdapter, cluster_id: str) -> TargetSettings | None:
    """The target's settings now; None when there is no target cluster (a first refresh)."""
    cluster = rds.cluster(cluster_id)
    return read(rds, cluster) if cluster else None


def recorded(outputs: dict[str, Any]) -> TargetSettings | None:
    """The settings snapshot_check recorded in the operation's outputs."""
    found = outputs.get("target_settings")
    return TargetSettings.model_validate(found) if found else None
