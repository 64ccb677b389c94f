"""The runbook's world seeded into moto, one way for the local runtime and the integration tests alike.

The source cluster and its dated snapshots, the existing target cluster with its writer, the subnet group
and security group in one VPC, the SSM config and db_users values, the master secret, the notification
topic and queue, the log bucket and the state table. Clients come from the caller (the runtime's own,
signed with its plumbing key, or the tests' boto3 clients under mock_aws); moto's RDS backend is reached
in-process, which both run in.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aurora_restore.local.simulator import ENGINE_VERSION, MASTER_USERNAME

ACCOUNT = "123456789012"
SOURCE_CLUSTER = "dev-source-cluster"
TARGET_CLUSTER = "dev-target-cluster"
DATABASE = "appdb"
LOG_PREFIX = "aurora-restore-logs"
ENGINE = "aurora-postgresql"
WRITER_CLASS = "db.r6g.large"
# The target's own settings, which a refresh keeps (functions.target_settings).
TARGET_CLUSTER_PARAMETERS = "dev-target-cluster-params"
TARGET_WRITER_PARAMETERS = "dev-target-writer-params"
TARGET_SETTINGS: dict[str, Any] = {
    "DBClusterParameterGroupName": TARGET_CLUSTER_PARAMETERS,
    "BackupRetentionPeriod": 7,
    "PreferredBackupWindow": "03:30-04:00",
    "PreferredMaintenanceWindow": "sun:05:00-sun:05:30",
    "EnableCloudwatchLogsExports": ["postgresql"],
    "EnableIAMDatabaseAuthentication": True,
    "Tags": [{"Key": "team", "Value": "data-platform"}, {"Key": "cost-center", "Value": "4711"}],
}
TARGET_WRITER_SETTINGS: dict[str, Any] = {
    "DBParameterGroupName": TARGET_WRITER_PARAMETERS,
    "AutoMinorVersionUpgrade": False,
    "CACertificateIdentifier": "rds-ca-rsa2048-g1",
    "PreferredMaintenanceWindow": "sun:06:00-sun:06:30",
}

# The runbook's db_users parameter, value for value.
RUNBOOK_USERS: list[dict[str, Any]] = [
    {
        "username": "app_user",
        "password": "app_password",
        "privileges": ["SELECT", "INSERT", "UPDATE", "DELETE"],
    },
    {"username": "readonly_user", "password": "readonly_password", "privileges": ["SELECT"]},
]

# The addresses the stand-in's seed (seed.sql) gives public.users: what masking replaces.
SEED_EMAILS = ("ada@example.com", "grace@example.com")
# What the chaos run and the masking tests configure: public.users.email masked by `email`.
EMAIL_MASKING = {"masking_rules": [{"table": "public.users", "column": "email", "strategy": "email"}]}

# (service, region) -> a client for it.
ClientFactory = Callable[[str, str], Any]


@dataclass(frozen=True)
class WorldNames:
    """Where one environment's resources live and what they are called."""

    environment: str = "dev"
    source_region: str = "us-east-1"
    target_region: str = "us-west-2"

    @property
    def subnet_group(self) -> str:
        return f"{self.environment}-subnet-group"

    @property
    def security_group(self) -> str:
        return f"{self.environment}-restored"

    @property
    def config_parameter(self) -> str:
        return f"/aurora-restore/{self.environment}/config"

    @property
    def db_users_parameter(self) -> str:
        return f"/aurora-restore/{self.environment}/db_users"

    @property
    def masking_key_secret_id(self) -> str:
        return f"aurora-restore/{self.environment}/masking-key"

    @property
    def master_secret_id(self) -> str:
        return f"{self.environment}/master-credentials"

    @property
    def notifications(self) -> str:
        """The notification topic's and queue's name."""
        return f"{self.environment}-notifications"

    @property
    def topic_arn(self) -> str:
        return f"arn:aws:sns:{self.target_region}:{ACCOUNT}:{self.notifications}"

    @property
    def queue_url(self) -> str:
        return f"https://sqs.{self.target_region}.amazonaws.com/{ACCOUNT}/{self.notifications}"

    @property
    def log_bucket(self) -> str:
        return f"{self.environment}-aurora-restore-logs"

    @property
    def state_table(self) -> str:
        return f"aurora-restore-state-{self.environment}"

    @property
    def event_bus(self) -> str:
        return f"aurora-restore-{self.environment}"


def snapshot_name(day: date | str) -> str:
    """The runbook's name for the source's snapshot of `day`."""
    return f"{SOURCE_CLUSTER}-snapshot-{day}"


def writer_of(cluster_id: str) -> str:
    return f"{cluster_id}-instance-1"


def last_days(count: int = 7) -> list[date]:
    """Today and the days before it, `count` in all."""
    return [date.today() - timedelta(days=days_ago) for days_ago in range(count)]


def runbook_config(names: WorldNames, security_group_id: str) -> dict[str, Any]:
    """The runbook's eleven configuration values, for the world's own resources."""
    return {
        "source_region": names.source_region,
        "target_region": names.target_region,
        "source_cluster_id": SOURCE_CLUSTER,
        "target_cluster_id": TARGET_CLUSTER,
        "target_subnet_group": names.subnet_group,
        "target_security_groups": [security_group_id],
        "master_credentials_secret_id": names.master_secret_id,
        "notification_topic_arn": names.topic_arn,
        "notification_queue_url": names.queue_url,
        "log_bucket": names.log_bucket,
        "log_prefix": LOG_PREFIX,
    }


def rds_backend(region: str) -> Any:
    """moto's RDS backend for `region`, in this process."""
    from moto.backends import get_backend

    return get_backend("rds")[ACCOUNT][region]


@dataclass
class Seeded:
    """What seeding made that callers refer to afterwards."""

    security_group_id: str
    topic_arn: str
    queue_url: str
    config: dict[str, Any]  # the config document put in SSM


class WorldSeeder:
    """Creates the world's resources through the given clients; each method one kind of resource."""

    def __init__(
        self, client: ClientFactory, names: WorldNames, master_username: str = MASTER_USERNAME
    ) -> None:
        self.client = client
        self.names = names
        self.master_username = master_username

    def network(self) -> str:
        """The subnet group over two zones and the restored clusters' security group, in one VPC; the
        group's id (snapshot_check looks for it in the subnet group's VPC)."""
        region = self.names.target_region
        ec2 = self.client("ec2", region)
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{region}{zone}")[
                "Subnet"
            ]["SubnetId"]
            for i, zone in enumerate("ab", start=1)
        ]
        self.client("rds", region).create_db_subnet_group(
            DBSubnetGroupName=self.names.subnet_group, DBSubnetGroupDescription="local", SubnetIds=subnets
        )
        group = ec2.create_security_group(GroupName=self.names.security_group, Description="local", VpcId=vpc)
        return str(group["GroupId"])

    def source(self, days: Iterable[date], database: str | None = None) -> None:
        """The source cluster and its snapshot of each day, created at 03:00 UTC that day."""
        optional = {"DatabaseName": database} if database else {}
        rds = self.client("rds", self.names.source_region)
        rds.create_db_cluster(
            DBClusterIdentifier=SOURCE_CLUSTER,
            Engine=ENGINE,
            EngineVersion=ENGINE_VERSION,
            MasterUsername=self.master_username,
            MasterUserPassword=secrets.token_urlsafe(18),  # production's: never needed by the target
            **optional,
        )
        for day in days:
            rds.create_db_cluster_snapshot(
                DBClusterIdentifier=SOURCE_CLUSTER, DBClusterSnapshotIdentifier=snapshot_name(day)
            )
        self._date_snapshots()

    def _date_snapshots(self) -> None:
        for snapshot in rds_backend(self.names.source_region).cluster_snapshots.values():
            if "-snapshot-" not in snapshot.db_cluster_snapshot_identifier:
                continue
            day = date.fromisoformat(snapshot.db_cluster_snapshot_identifier.rsplit("-snapshot-", 1)[1])
            snapshot.created = datetime(day.year, day.month, day.day, 3, 0, tzinfo=UTC)

    def target_cluster(self, cluster_id: str) -> None:
        """An existing, available target cluster with its writer, each with settings of its own (not RDS's
        defaults and not the source's): a refresh puts them back on the restored cluster."""
        rds = self.client("rds", self.names.target_region)
        family = f"{ENGINE}{ENGINE_VERSION.split('.')[0]}"
        with contextlib.suppress(
            rds.exceptions.DBParameterGroupAlreadyExistsFault
        ):  # one set for all targets
            rds.create_db_cluster_parameter_group(
                DBClusterParameterGroupName=TARGET_CLUSTER_PARAMETERS,
                DBParameterGroupFamily=family,
                Description="local",
            )
            rds.create_db_parameter_group(
                DBParameterGroupName=TARGET_WRITER_PARAMETERS,
                DBParameterGroupFamily=family,
                Description="local",
            )
        rds.create_db_cluster(
            DBClusterIdentifier=cluster_id,
            Engine=ENGINE,
            EngineVersion=ENGINE_VERSION,
            MasterUsername=self.master_username,
            MasterUserPassword=secrets.token_urlsafe(18),
            DBSubnetGroupName=self.names.subnet_group,
            **TARGET_SETTINGS,
        )
        rds.create_db_instance(
            DBInstanceIdentifier=writer_of(cluster_id),
            DBClusterIdentifier=cluster_id,
            Engine=ENGINE,
            DBInstanceClass=WRITER_CLASS,
            **TARGET_WRITER_SETTINGS,
        )
        backend = rds_backend(self.names.target_region)
        backend.databases[writer_of(cluster_id)].status = "available"
        backend.clusters[cluster_id]._status = "available"

    def settings(self, config: dict[str, Any], users: list[dict[str, Any]]) -> None:
        """The SSM config document and the db_users parameter."""
        ssm = self.client("ssm", self.names.target_region)
        for name, value in ((self.names.config_parameter, config), (self.names.db_users_parameter, users)):
            ssm.put_parameter(Name=name, Value=json.dumps(value), Type="String", Overwrite=True)

    def masking_key(self) -> None:
        """The environment's masking key, as the stack creates it: random, kept for the world's life."""
        self.client("secretsmanager", self.names.target_region).create_secret(
            Name=self.names.masking_key_secret_id, SecretString=secrets.token_hex(32)
        )

    def master_secret(self, password: str) -> None:
        self.client("secretsmanager", self.names.target_region).create_secret(
            Name=self.names.master_secret_id,
            SecretString=json.dumps({"username": self.master_username, "password": password}),
        )

    def notifications(self) -> tuple[str, str]:
        """The notification topic and queue: (topic ARN, queue URL)."""
        region = self.names.target_region
        topic = self.client("sns", region).create_topic(Name=self.names.notifications)["TopicArn"]
        queue = self.client("sqs", region).create_queue(QueueName=self.names.notifications)["QueueUrl"]
        return str(topic), str(queue)

    def log_bucket(self) -> None:
        region = self.names.target_region
        self.client("s3", region).create_bucket(
            Bucket=self.names.log_bucket, CreateBucketConfiguration={"LocationConstraint": region}
        )

    def state_table(self) -> None:
        self.client("dynamodb", self.names.target_region).create_table(
            TableName=self.names.state_table,
            KeySchema=[{"AttributeName": "operation_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "operation_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def settle(self) -> None:
        """Every seeded cluster available: moto creates one `creating`, which the RDS simulator would keep."""
        for region in (self.names.source_region, self.names.target_region):
            for cluster in rds_backend(region).clusters.values():
                if getattr(cluster, "_status", "available") == "creating":
                    cluster._status = "available"


def seed_world(
    seeder: WorldSeeder,
    *,
    days: Iterable[date],
    master_password: str,
    config: Callable[[str], dict[str, Any]],
    database: str | None = None,
) -> Seeded:
    """The whole world: `config` makes the config document from the security group's id."""
    security_group_id = seeder.network()
    seeder.source(days, database)
    seeder.target_cluster(TARGET_CLUSTER)
    topic_arn, queue_url = seeder.notifications()
    seeder.log_bucket()
    seeder.state_table()
    document = config(security_group_id)
    seeder.settings(document, RUNBOOK_USERS)
    seeder.master_secret(master_password)
    seeder.masking_key()
    seeder.settle()
    return Seeded(security_group_id, topic_arn, queue_url, document)
