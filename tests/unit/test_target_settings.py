"""What a refresh asks RDS for to keep the target's settings, and where configuration wins."""

from __future__ import annotations

from typing import Any

import pytest

from functions import target_settings
from functions.errors import ConfigError
from schemas.config import RestoreConfig
from schemas.target_settings import ScalingRange, TargetSettings, WriterSettings
from unit.fakes import RUNBOOK_CONFIG

RECORDED = TargetSettings(
    cluster_id="dev-target",
    engine_version="15.4",
    cluster_parameter_group="team-cluster-params",
    backup_retention_days=14,
    preferred_backup_window="03:00-03:30",
    preferred_maintenance_window="sun:05:00-sun:05:30",
    cloudwatch_logs_exports=["postgresql"],
    iam_database_authentication=True,
    copy_tags_to_snapshot=False,
    deletion_protection=True,
    tags={"team": "data"},
    serverless_v2_scaling=ScalingRange(min_capacity=1, max_capacity=16),
    writer=WriterSettings(
        instance_class="db.serverless",
        db_parameter_group="default.aurora-postgresql15",
        auto_minor_version_upgrade=False,
        ca_certificate="rds-ca-ecc384-g1",
        performance_insights=True,
        performance_insights_kms_key_id="arn:aws:kms:us-west-2:123456789012:key/pi",
        performance_insights_retention_days=7,
        monitoring_interval_s=60,
        monitoring_role_arn="arn:aws:iam::123456789012:role/rds-monitoring",
    ),
)


def _config(**fields: Any) -> RestoreConfig:
    return RestoreConfig.model_validate({**RUNBOOK_CONFIG, **fields})


def test_the_restore_asks_for_what_the_target_had() -> None:
    arguments = target_settings.restore_arguments(RECORDED, _config(), {})
    assert arguments == {
        "DBClusterParameterGroupName": "team-cluster-params",
        "DeletionProtection": True,
        "CopyTagsToSnapshot": False,
        "BackupRetentionPeriod": 14,
        "PreferredBackupWindow": "03:00-03:30",
        "EnableCloudwatchLogsExports": ["postgresql"],
        "EnableIAMDatabaseAuthentication": True,
        "ServerlessV2ScalingConfiguration": {"MinCapacity": 1, "MaxCapacity": 16},
    }
    assert target_settings.cluster_modifications(RECORDED) == {
        "PreferredMaintenanceWindow": "sun:05:00-sun:05:30"
    }


def test_the_writer_gets_the_old_writers_settings_but_not_rds_default_group() -> None:
    arguments = target_settings.writer_arguments(RECORDED, _config(), {})
    assert arguments == {
        "DBInstanceClass": "db.serverless",
        "AutoMinorVersionUpgrade": False,
        "CACertificateIdentifier": "rds-ca-ecc384-g1",
        "EnablePerformanceInsights": True,
        "PerformanceInsightsKMSKeyId": "arn:aws:kms:us-west-2:123456789012:key/pi",
        "PerformanceInsightsRetentionPeriod": 7,
        "MonitoringInterval": 60,
        "MonitoringRoleArn": "arn:aws:iam::123456789012:role/rds-monitoring",
    }


def test_configuration_wins_where_it_speaks() -> None:
    config = _config(
        instance_class="db.r6g.xlarge",
        cluster_parameter_group="refresh-cluster-params",
        db_parameter_group="refresh-writer-params",
    )
    sources = {"instance_class": "ssm", "cluster_parameter_group": "ssm", "db_parameter_group": "event"}
    restore = target_settings.restore_arguments(RECORDED, config, sources)
    writer = target_settings.writer_arguments(RECORDED, config, sources)
    assert restore["DBClusterParameterGroupName"] == "refresh-cluster-params"
    assert "ServerlessV2ScalingConfiguration" not in restore  # not serverless any more
    assert writer["DBInstanceClass"] == "db.r6g.xlarge"
    assert writer["DBParameterGroupName"] == "refresh-writer-params"


def test_a_default_valued_field_does_not_speak_but_a_set_one_does() -> None:
    config = _config(serverless_max_capacity=32)
    scaling = target_settings.restore_arguments(RECORDED, config, {"serverless_max_capacity": "env"})
    assert scaling["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 1, "MaxCapacity": 32}


def test_without_a_target_the_restore_is_the_configurations() -> None:
    assert target_settings.restore_arguments(None, _config(), {}) == {
        "DeletionProtection": False,
        "CopyTagsToSnapshot": True,
    }
    assert target_settings.writer_arguments(None, _config(), {}) == {"DBInstanceClass": "db.r6g.large"}
    assert target_settings.cluster_modifications(None) == {}


class _Groups:
    def __init__(self, families: dict[str, str]) -> None:
        self.families = families

    def parameter_group_family(self, name: str, *, cluster: bool) -> str | None:
        return self.families.get(name)


def test_a_parameter_group_of_another_family_is_refused_with_the_fix() -> None:
    rds: Any = _Groups({"team-cluster-params": "aurora-postgresql14"})
    with pytest.raises(
        ConfigError,
        match="family aurora-postgresql14.*set cluster_parameter_group to a group of family aurora-postgresql15",
    ):
        target_settings.check_parameter_groups(rds, RECORDED, _config(), "15.4")
    target_settings.check_parameter_groups(rds, RECORDED, _config(), "14.9")  # same family: taken


def test_a_missing_parameter_group_is_refused() -> None:
    rds: Any = _Groups({})
    with pytest.raises(ConfigError, match="no parameter group team-cluster-params"):
        target_settings.check_parameter_groups(rds, RECORDED, _config(), "15.4")
