"""A source cluster in another account (moto's multi-account): the role assumed, the snapshot shared and
copied under the target's key, and what the target account could not copy refused before anything changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from aurora_restore.local import cross_account
from aurora_restore.local.source_account import SourceAccountSeeder, source_backend
from integration import world as world_module
from integration.world import (
    ACCOUNT,
    COPY_NAME,
    OPERATION_ID,
    SNAPSHOT_NAME,
    SOURCE_REGION,
    TARGET_CLUSTER,
    TARGET_DATE,
    TARGET_REGION,
    TARGET_WRITER,
    RdsCalls,
    World,
    create_world,
)

SOURCE_ACCOUNT = "111111111111"


@pytest.fixture
def world(
    mocked_aws: None, rds_calls: RdsCalls, postgres: Any, database: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """The runbook's world with its source cluster, key and role in SOURCE_ACCOUNT, and moto's stand-ins."""
    monkeypatch.setenv("AURORA_RESTORE_PG_DSN", f"host={postgres.host} port={postgres.port}")
    monkeypatch.setattr(
        world_module,
        "WorldSeeder",
        lambda client, names, **kw: SourceAccountSeeder(client, names, SOURCE_ACCOUNT, None, **kw),
    )
    made = create_world({}, database, postgres.password.get_secret_value(), rds_calls)
    cross_account.install()
    try:
        yield made
    finally:
        cross_account.uninstall()


def shared_with(snapshot: str = SNAPSHOT_NAME) -> list[str]:
    return list(
        source_backend(SOURCE_ACCOUNT, SOURCE_REGION).cluster_snapshots[snapshot].attributes["restore"]
    )


def source_kms() -> Any:
    """The source account's KMS, through moto's backend (the tests' own, not the functions' role)."""
    from moto.backends import get_backend

    return get_backend("kms")[SOURCE_ACCOUNT][SOURCE_REGION]


def test_a_refresh_copies_the_source_accounts_snapshot_shared_with_the_target(world: World) -> None:
    # Given the source snapshot is in another account
    assert world.config["source_account_id"] == SOURCE_ACCOUNT

    # When snapshot_check runs
    checked = world.run("snapshot_check")

    # Then it found the snapshot through the role: the source account's ARN is recorded
    assert checked["status"] == "success", checked
    state = world.state()
    assert state is not None
    assert state["outputs"]["snapshot_arn"] == (
        f"arn:aws:rds:{SOURCE_REGION}:{SOURCE_ACCOUNT}:cluster-snapshot:{SNAPSHOT_NAME}"
    )
    assert shared_with() == []

    # When copy_snapshot runs
    assert world.run("copy_snapshot")["status"] == "success"

    # Then the snapshot is shared with the target account, and copied into it under the target's key
    assert shared_with() == [ACCOUNT]
    [copy] = world.client("rds").describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=COPY_NAME)[
        "DBClusterSnapshots"
    ]
    assert copy["DBClusterSnapshotArn"].split(":")[4] == ACCOUNT
    assert copy["KmsKeyId"] == world.config["kms_key_id"]

    # When the refresh runs to its end
    world.advance("cleanup")
    assert world.run("cleanup")["status"] == "success"

    # Then the snapshot is shared no more
    assert shared_with() == []


def _aws_managed_key(world: World) -> None:
    """The day's source snapshot is under the source account's aws/rds key."""
    seeder = SourceAccountSeeder(world_module._client, world_module.NAMES, SOURCE_ACCOUNT, None)
    backend = source_backend(SOURCE_ACCOUNT, SOURCE_REGION)
    del backend.cluster_snapshots[SNAPSHOT_NAME]
    from datetime import date

    seeder.aws_managed_snapshot(date.fromisoformat(TARGET_DATE))


def _key_without_the_target(world: World) -> None:
    """The source key's policy names only its own account."""
    key_id = backend_key_id()
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{SOURCE_ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    source_kms().put_key_policy(key_id, json.dumps(policy))


def backend_key_id() -> str:
    arn = source_backend(SOURCE_ACCOUNT, SOURCE_REGION).cluster_snapshots[SNAPSHOT_NAME].kms_key_id
    return str(arn).rsplit("/", 1)[-1]


def _wrong_external_id(world: World) -> None:
    world.put_config(source_external_id="not-the-roles-external-id")


def _no_such_role(world: World) -> None:
    world.put_config(source_role_arn=f"arn:aws:iam::{SOURCE_ACCOUNT}:role/no-such-role")


@pytest.mark.parametrize(
    ("arrange", "expected"),
    [
        (_aws_managed_key, ["AWS managed key aws/rds", "customer managed key", ACCOUNT]),
        (_key_without_the_target, [f"does not let account {ACCOUNT} use it", "key policy", "sourceKeyArn"]),
        (_wrong_external_id, ["cannot assume the source role", "AccessDenied", "source_external_id"]),
        (_no_such_role, ["cannot assume the source role", "no-such-role", "infra/source"]),
    ],
    ids=["aws/rds key", "key not usable by the target", "wrong external id", "no such role"],
)
def test_what_the_target_could_not_copy_is_refused_before_anything_changes(
    world: World, arrange: Any, expected: list[str]
) -> None:
    # Given a source snapshot or role the target account cannot use
    arrange(world)
    world.rds_calls.clear()  # the arranging's own

    # When snapshot_check runs
    response = world.run("snapshot_check")

    # Then it is refused with the fix in the message, recorded as the operation's failure
    assert response["status"] == "error", response
    assert response["error"]["type"] == "ConfigError"
    for words in expected:
        assert words in response["message"], response["message"]
    state = world.state(OPERATION_ID)
    assert state is not None and state["status"] == "failed" and state["failed_step"] == "snapshot_check"
    assert "snapshot_arn" not in state["outputs"]
    # And nothing changed: no lease, no RDS change in either account, the snapshot not shared, no copy
    assert world.state(f"lease#{TARGET_CLUSTER}") is None
    assert world.rds_calls.calls == []
    assert shared_with() == []
    assert world.cluster_exists() and TARGET_WRITER in world.target_rds.databases
    assert COPY_NAME not in world.target_rds.cluster_snapshots
    assert world.target_rds.clusters[TARGET_CLUSTER].status == "available"
    assert TARGET_REGION != SOURCE_REGION
