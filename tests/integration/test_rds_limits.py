"""What RDS refuses or does on its own that moto lets pass: identifiers past 63 characters, a restore at the
region's default engine version, a writer refused while the cluster resets its master credentials, a master
password past 41 characters, a KMS key the copy and the restore cannot use. Each is met by the steps
before it fails a refresh, and before anything changes when it can be."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from aurora_restore.local.simulator import ENGINE_VERSION
from functions.identifiers import copy_name, final_snapshot_id, identifier_problem
from integration.test_aws_faults import Faults
from integration.test_snapshot_check_input import assert_failed_without_side_effects
from integration.world import (
    COPY_NAME,
    OPERATION_ID,
    SNAPSHOT_NAME,
    SOURCE_CLUSTER,
    SOURCE_REGION,
    TARGET_CLUSTER,
    TARGET_DATE,
    World,
    reset_function_caches,
)
from schemas.common import utcnow

pytestmark = pytest.mark.integration


def until_done(world: World, step: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Invoke `step` directly until it stops waiting (moto is immediate: a few calls at most)."""
    for _ in range(5):
        answer = world.invoke(step, payload)
        assert answer["status"] == "success", answer
        if answer["next_step"] != step:
            return answer
    raise AssertionError(f"{step} kept waiting: {answer}")


def next_check_in(world: World) -> timedelta:
    state = world.state()
    assert state is not None and state["status"] == "waiting", state
    return datetime.fromisoformat(state["waiting"]["next_check_at"]) - utcnow()


# -- identifiers ---------------------------------------------------------------------------------------------
def test_a_snapshot_with_a_long_name_is_copied_under_an_identifier_rds_takes(world: World) -> None:
    # Given the day's snapshot named with 62 characters (RDS takes 63): `<name>-copy` would have 67
    pattern = "{source_cluster_id}-nightly-snapshot-for-dev-refresh-{date}"
    long_name = pattern.format(source_cluster_id=SOURCE_CLUSTER, date=TARGET_DATE)
    assert len(long_name) == 62
    world.client("rds", SOURCE_REGION).create_db_cluster_snapshot(
        DBClusterIdentifier=SOURCE_CLUSTER, DBClusterSnapshotIdentifier=long_name
    )
    world.put_config(snapshot_name_pattern=pattern)

    # When snapshot_check finds it and copy_snapshot copies it
    found = world.run("snapshot_check")
    assert found["snapshot_name"] == long_name, found
    copied = world.invoke("copy_snapshot", {"operation_id": OPERATION_ID, "snapshot_name": long_name})

    # Then the copy's identifier is one RDS takes, still `-copy` at the end (the IAM policy and the copy
    # event's rule match that), recognisably the source's, and the copy is there under it
    copy = copied["target_snapshot"]
    assert identifier_problem(copy) is None and len(copy) <= 63, copy
    assert copy.endswith("-copy") and copy.startswith(long_name[:40])
    assert copy in world.target_rds.cluster_snapshots
    # And it is the same name on every retry, and check_copy_status follows it
    assert copy_name(long_name) == copy
    assert until_done(world, "check_copy_status", {"operation_id": OPERATION_ID, "target_snapshot": copy})


def test_a_copy_name_too_long_is_shortened_the_same_way_every_time_and_differently_per_source() -> None:
    # An automated snapshot of a 63-character cluster has an 80-character name after its `rds:` prefix
    cluster = "c" * 63
    monday, tuesday = f"rds:{cluster}-2026-11-23-03-05", f"rds:{cluster}-2026-11-24-03-05"

    names = [copy_name(monday), copy_name(monday), copy_name(tuesday), copy_name(f"awsbackup:{'j' * 70}")]

    assert names[0] == names[1] and names[0] != names[2]
    for name in names:
        assert identifier_problem(name) is None and name.endswith("-copy"), name
    # Names that fit are left as the runbook gives them
    assert copy_name(SNAPSHOT_NAME) == COPY_NAME


LONG_OPERATION = "dev-restore-2023-06-01-after-the-vpc-change-asked-for-by-the-data-team"


@pytest.mark.parametrize("world_config", [{"final_snapshot": True}])
def test_a_final_snapshot_of_a_long_operation_gets_an_identifier_rds_takes(world: World) -> None:
    # Given an operation whose id makes `<target>-final-<operation>` 96 characters long
    start = {"operation_id": LONG_OPERATION, "target_date": TARGET_DATE}
    assert world.invoke("snapshot_check", start)["status"] == "success"
    copy = world.invoke("copy_snapshot", {"operation_id": LONG_OPERATION, "snapshot_name": SNAPSHOT_NAME})
    until_done(
        world,
        "check_copy_status",
        {"operation_id": LONG_OPERATION, "target_snapshot": copy["target_snapshot"]},
    )

    # When delete_rds deletes the old target, keeping a final snapshot
    until_done(world, "delete_rds", {"operation_id": LONG_OPERATION})

    # Then the final snapshot's identifier is one RDS takes, keeps the `<target>-final-` prefix (the IAM
    # policy and the pruning of old ones match it), and is what the operation records and names
    state = world.state(LONG_OPERATION)
    assert state is not None
    final = state["outputs"]["final_snapshot"]
    assert identifier_problem(final) is None and final.startswith(f"{TARGET_CLUSTER}-final-dev-restore"), (
        final
    )
    assert final == final_snapshot_id(TARGET_CLUSTER, LONG_OPERATION)
    assert final in world.target_rds.cluster_snapshots


def test_a_target_leaving_no_room_for_its_final_snapshot_is_refused_before_anything_changes(
    world: World,
) -> None:
    # Given a 50-character target (its writer fits RDS's 63) and a request for a final snapshot, which
    # would need `<target>-final-` and an 8-character hash of the operation at least: 65 characters
    target = "t" * 50
    payload = {
        "operation_id": OPERATION_ID,
        "target_date": TARGET_DATE,
        "overrides": {"target_cluster_id": target, "final_snapshot": True},
    }

    # When snapshot_check runs
    response = world.invoke("snapshot_check", payload)

    # Then it is refused, naming the identifier and the limit, and nothing changed
    assert response["status"] == "error", response
    assert response["error"]["type"] == "ConfigError"
    assert "final snapshot `<target_cluster_id>-final-<operation>`" in response["message"]
    assert "at most 48" in response["message"] and "63" in response["message"]
    assert world.rds_calls.calls == [] and world.state(f"lease#{target}") is None


# -- the restore's engine version ---------------------------------------------------------------------------
def test_the_restore_asks_for_the_version_snapshot_check_checked(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.rds import RdsAdapter

    # Given no engine_version configured, and the source snapshot at the source cluster's version
    world.advance("restore_snapshot")
    asked: list[dict[str, Any]] = []
    original = RdsAdapter.restore_cluster

    def spied(self: RdsAdapter, **kwargs: Any) -> dict[str, Any]:
        asked.append(kwargs)
        return original(self, **kwargs)

    monkeypatch.setattr(RdsAdapter, "restore_cluster", spied)

    # When restore_snapshot restores the copy
    assert world.run("restore_snapshot")["status"] == "success"

    # Then it named the snapshot's version (without it, RDS restores at the region's default version), the
    # one snapshot_check recorded and checked the writer's class against
    assert [kwargs.get("EngineVersion") for kwargs in asked] == [ENGINE_VERSION]
    state = world.state()
    assert state is not None and state["outputs"]["engine_version"] == ENGINE_VERSION


# -- the writer, refused while the cluster resets its master credentials ---------------------------------
def test_a_writer_refused_after_the_master_password_change_is_asked_again_soon(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a restored cluster that refuses its writer twice, as RDS does while the cluster is
    # `resetting-master-credentials` after its master password was set
    world.advance("check_restore_status")
    refused: list[str] = []

    def busy(kwargs: dict[str, Any]) -> str | None:
        if len(refused) < 2:
            refused.append(kwargs["DBInstanceIdentifier"])
            return "InvalidDBClusterStateFault"
        return None

    Faults(monkeypatch).rules[("rds", "create_db_instance")] = busy
    reset_function_caches()
    recheck = timedelta(seconds=world.config.get("recheck_interval_seconds", 60) + 1)

    # When check_restore_status sets the password and asks for the writer, then it looks again at the short
    # interval (no event follows a refusal), not at the 900-second safety re-check
    for _ in range(2):
        assert world.run("check_restore_status")["cluster_status"] == "creating"
        assert next_check_in(world) <= recheck
        assert "to be accepted" in world.state()["waiting"]["waiting_for"]  # type: ignore[index]
    assert refused == [f"{TARGET_CLUSTER}-writer"] * 2

    # And once RDS takes it, the writer's own events end the wait, and the restore completes
    assert world.run("check_restore_status")["cluster_status"] == "creating"
    assert "to be available" in world.state()["waiting"]["waiting_for"]  # type: ignore[index]
    assert next_check_in(world) > recheck
    assert world.run("check_restore_status")["next_step"] == "setup_db_users"


# -- the master password ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("password", "problem"),
    [("k" * 42, "longer than the 41 characters"), ("has a-space-in-it", "refuses in a master password")],
    ids=["42-characters", "space"],
)
def test_a_master_password_rds_refuses_for_aurora_fails_before_anything_is_deleted(
    world: World, password: str, problem: str
) -> None:
    world.client("secretsmanager").put_secret_value(
        SecretId=world.config["master_credentials_secret_id"],
        SecretString=json.dumps({"username": "postgres", "password": password}),
    )

    response = world.run("snapshot_check")

    assert_failed_without_side_effects(world, response)
    assert response["error"]["type"] == "ConfigError" and problem in response["message"]
    assert password not in json.dumps(response) + str(world.state())


def test_a_master_password_of_41_characters_is_taken(world: World) -> None:
    world.client("secretsmanager").put_secret_value(
        SecretId=world.config["master_credentials_secret_id"],
        SecretString=json.dumps({"username": "postgres", "password": "k" * 41}),
    )

    assert world.run("snapshot_check")["status"] == "success"


# -- the KMS key ----------------------------------------------------------------------------------------------
ENCRYPTED_SOURCE = "enc-source-cluster"


def encrypted_source(world: World) -> str:
    """A source cluster encrypted with a key of the source region (aliased `alias/restore` there, as the
    source's key often is), with the day's snapshot; the same alias in the target region names its own key."""
    source_kms = world.client("kms", SOURCE_REGION)
    source_key = source_kms.create_key(Description="the source's")["KeyMetadata"]
    source_kms.create_alias(AliasName="alias/source-only", TargetKeyId=source_key["KeyId"])
    rds = world.client("rds", SOURCE_REGION)
    rds.create_db_cluster(
        DBClusterIdentifier=ENCRYPTED_SOURCE,
        Engine="aurora-postgresql",
        EngineVersion=ENGINE_VERSION,
        MasterUsername="postgres",
        MasterUserPassword="source-master-password",
        StorageEncrypted=True,
        KmsKeyId=source_key["Arn"],
    )
    rds.create_db_cluster_snapshot(
        DBClusterIdentifier=ENCRYPTED_SOURCE,
        DBClusterSnapshotIdentifier=f"{ENCRYPTED_SOURCE}-snapshot-{TARGET_DATE}",
    )
    target_kms = world.client("kms")
    target_key = target_kms.create_key(Description="the target's")["KeyMetadata"]
    target_kms.create_alias(AliasName="alias/restore", TargetKeyId=target_key["KeyId"])
    disabled = target_kms.create_key(Description="retired")["KeyMetadata"]
    target_kms.create_alias(AliasName="alias/retired", TargetKeyId=disabled["KeyId"])
    target_kms.disable_key(KeyId=disabled["KeyId"])
    world.rds_calls.clear()
    return str(target_key["Arn"])


def with_key(key_id: str) -> dict[str, Any]:
    overrides = {"source_cluster_id": ENCRYPTED_SOURCE, "kms_key_id": key_id}
    return {"operation_id": OPERATION_ID, "target_date": TARGET_DATE, "overrides": overrides}


@pytest.mark.parametrize(
    ("key_id", "problem"),
    [
        ("alias/source-only", "kms_key_id alias/source-only does not exist in us-west-2"),
        (
            "arn:aws:kms:us-east-1:123456789012:alias/restore",
            "is in us-east-1: the copy and the restore take a key in us-west-2, the target region",
        ),
        ("alias/retired", "kms_key_id alias/retired is Disabled, not Enabled"),
    ],
    ids=["alias-of-the-source-region-only", "source-region-alias-arn", "disabled"],
)
def test_a_key_the_copy_and_the_restore_cannot_use_is_refused_before_anything_changes(
    world: World, key_id: str, problem: str
) -> None:
    # Given an encrypted source snapshot, copied across regions with a kms_key_id RDS could not use there
    encrypted_source(world)

    # When snapshot_check runs
    response = world.invoke("snapshot_check", with_key(key_id))

    # Then it is refused, saying why, before anything changed
    assert_failed_without_side_effects(world, response)
    assert response["error"]["type"] == "ConfigError" and problem in response["message"], response


def test_a_key_the_functions_may_not_describe_is_refused_before_anything_changes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    encrypted_source(world)
    Faults(monkeypatch).always("kms", "describe_key", "AccessDeniedException")
    reset_function_caches()

    response = world.invoke("snapshot_check", with_key("alias/restore"))

    assert_failed_without_side_effects(world, response)
    assert response["error"]["type"] == "ConfigError"
    assert "kms_key_id alias/restore: the functions cannot use it in us-west-2" in response["message"]
    assert "AccessDeniedException" in response["message"]


@pytest.mark.parametrize("by", ["alias", "alias-arn", "key-arn"])
def test_a_target_region_key_is_taken_by_alias_alias_arn_or_key_arn(world: World, by: str) -> None:
    key_arn = encrypted_source(world)
    key_id = {
        "alias": "alias/restore",
        "alias-arn": "arn:aws:kms:us-west-2:123456789012:alias/restore",
        "key-arn": key_arn,
    }[by]

    found = world.invoke("snapshot_check", with_key(key_id))

    assert found["status"] == "success", found
    state = world.state()
    assert state is not None and state["outputs"]["snapshot_encrypted"] is True
