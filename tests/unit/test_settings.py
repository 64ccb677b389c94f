"""A function's settings: what its environment sets, and the model's own default for the rest."""

from __future__ import annotations

import pytest

from functions.errors import ConfigError
from functions.settings import VARIABLES, Settings, default, environment_values, get_settings

BASE = {"AURORA_RESTORE_ENV": "dev", "AWS_REGION": "us-west-2"}


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A process environment holding none of the settings' variables."""
    for variable in {name for names in VARIABLES.values() for name in names} | {
        "POWERTOOLS_METRICS_DISABLED"
    }:
        monkeypatch.delenv(variable, raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def settings_from(environ: pytest.MonkeyPatch, variables: dict[str, str]) -> Settings:
    for name, value in variables.items():
        environ.setenv(name, value)
    get_settings.cache_clear()
    return get_settings()


def test_unset_settings_take_the_models_defaults_and_the_environments_names(
    environ: pytest.MonkeyPatch,
) -> None:
    settings = settings_from(environ, BASE)

    assert settings.state_table == "aurora-restore-state-dev"
    assert settings.event_bus == "aurora-restore-dev"
    assert settings.config_parameter == "/aurora-restore/dev/config"
    assert settings.db_users_parameter == "/aurora-restore/dev/db_users"
    assert (settings.state_ttl_days, settings.claim_seconds) == (30, 300.0)
    assert (settings.stall_seconds, settings.wakeup_grace_seconds) == (900.0, 120.0)
    assert settings.metrics_enabled and settings.scheduler_role_arn is None and settings.pg_dsn is None
    for name in (
        "state_ttl_days",
        "claim_seconds",
        "stall_seconds",
        "wakeup_grace_seconds",
        "metrics_enabled",
    ):
        assert getattr(settings, name) == default(name)


def test_set_variables_win_and_empty_ones_count_as_unset(environ: pytest.MonkeyPatch) -> None:
    settings = settings_from(
        environ,
        {
            **BASE,
            "AURORA_RESTORE_STATE_TABLE": "my-table",
            "AURORA_RESTORE_STATE_TTL_DAYS": "7",
            "AURORA_RESTORE_CLAIM_SECONDS": "20",
            "AURORA_RESTORE_STALL_SECONDS": "15.5",
            "AURORA_RESTORE_WAKEUP_GRACE_SECONDS": "0",
            "AURORA_RESTORE_EVENT_BUS": "",
            "AURORA_RESTORE_PG_DSN": "host=127.0.0.1 port=5432",
            "POWERTOOLS_METRICS_DISABLED": "TRUE",
        },
    )

    assert settings.state_table == "my-table" and settings.event_bus == "aurora-restore-dev"
    assert (settings.state_ttl_days, settings.claim_seconds, settings.stall_seconds) == (7, 20.0, 15.5)
    assert settings.wakeup_grace_seconds == 0.0 and settings.pg_dsn == "host=127.0.0.1 port=5432"
    assert settings.metrics_enabled is False


def test_the_region_falls_back_to_aws_default_region() -> None:
    assert environment_values({"AWS_DEFAULT_REGION": "eu-west-1"})["region"] == "eu-west-1"
    both = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "eu-west-1"}
    assert environment_values(both)["region"] == "us-east-1"
    assert environment_values({"POWERTOOLS_METRICS_DISABLED": "false"})["metrics_enabled"] is True


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"AWS_REGION": "us-west-2"}, "AURORA_RESTORE_ENV is not set"),
        ({"AURORA_RESTORE_ENV": "dev"}, "AWS_REGION is not set"),
        ({**BASE, "AURORA_RESTORE_STALL_SECONDS": "0"}, "invalid function settings: stall_seconds: "),
        ({**BASE, "AURORA_RESTORE_STATE_TTL_DAYS": "a week"}, "invalid function settings: state_ttl_days: "),
    ],
)
def test_a_missing_or_invalid_setting_is_a_config_error_naming_it(
    environ: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_from(environ, variables)
    assert raised.value.message.startswith(message)
    assert "a week" not in raised.value.message
