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
from integration.test_aws_faults import Faults
from integration.test_snapshot_check_input import assert_failed_without_side_effects
from integration.world import (
    TARGET_CLUSTER,
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
