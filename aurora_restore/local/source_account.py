"""The local runtime's second account (`local serve --source-account ID`): the source seeded into it.

moto keeps accounts apart by the access key a request is signed with: credentials from STS AssumeRole into
a role of account X act in X. The seeder takes such credentials for the source account and creates there
the source cluster encrypted under a customer managed key whose policy lets the target account (moto's
default, 123456789012) use it, its dated snapshots, and the role `aurora-restore-source-<env>` trusting
the target with the external id; in the target account, the key the copy is re-encrypted under.

What moto does not do, and the stand-ins in cross_account.py do (installed by the runtime, or a test, only
for a second account):
- CopyDBClusterSnapshot from another account's snapshot ARN: moto looks the snapshot up in the caller's
  own account and answers DBClusterSnapshotNotFoundFault. The stand-in finds it in the ARN's account and
  copies it when that snapshot's `restore` attribute names the caller's account (or `all`), as RDS does
  for a shared snapshot; an encrypted one only with a KmsKeyId, re-encrypted under it. Same-account copies
  go to moto unchanged (and the RDS simulator holds either copy `copying` as before).
- STS AssumeRole into another account's role: moto grants any. The stand-in answers AccessDenied when
  that role does not exist, or its trust policy's `sts:ExternalId` condition does not match the request's
  (the trusted principals are not compared: the local functions run with one user's keys, not roles).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from aurora_restore.local.simulator import ENGINE_VERSION
from aurora_restore.local.world import (
    ACCOUNT,
    ENGINE,
    SOURCE_CLUSTER,
    ClientFactory,
    WorldNames,
    WorldSeeder,
    snapshot_name,
)

LOCAL_EXTERNAL_ID = "aurora-restore-local-external-id"
SEEDING_ROLE = "aurora-restore-local-seeding"
KEY_ACTIONS = ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey"]


def source_role_name(environment: str) -> str:
    return f"aurora-restore-source-{environment}"


def account_clients(client: ClientFactory, account: str, region: str, endpoint: str | None) -> ClientFactory:
    """Clients acting in `account`: signed with credentials of a role assumed there (moto's multi-account)."""
    import boto3

    answer = client("sts", region).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{SEEDING_ROLE}", RoleSessionName="aurora-restore-local-seeding"
    )["Credentials"]
    made: dict[tuple[str, str], Any] = {}

    def factory(service: str, region: str) -> Any:
        if (service, region) not in made:
            made[(service, region)] = boto3.session.Session().client(
                service,
                region_name=region,
                endpoint_url=endpoint,
                aws_access_key_id=answer["AccessKeyId"],
                aws_secret_access_key=answer["SecretAccessKey"],
                aws_session_token=answer["SessionToken"],
            )
        return made[(service, region)]

    return factory


def key_policy(owner: str, user: str) -> dict[str, Any]:
    """The source key's policy: its own account administers it; the target account may use it for a copy."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{owner}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{user}:root"},
                "Action": KEY_ACTIONS,
                "Resource": "*",
            },
        ],
    }


def trust_policy(external_id: str | None) -> dict[str, Any]:
    """A role of the source account the target account may assume (with the external id, when given)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "sts:AssumeRole",
    }
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return {"Version": "2012-10-17", "Statement": [statement]}


class SourceAccountSeeder(WorldSeeder):
    """The world with its source cluster in `account`, and the configuration set for it."""

    def __init__(
        self, client: ClientFactory, names: WorldNames, account: str, endpoint: str | None, **kw: Any
    ):
        super().__init__(client, names, **kw)
        self.account, self.endpoint = account, endpoint
        self.source_key_arn = self.target_key_arn = ""
        self._source: ClientFactory | None = None

    def source_client(self, service: str) -> Any:
        if self._source is None:
            self._source = account_clients(self.client, self.account, self.names.target_region, self.endpoint)
        return self._source(service, self.names.source_region)

    def source(self, days: Iterable[date], database: str | None = None) -> None:
        """The source account's role, key, encrypted cluster and dated snapshots; the target's key."""
        import secrets

        iam = self.source_client("iam")
        iam.create_role(
            RoleName=source_role_name(self.names.environment),
            AssumeRolePolicyDocument=json.dumps(trust_policy(LOCAL_EXTERNAL_ID)),
        )
        # The seeding role itself, for what is seeded later (the AssumeRole stand-in wants the role to exist).
        iam.create_role(RoleName=SEEDING_ROLE, AssumeRolePolicyDocument=json.dumps(trust_policy(None)))
        policy = json.dumps(key_policy(self.account, ACCOUNT))
        self.source_key_arn = self.source_client("kms").create_key(Policy=policy)["KeyMetadata"]["Arn"]
        optional = {"DatabaseName": database} if database else {}
        rds = self.source_client("rds")
        rds.create_db_cluster(
            DBClusterIdentifier=SOURCE_CLUSTER,
            Engine=ENGINE,
            EngineVersion=ENGINE_VERSION,
            MasterUsername=self.master_username,
            MasterUserPassword=secrets.token_urlsafe(18),
            StorageEncrypted=True,
            KmsKeyId=self.source_key_arn,
            **optional,
        )
        for day in days:
            rds.create_db_cluster_snapshot(
                DBClusterIdentifier=SOURCE_CLUSTER, DBClusterSnapshotIdentifier=snapshot_name(day)
            )
        backend = source_backend(self.account, self.names.source_region)
        for snapshot in backend.cluster_snapshots.values():
            _dated(snapshot)
        backend.clusters[SOURCE_CLUSTER]._status = "available"
        self.target_key_arn = self.client("kms", self.names.target_region).create_key()["KeyMetadata"]["Arn"]

    def settings(self, config: dict[str, Any], users: list[dict[str, Any]]) -> None:
        """The configuration document names the source account, its role's external id and the copy's key."""
        config |= {
            "source_account_id": self.account,
            "source_external_id": LOCAL_EXTERNAL_ID,
            "kms_key_id": self.target_key_arn,
        }
        super().settings(config, users)

    def aws_managed_snapshot(self, day: date) -> str:
        """A snapshot of the source cluster for `day` under the account's `aws/rds` key, which KMS reports as
        AWS managed (moto makes the key on first use as a customer's: marked here as KMS has it)."""
        key = self.source_client("kms").describe_key(KeyId="alias/aws/rds")["KeyMetadata"]
        from moto.backends import get_backend

        get_backend("kms")[self.account][self.names.source_region].keys[key["KeyId"]].key_manager = "AWS"
        name = snapshot_name(day)
        self.source_client("rds").create_db_cluster_snapshot(
            DBClusterIdentifier=SOURCE_CLUSTER, DBClusterSnapshotIdentifier=name
        )
        snapshot = source_backend(self.account, self.names.source_region).cluster_snapshots[name]
        snapshot.kms_key_id = snapshot.cluster.kms_key_id = key["Arn"]
        _dated(snapshot)
        return name


def world_seeder(client: ClientFactory, names: WorldNames, account: str | None, endpoint: str) -> WorldSeeder:
    """The runtime's seeder: the source in `account` when given, else in the target's own."""
    return SourceAccountSeeder(client, names, account, endpoint) if account else WorldSeeder(client, names)


def source_backend(account: str, region: str) -> Any:
    from moto.backends import get_backend

    return get_backend("rds")[account][region]


def _dated(snapshot: Any) -> None:
    """Created at 03:00 UTC of the day its name carries."""
    if "-snapshot-" in snapshot.db_cluster_snapshot_identifier:
        day = date.fromisoformat(snapshot.db_cluster_snapshot_identifier.rsplit("-snapshot-", 1)[1])
        snapshot.created = datetime(day.year, day.month, day.day, 3, 0, tzinfo=UTC)
