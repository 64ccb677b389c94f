"""The configuration resolver: event > state > environment > SSM > defaults, each value with its source."""

from __future__ import annotations

from typing import Any

import pytest

from functions.config import environment_values, resolve
from functions.errors import ConfigError
from unit.fakes import RUNBOOK_CONFIG, SETTINGS, FakeSsm, install


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> FakeSsm:
    fake = FakeSsm()
    fake.put(SETTINGS.config_parameter, RUNBOOK_CONFIG)
    install(monkeypatch, ssm=fake)
    return fake


LAYERS = ("event", "state", "environment", "ssm")


def layered(field: str, values: dict[str, Any], ssm: FakeSsm) -> dict[str, Any]:
    """Put `field` in each named layer with its value; returns the resolve() keyword arguments."""
    if "ssm" in values:
        ssm.put(SETTINGS.config_parameter, RUNBOOK_CONFIG | {field: values["ssm"]})
    else:
        ssm.put(SETTINGS.config_parameter, {k: v for k, v in RUNBOOK_CONFIG.items() if k != field})
    return {
        "event_values": {field: values["event"]} if "event" in values else {},
        "state_values": {field: values["state"]} if "state" in values else {},
        "environ": {f"AURORA_RESTORE_{field.upper()}": values["environment"]}
        if "environment" in values
        else {},
    }


@pytest.mark.parametrize("highest", [*LAYERS, "default"])
def test_the_highest_layer_holding_a_value_wins_and_is_recorded(ssm: FakeSsm, highest: str) -> None:
    # Given log_prefix set in `highest` and every layer below it (nowhere above)
    below = LAYERS[LAYERS.index(highest) :] if highest != "default" else ()
    values = {layer: f"prefix-from-{layer}" for layer in below}

    # When the configuration is resolved
    resolved = resolve(SETTINGS, **layered("log_prefix", values, ssm))

    # Then the value and its recorded source are those of `highest`
    expected = f"prefix-from-{highest}" if highest != "default" else "aurora-restore-logs"
    assert resolved.config.log_prefix == expected
    assert resolved.sources["log_prefix"] == highest


def test_every_field_records_where_it_came_from(ssm: FakeSsm) -> None:
    # Given values from each layer
    # When resolved
    resolved = resolve(
        SETTINGS,
        event_values={"target_cluster_id": "dev-event-cluster"},
        state_values={"log_bucket": "state-bucket"},
        environ={"AURORA_RESTORE_INSTANCE_CLASS": "db.serverless"},
    )

    # Then each field names its own source, and untouched fields say "default"
    assert resolved.sources["target_cluster_id"] == "event"
    assert resolved.sources["log_bucket"] == "state"
    assert resolved.sources["instance_class"] == "environment"
    assert resolved.sources["source_region"] == "ssm"
    assert resolved.sources["delete_logs"] == "default"
    assert resolved.config.serverless is True


def test_event_values_that_are_not_configuration_are_ignored(ssm: FakeSsm) -> None:
    # Given a direct payload carrying operation_id and target_date next to a config value
    event = {"operation_id": "op-1", "target_date": "2023-06-01", "log_prefix": "from-payload"}

    # When resolved
    resolved = resolve(SETTINGS, event_values=event)

    # Then only the configuration field is taken
    assert resolved.config.log_prefix == "from-payload"
    assert "operation_id" not in resolved.sources


def test_a_recorded_operation_reads_neither_environment_nor_ssm(ssm: FakeSsm) -> None:
    # Given an operation whose configuration is already in its state
    # When resolved without the lower layers
    resolved = resolve(
        SETTINGS,
        state_values=RUNBOOK_CONFIG,
        environ={"AURORA_RESTORE_LOG_PREFIX": "from-env"},
        lower_layers=False,
    )

    # Then SSM was not asked and the environment did not count
    assert ssm.requests == []
    assert resolved.config.log_prefix == RUNBOOK_CONFIG["log_prefix"]
    assert resolved.sources["log_prefix"] == "state"


@pytest.mark.parametrize(
    "raw",
    [
        "sg-0123456789abcdef0,sg-12345678",
        '["sg-0123456789abcdef0", "sg-12345678"]',
        " sg-0123456789abcdef0 , sg-12345678 ",
    ],
)
def test_list_fields_from_the_environment_take_commas_or_json(raw: str) -> None:
    # Given a list field in the environment, comma-separated or JSON
    # When the environment layer is read
    values = environment_values({"AURORA_RESTORE_TARGET_SECURITY_GROUPS": raw})

    # Then it is a list
    assert values == {"target_security_groups": ["sg-0123456789abcdef0", "sg-12345678"]}


def test_empty_environment_values_are_ignored() -> None:
    # Given an environment variable set to the empty string
    # When read
    # Then it does not count as a value
    assert environment_values({"AURORA_RESTORE_LOG_PREFIX": ""}) == {}


def test_bad_json_in_a_list_environment_variable_names_the_variable() -> None:
    # Given a list variable with broken JSON
    # When read
    # Then the error names the variable
    with pytest.raises(ConfigError, match="AURORA_RESTORE_TARGET_SECURITY_GROUPS is not valid JSON"):
        environment_values({"AURORA_RESTORE_TARGET_SECURITY_GROUPS": '["sg-12345678"'})


def test_a_missing_ssm_parameter_is_an_empty_layer(ssm: FakeSsm) -> None:
    # Given no SSM configuration at all, and everything given in the event
    ssm.parameters.clear()

    # When resolved
    resolved = resolve(SETTINGS, event_values=RUNBOOK_CONFIG)

    # Then the event values are enough
    assert resolved.config.target_cluster_id == "dev-target-cluster"
    assert resolved.sources["target_cluster_id"] == "event"


def test_ssm_that_is_not_a_json_object_is_a_clear_error(ssm: FakeSsm) -> None:
    # Given an SSM configuration holding a JSON list
    ssm.put(SETTINGS.config_parameter, ["not", "an", "object"])

    # When resolved
    # Then the error names the parameter
    with pytest.raises(ConfigError, match="/aurora-restore/dev/config must hold a JSON object"):
        resolve(SETTINGS)


def test_an_unknown_ssm_key_is_a_warning(ssm: FakeSsm) -> None:
    # Given a misspelt key in SSM
    ssm.put(SETTINGS.config_parameter, RUNBOOK_CONFIG | {"log_prefx": "typo"})

    # When resolved
    resolved = resolve(SETTINGS)

    # Then it is ignored with a warning naming it
    assert resolved.warnings == ["unknown key 'log_prefx' in /aurora-restore/dev/config is ignored"]


# -- validation -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("source_region", "mars-1", "source_region (from event)"),
        ("target_cluster_id", "1-starts-with-a-digit", "target_cluster_id (from event)"),
        ("target_security_groups", ["sg-XYZ"], "target_security_groups.0 (from event)"),
        ("notification_topic_arn", "not-an-arn", "notification_topic_arn (from event)"),
        ("log_bucket", "Bad_Bucket", "log_bucket (from event)"),
        ("copy_timeout_minutes", 0, "copy_timeout_minutes (from event)"),
        # RDS identifiers: no two hyphens in a row, no hyphen at the end, at most 63 characters.
        ("target_cluster_id", "dev--target", "target_cluster_id (from event)"),
        ("target_cluster_id", "dev-target-", "target_cluster_id (from event)"),
        ("source_cluster_id", "a" * 64, "source_cluster_id (from event)"),
        # Durations DynamoDB can store and a datetime can add: no 1e40 days, no 1e-200 minutes.
        ("state_retention_days", 10**40, "state_retention_days (from event)"),
        ("copy_timeout_minutes", 1e-200, "copy_timeout_minutes (from event)"),
        ("restore_timeout_minutes", 1e12, "restore_timeout_minutes (from event)"),
        ("recheck_interval_seconds", 1e9, "recheck_interval_seconds (from event)"),
    ],
)
def test_a_bad_value_is_refused_naming_the_field_and_its_source(
    ssm: FakeSsm, field: str, value: Any, named: str
) -> None:
    # Given one bad value in the event layer
    # When resolved
    # Then the error names the field and where the bad value came from
    with pytest.raises(ConfigError) as raised:
        resolve(SETTINGS, event_values={field: value})
    assert raised.value.message.startswith("invalid configuration: ")
    assert named in raised.value.message


def test_a_missing_field_is_named(ssm: FakeSsm) -> None:
    # Given an SSM configuration without log_bucket
    ssm.put(SETTINGS.config_parameter, {k: v for k, v in RUNBOOK_CONFIG.items() if k != "log_bucket"})

    # When resolved
    # Then the error names it
    with pytest.raises(ConfigError, match="log_bucket: Field required"):
        resolve(SETTINGS)


def test_the_source_cluster_as_target_in_the_same_region_is_refused(ssm: FakeSsm) -> None:
    # Given target == source in the same region
    event = {"target_cluster_id": "dev-source-cluster", "target_region": "us-east-1"}

    # When resolved
    # Then it is refused
    with pytest.raises(ConfigError, match="refusing to restore over the source"):
        resolve(SETTINGS, event_values=event)


def test_cluster_ids_are_taken_in_lower_case_as_rds_keeps_them(ssm: FakeSsm) -> None:
    """RDS stores and describes identifiers in lower case: `Dev-Target-Cluster` is `dev-target-cluster`. Taken
    as written, the lease and the deletion guard compared it with RDS's answer and refused the deletion
    after the copy was made, and a protected `Prod-DB` did not protect `prod-db`."""
    resolved = resolve(
        SETTINGS,
        event_values={"target_cluster_id": "Dev-Target-Cluster", "protected_cluster_ids": ["Prod-DB"]},
    )
    assert resolved.config.target_cluster_id == "dev-target-cluster"
    assert resolved.config.protected_cluster_ids == ["prod-db"]
    with pytest.raises(ConfigError, match="refusing to restore over the source"):
        resolve(
            SETTINGS, event_values={"target_cluster_id": "DEV-Source-Cluster", "target_region": "us-east-1"}
        )
    with pytest.raises(ConfigError, match="on the protected list"):
        resolve(SETTINGS, event_values={"target_cluster_id": "prod-db", "protected_cluster_ids": ["Prod-DB"]})


def test_the_same_cluster_name_in_another_region_is_allowed(ssm: FakeSsm) -> None:
    # Given a target with the source's name but in the target region
    # When resolved
    resolved = resolve(SETTINGS, event_values={"target_cluster_id": "dev-source-cluster"})

    # Then it is a different cluster and allowed
    assert resolved.config.target_cluster_id == "dev-source-cluster"


def test_a_protected_target_is_refused(ssm: FakeSsm) -> None:
    # Given the target on the protected list
    # When resolved
    # Then it is refused, naming the cluster
    with pytest.raises(ConfigError, match="target cluster 'dev-target-cluster' is on the protected list"):
        resolve(SETTINGS, event_values={"protected_cluster_ids": ["dev-target-cluster", "prod-cluster"]})


def test_serverless_capacity_must_be_ordered(ssm: FakeSsm) -> None:
    # Given a minimum above the maximum
    # When resolved
    # Then it is refused
    with pytest.raises(ConfigError, match="serverless_min_capacity is above serverless_max_capacity"):
        resolve(SETTINGS, event_values={"serverless_min_capacity": 8, "serverless_max_capacity": 4})


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("{cluster}-{date}", "may only use {source_cluster_id} and {date}"),
        ("{date}-{0}", "may only use {source_cluster_id} and {date}"),
        ("{source_cluster_id}-{date:%Y}", "without a format spec"),
        ("{source_cluster_id}-{date", "is not a format string"),
        ("{source_cluster_id}-snapshot", "must contain {date}"),
    ],
)
def test_a_snapshot_name_pattern_that_cannot_name_a_snapshot_is_refused(
    ssm: FakeSsm, pattern: str, problem: str
) -> None:
    # Given / When a pattern naming a field the snapshot check does not fill, or none of the date
    # Then it is refused when the configuration is resolved, not when the pattern is used
    with pytest.raises(ConfigError, match="snapshot_name_pattern") as raised:
        resolve(SETTINGS, event_values={"snapshot_name_pattern": pattern})
    assert problem in raised.value.message


def test_a_target_cluster_id_too_long_for_its_writer_is_refused(ssm: FakeSsm) -> None:
    # Given a target cluster id that RDS accepts but whose writer `<id>-writer` would pass 63 characters
    from schemas.config import MAX_TARGET_CLUSTER_ID

    longest = "t" * MAX_TARGET_CLUSTER_ID
    assert resolve(SETTINGS, event_values={"target_cluster_id": longest}).config.target_cluster_id == longest

    # When / Then one character more is refused, saying why
    with pytest.raises(ConfigError, match="its writer"):
        resolve(SETTINGS, event_values={"target_cluster_id": longest + "t"})


@pytest.mark.parametrize(
    "secret_id",
    ["dev/master-credentials", "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:dev/master-AbCdEf"],
)
def test_a_secret_name_or_arn_is_taken_as_the_master_secret(ssm: FakeSsm, secret_id: str) -> None:
    resolved = resolve(SETTINGS, event_values={"master_credentials_secret_id": secret_id})
    assert resolved.config.master_credentials_secret_id == secret_id


def test_a_password_pasted_as_the_master_secret_id_is_refused_without_being_shown(ssm: FakeSsm) -> None:
    """A secret id is no secret: it is kept in the state and named in errors. So a value that cannot be a
    secret's name, likely the password pasted in its place, is refused before it is kept anywhere."""
    # Given the master password itself where its secret's id belongs
    pasted = "Tr0ub4dor&3!x"
    ssm.put(SETTINGS.config_parameter, RUNBOOK_CONFIG | {"master_credentials_secret_id": pasted})

    # When resolved
    # Then it is refused, naming the field and its source, and the value appears nowhere in the error
    with pytest.raises(ConfigError) as raised:
        resolve(SETTINGS)
    message = raised.value.message
    assert "master_credentials_secret_id (from ssm): Value error, is not a Secrets Manager secret" in message
    assert pasted not in message
    # nor in an exception chained to it (pydantic's text quotes each input), which a traceback would print
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
