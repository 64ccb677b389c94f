"""The integration tests' side of the runbook's world: its names, the World handle, and test helpers.

The world itself is seeded by aurora_restore.local.world, as the local runtime seeds it.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fakes.lambda_context import LambdaContext

from aurora_restore.local.simulator import SEED_SQL as SEED_SQL
from aurora_restore.local.world import ACCOUNT as ACCOUNT
from aurora_restore.local.world import LOG_PREFIX as LOG_PREFIX
from aurora_restore.local.world import RUNBOOK_USERS as RUNBOOK_USERS
from aurora_restore.local.world import SOURCE_CLUSTER as SOURCE_CLUSTER
from aurora_restore.local.world import TARGET_CLUSTER as TARGET_CLUSTER
from aurora_restore.local.world import (
    WorldNames,
    WorldSeeder,
    runbook_config,
    seed_world,
    snapshot_name,
    writer_of,
)
from aurora_restore.local.world import rds_backend as rds_backend
from functions.sequence import RUNBOOK

NAMES = WorldNames(environment="dev", source_region="us-east-1", target_region="us-west-2")
SOURCE_REGION = NAMES.source_region
TARGET_REGION = NAMES.target_region
OPERATION_ID = "dev-restore-2023-06-01"
TARGET_DATE = "2023-06-01"
TARGET_WRITER = writer_of(TARGET_CLUSTER)
SNAPSHOT_NAME = snapshot_name(TARGET_DATE)
COPY_NAME = f"{SNAPSHOT_NAME}-copy"
STATE_TABLE = NAMES.state_table
EVENT_BUS = NAMES.event_bus
CONFIG_PARAMETER = NAMES.config_parameter
DB_USERS_PARAMETER = NAMES.db_users_parameter
MASTER_SECRET_ID = NAMES.master_secret_id
LOG_BUCKET = NAMES.log_bucket
# The master user the world's clusters and its secret name: the test server's superuser.
MASTER_USERNAME = "postgres"

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

STEP_MODULES = tuple(step.value for step in RUNBOOK)  # the runbook's ten steps, in order (no masking)


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


def create_state_table(table_name: str = STATE_TABLE, region: str = TARGET_REGION) -> None:
    """An environment's state table in moto, keyed as the stack's is (the local runtime's seeding makes it)."""
    environment = table_name.removeprefix("aurora-restore-state-")
    names = WorldNames(environment=environment, source_region=SOURCE_REGION, target_region=region)
    assert names.state_table == table_name, f"{table_name} is not an environment's state table"
    WorldSeeder(_client, names).state_table()


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
    """The shared world (one snapshot, of TARGET_DATE), then what only the tests need: a queue capturing
    every event on the bus, and no automated snapshot of the target (there is no RDS simulator here)."""
    seeded = seed_world(
        WorldSeeder(_client, NAMES, master_username=MASTER_USERNAME),
        days=[date.fromisoformat(TARGET_DATE)],
        master_password=master_password,
        config=lambda group: runbook_config(NAMES, group) | {"database_name": database} | config_overrides,
    )
    capture_url = _capture_bus_events()
    _forget_automated_snapshots()
    reset_function_caches()
    recorder.clear()
    return World(
        config=seeded.config,
        topic_arn=seeded.topic_arn,
        queue_url=seeded.queue_url,
        capture_queue_url=capture_url,
        database=database,
        master_password=master_password,
        rds_calls=recorder,
        context=LambdaContext(),
    )


def _client(service: str, region: str) -> Any:
    import boto3

    return boto3.client(service, region_name=region)


def _capture_bus_events() -> str:
    """The environment's bus with a rule sending every event of ours to a queue; the queue's URL."""
    sqs = _client("sqs", TARGET_REGION)
    capture_url = sqs.create_queue(QueueName="bus-capture")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = _client("events", TARGET_REGION)
    events.create_event_bus(Name=EVENT_BUS)
    events.put_rule(
        Name="capture-everything",
        EventBusName=EVENT_BUS,
        EventPattern=json.dumps({"source": ["aurora-restore"]}),
    )
    events.put_targets(
        Rule="capture-everything", EventBusName=EVENT_BUS, Targets=[{"Id": "capture", "Arn": capture_arn}]
    )
    return str(capture_url)


def _forget_automated_snapshots() -> None:
    """moto keeps a cluster's automated snapshot (named to the minute) after the cluster is deleted, so a
    restore under the same name within that minute would collide with it; real RDS has no such clash."""
    backend = rds_backend(TARGET_REGION)
    for snapshot_id in [key for key in backend.cluster_snapshots if key.startswith("rds:")]:
        del backend.cluster_snapshots[snapshot_id]


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
