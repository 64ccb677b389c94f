"""The runbook's world in moto, its names and values, and helpers the integration tests share."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakes.lambda_context import LambdaContext

from aurora_restore.local.simulator import ENGINE_VERSION
from schemas.common import Step

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
SOURCE_REGION = "us-east-1"
TARGET_REGION = "us-west-2"
OPERATION_ID = "dev-restore-2023-06-01"
TARGET_DATE = "2023-06-01"
SOURCE_CLUSTER = "dev-source-cluster"
TARGET_CLUSTER = "dev-target-cluster"
TARGET_WRITER = "dev-target-cluster-instance-1"
SNAPSHOT_NAME = f"{SOURCE_CLUSTER}-snapshot-{TARGET_DATE}"
COPY_NAME = f"{SNAPSHOT_NAME}-copy"
STATE_TABLE = "aurora-restore-state-dev"
EVENT_BUS = "aurora-restore-dev"
CONFIG_PARAMETER = "/aurora-restore/dev/config"
DB_USERS_PARAMETER = "/aurora-restore/dev/db_users"
MASTER_SECRET_ID = "dev/master-credentials"
LOG_BUCKET = "dev-aurora-restore-logs"
LOG_PREFIX = "aurora-restore-logs"
SEED_SQL = ROOT / "aurora_restore" / "local" / "seed.sql"

# The runbook's db_users parameter, value for value.
RUNBOOK_USERS: list[dict[str, Any]] = [
    {
        "username": "app_user",
        "password": "app_password",
        "privileges": ["SELECT", "INSERT", "UPDATE", "DELETE"],
    },
    {"username": "readonly_user", "password": "readonly_password", "privileges": ["SELECT"]},
]

# Operations on RDS that change something: the idempotency tests count these.
RDS_MUTATIONS = (
    "add_tags_to_resource",
    "copy_db_cluster_snapshot",
    "create_db_cluster",
    "create_db_cluster_snapshot",
    "create_db_instance",
    "delete_db_cluster",
    "delete_db_cluster_snapshot",
    "delete_db_instance",
    "modify_db_cluster",
    "modify_db_instance",
    "remove_tags_from_resource",
    "restore_db_cluster_from_snapshot",
)

STEP_MODULES = tuple(step.value for step in Step)  # the ten steps, in order


# Each step's direct payload exactly as the runbook's `aws lambda invoke` examples send it.
RUNBOOK_PAYLOADS: dict[str, dict[str, Any]] = {
    "snapshot_check": {"operation_id": OPERATION_ID, "target_date": TARGET_DATE},
    "copy_snapshot": {"operation_id": OPERATION_ID, "snapshot_name": SNAPSHOT_NAME},
    "check_copy_status": {"operation_id": OPERATION_ID, "target_snapshot": COPY_NAME},
    "delete_rds": {"operation_id": OPERATION_ID},
    "restore_snapshot": {"operation_id": OPERATION_ID, "target_snapshot": COPY_NAME},
    "check_restore_status": {"operation_id": OPERATION_ID},
    "setup_db_users": {"operation_id": OPERATION_ID},
    "verify_restore": {"operation_id": OPERATION_ID},
    "notify_completion": {"operation_id": OPERATION_ID},
    "cleanup": {"operation_id": OPERATION_ID},
}


def runbook_config(topic_arn: str, queue_url: str) -> dict[str, Any]:
    """The runbook's eleven values (with moto's real topic ARN and queue URL)."""
    return {
        "source_region": SOURCE_REGION,
        "target_region": TARGET_REGION,
        "source_cluster_id": SOURCE_CLUSTER,
        "target_cluster_id": TARGET_CLUSTER,
        "target_subnet_group": "dev-subnet-group",
        "target_security_groups": ["sg-12345678"],
        "master_credentials_secret_id": MASTER_SECRET_ID,
        "notification_topic_arn": topic_arn,
        "notification_queue_url": queue_url,
        "log_bucket": LOG_BUCKET,
        "log_prefix": LOG_PREFIX,
    }


def create_state_table(table_name: str = STATE_TABLE, region: str = TARGET_REGION) -> None:
    """An environment's state table in moto, keyed as the stack's is: every item by `operation_id`."""
    import boto3

    boto3.client("dynamodb", region_name=region).create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "operation_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "operation_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def reset_function_caches() -> None:
    """Forget every client, cached setting, parameter and the services a warm handler kept."""
    from aws_lambda_powertools.utilities import parameters

    from functions import aws
    from functions.engine import services
    from functions.settings import get_settings

    aws.reset_clients()
    get_settings.cache_clear()
    parameters.clear_caches()
    services.reset()


def rds_backend(region: str) -> Any:
    from moto.backends import get_backend

    return get_backend("rds")[ACCOUNT][region]


@dataclass
class RdsCalls:
    """Mutating RDS API calls as moto's backend receives them: (operation, region, identifier)."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def clear(self) -> None:
        self.calls.clear()


# -- the runbook's world in moto ---------------------------------------------------------------------------------
@dataclass
class World:
    config: dict[str, Any]
    topic_arn: str
    queue_url: str
    capture_queue_url: str
    database: str
    master_password: str
    rds_calls: RdsCalls
    context: LambdaContext
    _captured: list[dict[str, Any]] = field(default_factory=list)

    # -- calling handlers
    def invoke(self, step: str, payload: dict[str, Any]) -> dict[str, Any]:
        module = importlib.import_module(f"functions.{step}")
        return dict(module.handler(json.loads(json.dumps(payload)), self.context))

    def run(self, step: str) -> dict[str, Any]:
        """The runbook's own payload for `step`, invoked directly."""
        return self.invoke(step, RUNBOOK_PAYLOADS[step])

    def advance(self, until: str) -> dict[str, Any]:
        """Run the runbook's sequence (waiting steps until done) up to, not including, `until`.

        Events and RDS calls made on the way are forgotten, so a test sees only what its own calls did.
        """
        last: dict[str, Any] = {}
        for step in STEP_MODULES[: STEP_MODULES.index(until)]:
            for _ in range(5):
                last = self.run(step)
                assert last["status"] == "success", last
                if last["next_step"] != step:
                    break
            else:
                raise AssertionError(f"{step} kept waiting: {last}")
        self.published()
        self._captured.clear()
        self.rds_calls.clear()
        return last

    def seed_operation(self, operation_id: str, next_step: str, **outputs: Any) -> None:
        """An operation that has reached `next_step`, written through the state store itself.

        The database steps need nothing from the RDS steps but a cluster with an endpoint, which the
        world's target cluster has: starting there keeps those tests about the database.
        """
        from datetime import date

        from functions.config import resolve
        from functions.settings import get_settings
        from functions.state import DynamoStateStore
        from schemas.common import utcnow
        from schemas.state import OperationState

        resolved = resolve(get_settings())
        now = utcnow()
        state = OperationState(
            operation_id=operation_id,
            status="running",
            current_step=STEP_MODULES[STEP_MODULES.index(next_step) - 1],
            next_step=next_step,
            target_date=date.fromisoformat(TARGET_DATE),
            target_cluster_id=TARGET_CLUSTER,
            config=resolved.config.model_dump(mode="json"),
            config_sources=resolved.sources,
            outputs=outputs,
            created_at=now,
            updated_at=now,
        )
        DynamoStateStore(STATE_TABLE, TARGET_REGION).create(state)

    def client(self, service: str, region: str = TARGET_REGION) -> Any:
        import boto3

        return boto3.client(service, region_name=region)

    # -- configuration
    def put_config(self, **changes: Any) -> dict[str, Any]:
        self.config.update(changes)
        self.client("ssm").put_parameter(
            Name=CONFIG_PARAMETER, Value=json.dumps(self.config), Type="String", Overwrite=True
        )
        reset_function_caches()
        return self.config

    def put_db_users(self, users: list[dict[str, Any]], kind: str = "String") -> None:
        self.client("ssm").put_parameter(
            Name=DB_USERS_PARAMETER, Value=json.dumps(users), Type=kind, Overwrite=True
        )

    # -- what the runs left behind
    def state(self, operation_id: str = OPERATION_ID) -> dict[str, Any] | None:
        item = self.client("dynamodb").get_item(
            TableName=STATE_TABLE, Key={"operation_id": {"S": operation_id}}, ConsistentRead=True
        )
        if "Item" not in item:
            return None
        from boto3.dynamodb.types import TypeDeserializer

        deserializer = TypeDeserializer()
        return {key: deserializer.deserialize(value) for key, value in item["Item"].items()}

    def table_items(self) -> list[dict[str, Any]]:
        return self.client("dynamodb").scan(TableName=STATE_TABLE)["Items"]

    def published(self) -> list[dict[str, Any]]:
        """Every event put on the environment's bus so far (drained from a capture queue, kept here)."""
        sqs = self.client("sqs")
        while True:
            answer = sqs.receive_message(QueueUrl=self.capture_queue_url, MaxNumberOfMessages=10)
            messages = answer.get("Messages", [])
            if not messages:
                return list(self._captured)
            for message in messages:
                self._captured.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.capture_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def published_of(self, detail_type: str) -> list[dict[str, Any]]:
        return [event["detail"] for event in self.published() if event["detail-type"] == detail_type]

    def notifications(self) -> list[str]:
        """Bodies of the messages on the notification queue (not removed)."""
        answer = self.client("sqs").receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        return [message["Body"] for message in answer.get("Messages", [])]

    def log_objects(self) -> dict[str, str]:
        s3 = self.client("s3")
        listed = s3.list_objects_v2(Bucket=LOG_BUCKET).get("Contents", [])
        return {
            item["Key"]: s3.get_object(Bucket=LOG_BUCKET, Key=item["Key"])["Body"].read().decode()
            for item in listed
        }

    # -- RDS, as moto holds it
    @property
    def target_rds(self) -> Any:
        return rds_backend(TARGET_REGION)

    @property
    def source_rds(self) -> Any:
        return rds_backend(SOURCE_REGION)

    def cluster_exists(self, cluster_id: str = TARGET_CLUSTER, region: str = TARGET_REGION) -> bool:
        return cluster_id in rds_backend(region).clusters

    def cluster_tags(self, cluster_id: str = TARGET_CLUSTER) -> dict[str, str]:
        cluster = self.target_rds.clusters[cluster_id]
        return {tag["Key"]: tag["Value"] for tag in cluster.tags or []}


def create_world(
    config_overrides: dict[str, Any], database: str, master_password: str, recorder: RdsCalls
) -> World:
    import boto3

    sns = boto3.client("sns", region_name=TARGET_REGION)
    topic_arn = sns.create_topic(Name="dev-notifications")["TopicArn"]
    sqs = boto3.client("sqs", region_name=TARGET_REGION)
    queue_url = sqs.create_queue(QueueName="dev-notifications")["QueueUrl"]
    capture_url = sqs.create_queue(QueueName="bus-capture")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("s3", region_name=TARGET_REGION).create_bucket(
        Bucket=LOG_BUCKET, CreateBucketConfiguration={"LocationConstraint": TARGET_REGION}
    )
    create_state_table()
    events = boto3.client("events", region_name=TARGET_REGION)
    events.create_event_bus(Name=EVENT_BUS)
    events.put_rule(
        Name="capture-everything",
        EventBusName=EVENT_BUS,
        EventPattern=json.dumps({"source": ["aurora-restore"]}),
    )
    events.put_targets(
        Rule="capture-everything", EventBusName=EVENT_BUS, Targets=[{"Id": "capture", "Arn": capture_arn}]
    )

    ec2 = boto3.client("ec2", region_name=TARGET_REGION)
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24", AvailabilityZone=f"{TARGET_REGION}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for i, zone in enumerate("ab")
    ]
    # The restored cluster's security group, in the subnet group's VPC (snapshot_check looks for it there).
    group = ec2.create_security_group(GroupName="dev-restored", Description="the runbook's", VpcId=vpc)[
        "GroupId"
    ]
    config = (
        runbook_config(topic_arn, queue_url)
        | {"database_name": database, "target_security_groups": [group]}
        | config_overrides
    )
    ssm = boto3.client("ssm", region_name=TARGET_REGION)
    ssm.put_parameter(Name=CONFIG_PARAMETER, Value=json.dumps(config), Type="String")
    ssm.put_parameter(Name=DB_USERS_PARAMETER, Value=json.dumps(RUNBOOK_USERS), Type="String")
    boto3.client("secretsmanager", region_name=TARGET_REGION).create_secret(
        Name=MASTER_SECRET_ID, SecretString=json.dumps({"username": "postgres", "password": master_password})
    )

    source = boto3.client("rds", region_name=SOURCE_REGION)
    source.create_db_cluster(
        DBClusterIdentifier=SOURCE_CLUSTER,
        Engine="aurora-postgresql",
        EngineVersion=ENGINE_VERSION,
        MasterUsername="postgres",
        MasterUserPassword="source-master-password",
    )
    source.create_db_cluster_snapshot(
        DBClusterIdentifier=SOURCE_CLUSTER, DBClusterSnapshotIdentifier=SNAPSHOT_NAME
    )
    target = boto3.client("rds", region_name=TARGET_REGION)
    target.create_db_subnet_group(
        DBSubnetGroupName=runbook_config("", "")["target_subnet_group"],
        DBSubnetGroupDescription="the runbook's",
        SubnetIds=subnets,
    )
    target.create_db_cluster(
        DBClusterIdentifier=TARGET_CLUSTER,
        Engine="aurora-postgresql",
        MasterUsername="postgres",
        MasterUserPassword="old-target-password",
    )
    target.create_db_instance(
        DBInstanceIdentifier=TARGET_WRITER,
        DBClusterIdentifier=TARGET_CLUSTER,
        Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large",
    )
    # moto keeps a cluster's automated snapshot (named to the minute) after the cluster is deleted, so a
    # restore under the same name within that minute would collide with it; real RDS has no such clash.
    backend = rds_backend(TARGET_REGION)
    for snapshot_id in [key for key in backend.cluster_snapshots if key.startswith("rds:")]:
        del backend.cluster_snapshots[snapshot_id]

    reset_function_caches()
    recorder.clear()
    return World(
        config=config,
        topic_arn=topic_arn,
        queue_url=queue_url,
        capture_queue_url=capture_url,
        database=database,
        master_password=master_password,
        rds_calls=recorder,
        context=LambdaContext(),
    )


def roles(postgres: Any) -> set[str]:
    """The roles on the test server besides PostgreSQL's own and the superuser."""
    conn = postgres.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> 'postgres'")
            return {row[0] for row in cursor.fetchall()}
    finally:
        conn.close()


def held_privileges(cursor: Any, usernames: list[str], schemas: list[str]) -> dict[str, dict[str, set[str]]]:
    """For each user, each table (schema.name) on which it holds a whitelisted privilege, and those: what
    verify reads, table by table."""
    from functions.database.verification import privilege_groups

    held: dict[str, dict[str, set[str]]] = {name: {} for name in usernames}
    for group in privilege_groups(cursor, usernames, schemas):
        for user, privileges in group.held.items():
            if privileges:
                held[user].update((f"{schema}.{name}", set(privileges)) for schema, name in group.tables)
    return held
