"""Bad input to snapshot_check: a recorded failed state with a clear message, and no RDS mutation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from integration.world import CONFIG_PARAMETER, OPERATION_ID, SOURCE_REGION, TARGET_CLUSTER, World

pytestmark = pytest.mark.integration


def assert_failed_without_side_effects(world: World, response: dict[str, Any]) -> dict[str, Any]:
    assert response["status"] == "error", response
    assert response["next_step"] is None
    state = world.state()
    assert state is not None
    assert state["status"] == "failed" and state["failed_step"] == "snapshot_check"
    assert state["error"]["message"] == response["message"]
    assert world.rds_calls.calls == []
    assert world.state(f"lease#{TARGET_CLUSTER}") is None
    assert [event["step"] for event in world.published_of("StepFailed")] == ["snapshot_check"]
    return state


def test_a_bad_date_is_refused(world: World) -> None:
    # Given a payload whose date is not a date
    payload = {"operation_id": OPERATION_ID, "target_date": "2023-13-45"}

    # When snapshot_check runs
    response = world.invoke("snapshot_check", payload)

    # Then the failure names the date and the expected format
    state = assert_failed_without_side_effects(world, response)
    assert response["error"]["type"] == "InvalidRequest"
    assert response["message"] == "target_date '2023-13-45' is not a date (YYYY-MM-DD)"
    assert state["error"]["type"] == "InvalidRequest"


def test_an_unknown_override_is_refused(world: World) -> None:
    # Given a payload overriding a configuration field that does not exist
    payload = {
        "operation_id": OPERATION_ID,
        "target_date": "2023-06-01",
        "overrides": {"target_clustr_id": "x", "master_password": "s3cret-value"},
    }

    # When snapshot_check runs
    response = world.invoke("snapshot_check", payload)

    # Then the failure names the unknown keys
    assert_failed_without_side_effects(world, response)
    assert response["message"] == "unknown override(s): master_password, target_clustr_id"
    # And what they held was not recorded: the state item keeps configuration fields only
    state = world.state()
    assert state is not None and state["overrides"] == {}
    assert "s3cret-value" not in str(state)


def test_a_missing_configuration_is_refused_naming_the_fields(world: World) -> None:
    # Given the SSM configuration parameter does not exist
    world.client("ssm").delete_parameter(Name=CONFIG_PARAMETER)

    # When snapshot_check runs
    response = world.run("snapshot_check")

    # Then the failure names the missing fields
    assert_failed_without_side_effects(world, response)
    assert response["error"]["type"] == "ConfigError"
    for name in ("source_region", "target_cluster_id", "log_bucket"):
        assert f"{name}: Field required" in response["message"]


def test_a_bad_configuration_value_is_refused_naming_the_field_and_its_source(world: World) -> None:
    # Given the SSM configuration has a malformed security group
    world.put_config(target_security_groups=["not-a-group"])

    # When snapshot_check runs
    response = world.run("snapshot_check")

    # Then the failure names the field and where the value came from
    assert_failed_without_side_effects(world, response)
    assert "target_security_groups.0 (from ssm)" in response["message"]


def test_a_missing_master_secret_is_refused(world: World) -> None:
    # Given the master credentials secret does not exist
    world.client("secretsmanager").delete_secret(
        SecretId=world.config["master_credentials_secret_id"], ForceDeleteWithoutRecovery=True
    )

    # When snapshot_check runs
    response = world.run("snapshot_check")

    # Then the failure names the secret
    assert_failed_without_side_effects(world, response)
    assert "dev/master-credentials" in response["message"]


def test_no_snapshot_for_the_date_is_a_clear_failure(world: World) -> None:
    # Given no snapshot exists for 2023-06-02
    payload = {"operation_id": OPERATION_ID, "target_date": "2023-06-02"}

    # When snapshot_check runs
    response = world.invoke("snapshot_check", payload)

    # Then the failure says which cluster, region and day, and what was looked for
    assert_failed_without_side_effects(world, response)
    assert response["error"]["type"] == "NotFound"
    assert "no snapshot of dev-source-cluster in us-east-1 for 2023-06-02" in response["message"]
    assert "dev-source-cluster-snapshot-2023-06-02" in response["message"]


def test_a_payload_without_operation_id_is_rejected_before_anything_is_written(world: World) -> None:
    # Given a payload with no operation_id
    # When snapshot_check runs
    response = world.invoke("snapshot_check", {"target_date": "2023-06-01"})

    # Then it is rejected naming the field, and nothing is recorded
    assert response["status"] == "error"
    assert "operation_id" in response["message"]
    assert world.table_items() == []
    assert world.rds_calls.calls == []


def test_the_clusters_master_listed_as_a_db_user_is_refused_before_anything_is_deleted(world: World) -> None:
    # Given a source cluster whose master user is `dbadmin` (a restore keeps the source's master), its
    # snapshot for the day, and DB users that list `dbadmin` beside an application user
    source = world.client("rds", SOURCE_REGION)
    source.create_db_cluster(
        DBClusterIdentifier="other-source",
        Engine="aurora-postgresql",
        MasterUsername="dbadmin",
        MasterUserPassword="other-master-password",
    )
    source.create_db_cluster_snapshot(
        DBClusterIdentifier="other-source", DBClusterSnapshotIdentifier="other-source-snapshot-2023-06-01"
    )
    world.put_db_users(
        [
            {"username": "app_user", "password": "app_password", "privileges": ["SELECT"]},
            {"username": "dbadmin", "password": "taken-over", "privileges": ["SELECT"]},
        ],
        kind="SecureString",
    )
    world.rds_calls.clear()
    payload = {
        "operation_id": OPERATION_ID,
        "target_date": "2023-06-01",
        "overrides": {"source_cluster_id": "other-source"},
    }

    # When snapshot_check runs
    response = world.invoke("snapshot_check", payload)

    # Then it fails at the first step, naming the master user and what to do, without its password
    assert_failed_without_side_effects(world, response)
    assert response["error"]["type"] == "ConfigError"
    assert "'dbadmin', the cluster's master user: remove it" in response["message"]
    assert "taken-over" not in str(world.state())


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ({"username": "postgres", "password": "k9-qz"}, "shorter than the 8 characters"),
        ({"username": "postgres", "password": "has@an-at-sign"}, "refuses in a master password"),
        ({"username": "postgres", "password": ""}, "must hold a password"),
        ({"username": "postgres"}, "must hold a password"),
    ],
    ids=["too-short", "at-sign", "empty", "no-password"],
)
def test_a_master_password_rds_would_refuse_fails_before_anything_is_deleted(
    world: World, secret: dict[str, str], problem: str
) -> None:
    # Given a master secret whose password RDS would refuse when check_restore_status sets it, after the
    # old target is gone
    world.client("secretsmanager").put_secret_value(
        SecretId=world.config["master_credentials_secret_id"], SecretString=json.dumps(secret)
    )

    # When snapshot_check runs
    response = world.invoke("snapshot_check", {"operation_id": OPERATION_ID, "target_date": "2023-06-01"})

    # Then it fails there, naming the secret and the problem, not the password
    assert_failed_without_side_effects(world, response)
    assert response["error"]["type"] == "ConfigError"
    assert problem in response["message"] and "master-credentials" in response["message"]
    if secret.get("password"):
        assert secret["password"] not in str(world.state())


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        (json.dumps({"password": ""}), "must hold a password"),
        # Damaged JSON: before, taken whole as the password, so the user could not log in with "app-pw-123".
        ('{"username": "app_user", "password": "app-pw-123"', "is not valid JSON (Expecting ',' delimiter"),
    ],
    ids=["empty", "damaged-json"],
)
def test_a_user_secret_without_a_usable_password_fails_before_anything_is_deleted(
    world: World, stored: str, problem: str
) -> None:
    # Given a DB user whose secret holds no usable password
    world.client("secretsmanager").create_secret(Name="dev/empty-user", SecretString=stored)
    world.put_db_users(
        [{"username": "app_user", "password_secret_id": "dev/empty-user", "privileges": ["SELECT"]}],
        kind="SecureString",
    )

    # When snapshot_check runs
    response = world.invoke("snapshot_check", {"operation_id": OPERATION_ID, "target_date": "2023-06-01"})

    # Then it fails there, naming the secret and what is wrong with it, never what it holds
    assert_failed_without_side_effects(world, response)
    assert "dev/empty-user" in response["message"] and problem in response["message"]
    assert "app-pw-123" not in json.dumps(response) + str(world.state())
