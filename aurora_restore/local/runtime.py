"""The embedded local runtime: the whole system on this machine, without an AWS account.

moto's server on 127.0.0.1 (the handlers reach it through AWS_ENDPOINT_URL and run unchanged), the bus
and its rules built from the route table, each rule targeting an SQS queue that in-process workers feed to
the handlers, the RDS simulator, a real PostgreSQL standing in for the restored cluster, the scheduled
reconciler, and a Lambda Invoke endpoint for the function names.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aurora_restore.local.invoke import InvokeServer
from aurora_restore.local.motoserver import Fault, LocalMotoServer, request_access_key
from aurora_restore.local.postgres import PostgresServer
from aurora_restore.local.simulator import (
    ENGINE_VERSION,
    MASTER_USERNAME,
    Durations,
    RdsSimulator,
    SimulatorOptions,
    StandIn,
)
from functions.routes import FUNCTIONS, RECONCILE, build_routes
from functions.settings import function_name

ACCOUNT = "123456789012"
# The runtime's own clients (seeding, workers' polling, RDS events, checks) sign with this key, the functions
# and the CLI with the environment's: injected AWS faults hit only the latter.
PLUMBING_ACCESS_KEY = "testing-runtime"
SOURCE_CLUSTER = "dev-source-cluster"
TARGET_CLUSTER = "dev-target-cluster"
DATABASE = "appdb"
RUNBOOK_USERS = [
    {
        "username": "app_user",
        "password": "app_password",
        "privileges": ["SELECT", "INSERT", "UPDATE", "DELETE"],
    },
    {"username": "readonly_user", "password": "readonly_password", "privileges": ["SELECT"]},
]

_log = logging.getLogger("aurora_restore.local")


@dataclass
class FaultProfile:
    """What goes wrong on purpose. The default profile is a well-behaved AWS."""

    name: str = "none"
    duplicate_deliveries: bool = False  # every event delivered twice
    max_delivery_delay: float = 0.0  # each delivery held back up to this many seconds: late and out of order
    drop_rds_events: bool = False  # RDS events are never delivered: the reconciler must carry the waits
    aws_failure_rate: float = 0.0  # share of AWS calls answered with throttling or a transient error
    # Each of these steps crashes once per operation after its AWS calls and before its state write: an
    # RDS-mutating step right after the run that made its mutating call, any other step on its first run.
    crash_steps: frozenset[str] = frozenset()
    seed: int = 7


# The steps whose runs call RDS's mutating APIs; the crash profile crashes them after such a call.
RDS_MUTATING_STEPS = frozenset({"copy_snapshot", "delete_rds", "restore_snapshot", "check_restore_status"})


@dataclass
class RuntimeOptions:
    environment: str = "dev"
    source_region: str = "us-east-1"
    target_region: str = "us-west-2"
    durations: Durations = field(default_factory=Durations)
    recheck_interval_seconds: float = 1.0
    event_wait_recheck_seconds: float = 2.0
    wakeup_grace_seconds: float = 1.0
    reconcile_interval_seconds: float = 0.5
    # A stretch between two waits unmoved this long is re-driven (its watchdog fires).
    stall_seconds: float = 15.0
    workers_per_function: int = 2
    # The stand-in is one PostgreSQL server whose roles every target shares; two transactions altering the
    # same role at once fail there ("tuple concurrently updated") though never on separate clusters.
    serial_functions: tuple[str, ...] = ("setup_db_users",)
    # Like Lambda's own event queue: an event being handled is not handed to a second invocation however
    # long the first takes (longer than any step); a failed one comes again after `retry_delay_seconds`.
    visibility_timeout_seconds: int = 300
    retry_delay_seconds: int = 2
    # A failed delivery comes again after the visibility timeout, up to this many times (EventBridge retries
    # for hours): enough to outlast a crashed invocation's claim (AURORA_RESTORE_CLAIM_SECONDS here).
    max_receives: int = 20
    invoke_endpoint: bool = True
    # False: no workers and no reconciler, so only a driver that invokes the functions directly (the
    # runbook's polling script, the benchmark) advances operations.
    choreography: bool = True
    faults: FaultProfile = field(default_factory=FaultProfile)
    config_overrides: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = None  # where the functions' JSON logs go; None keeps them in memory


def _due_at(schedule: Any) -> datetime:
    """When a one-time schedule fires: at() has whole seconds, which time-scaled local waits (a second
    stands for minutes) cannot round to; functions.wakeup puts the exact time in the description."""
    description = schedule.description or ""
    if ", due " in description:
        exact = datetime.fromisoformat(description.rsplit(", due ", 1)[1])
        return exact.astimezone(UTC).replace(tzinfo=None) if exact.tzinfo else exact
    return datetime.fromisoformat(schedule.schedule_expression[3:-1])


@dataclass
class Delivery:
    at: float
    function: str
    detail_type: str
    operation_id: str | None
    outcome: str


class LambdaContext:
    """The parts of the Lambda context object the handlers and Powertools read."""

    def __init__(self, name: str, region: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


class SimulatedCrash(RuntimeError):
    """A fault profile's crash: the function died after its AWS calls and before writing state."""


class LocalRuntime:
    def __init__(self, options: RuntimeOptions | None = None) -> None:
        self.options = options or RuntimeOptions()
        self.moto = LocalMotoServer()
        self.postgres: PostgresServer | None = None
        self.simulator: RdsSimulator | None = None
        self.invoke_server: InvokeServer | None = None
        self.handlers: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {}
        self.deliveries: list[Delivery] = []
        self.wakeups_fired = 0
        # (time.time() it fired, the detail it put on the bus): when each wait's timer ran out.
        self.wakeup_log: list[tuple[float, dict[str, Any]]] = []
        self.event_bodies: list[str] = []  # every event a worker received, raw (for scans of what travelled)
        self.errors: list[str] = []
        self.log_lines: list[str] = []
        self.database_names: dict[str, str] = {TARGET_CLUSTER: DATABASE}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()
        self._queues: dict[str, str] = {}
        self._crashed: set[tuple[str, str]] = set()
        self._mutations_seen: dict[str, int] = {}
        self._random = random.Random(self.options.faults.seed)
        self._saved_env: dict[str, str | None] = {}
        self._log_stream: Any = None
        self.master_password = secrets.token_urlsafe(18)
        self._crash_hook_installed = False
        self._original_stream: Any = None
        self.started_at = 0.0
        self.security_group_id = ""  # the restored clusters' (in the subnet group's VPC), made when seeding

    # -- life cycle --------------------------------------------------------------------------------------
    def start(self) -> LocalRuntime:
        """Start everything. Failed or interrupted part way (Ctrl-C included), what was started is stopped
        (PostgreSQL, moto's server, the threads) before the exception goes on."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalRuntime:
        self.started_at = time.monotonic()
        self.moto.start()
        self.moto.reset()  # moto's backends live in this process: start from nothing
        self.postgres = PostgresServer().start()
        self._set_environment()
        self._reset_function_caches()
        self._redirect_logs()
        self._seed()
        self.simulator = RdsSimulator(
            SimulatorOptions(
                durations=self.options.durations,
                send_events=not self.options.faults.drop_rds_events,
            ),
            publish=self._publish_rds_event,
            stand_in=StandIn(self.postgres, self.database_for),
        )
        self.simulator.install()
        self._settle_seeded_clusters()
        self._load_handlers()
        self._wire_bus()
        self.moto.app.fault_hook = self._aws_fault
        for function in FUNCTIONS if self.options.choreography else ():
            # The reconciler's queue carries the watchdogs' StallCheckDue; its hourly scan is _reconciler.
            serial = function in self.options.serial_functions or function == RECONCILE
            workers = 1 if serial else self.options.workers_per_function
            for index in range(workers):
                self._spawn(f"worker-{function}-{index}", self._worker, function)
        if self.options.choreography:
            self._spawn("reconciler", self._reconciler)
            self._spawn("scheduler", self._scheduler)
        if self.options.invoke_endpoint:
            self.invoke_server = InvokeServer(self.invoke).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.invoke_server is not None:
            self.invoke_server.stop()
        if self.simulator is not None:
            self.simulator.uninstall()
        if self._crash_hook_installed:
            from functions.engine import writer

            writer.intercept(None)
            self._crash_hook_installed = False
        if self.postgres is not None:
            self.postgres.stop()
        try:
            self.moto.stop()
        except Exception as exc:  # noqa: BLE001 - stopping must go on whatever moto says
            _log.debug("moto stop: %s", exc)
        with self._clients_lock:
            self._clients.clear()  # they point at the moto server just stopped
        self._restore_logs()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._reset_function_caches()

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- environment -------------------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """What a shell (the CLI, the aws CLI, the runbook's script) needs to reach this runtime."""
        assert self.postgres is not None
        env = {
            "AWS_ENDPOINT_URL": self.moto.url,
            "AWS_DEFAULT_REGION": self.options.target_region,
            "AWS_REGION": self.options.target_region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AURORA_RESTORE_ENV": self.options.environment,
            "AURORA_RESTORE_PG_DSN": self.postgres.dsn(DATABASE),
        }
        if self.invoke_server is not None:
            env["AWS_ENDPOINT_URL_LAMBDA"] = self.invoke_server.url
        return env

    def _set_environment(self) -> None:
        env = self.environment()
        env.update(
            {
                "POWERTOOLS_METRICS_DISABLED": "true",
                # A step's claim lasts as long as the function may run: short here, as local runs are quick.
                "AURORA_RESTORE_CLAIM_SECONDS": "20",
                # A running step unmoved this long without a claim lost its trigger: the reconciler re-drives it.
                "AURORA_RESTORE_STALL_SECONDS": str(self.options.stall_seconds),
                # Wake-ups through (moto's) EventBridge Scheduler, fired by the runtime's scheduler thread.
                "AURORA_RESTORE_SCHEDULER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/aurora-restore-scheduler",
                "AURORA_RESTORE_EVENT_BUS_ARN": (
                    f"arn:aws:events:{self.options.target_region}:{ACCOUNT}:event-bus/aurora-restore-{self.options.environment}"
                ),
                "AURORA_RESTORE_WAKEUP_GRACE_SECONDS": str(self.options.wakeup_grace_seconds),
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_DEV": "false",
                "AWS_MAX_ATTEMPTS": "",
            }
        )
        for name, value in env.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value:
                os.environ[name] = value
            else:
                os.environ.pop(name, None)

    @staticmethod
    def _reset_function_caches() -> None:
        from aws_lambda_powertools.utilities import parameters

        from functions import aws
        from functions.engine import services
        from functions.settings import get_settings

        aws.reset_clients()
        services.reset()
        get_settings.cache_clear()
        parameters.clear_caches()

    def _redirect_logs(self) -> None:
        """The functions' JSON logs go to a file (or memory), not over the operator's terminal."""
        from functions.observability import logger

        handler = logger.registered_handler
        self._original_stream = getattr(handler, "stream", None)
        if self.options.log_path is not None:
            self.options.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_stream = self.options.log_path.open("a", encoding="utf-8")
        else:
            self._log_stream = _MemoryStream(self.log_lines)
        handler.setStream(self._log_stream)  # type: ignore[attr-defined]

    def _restore_logs(self) -> None:
        from functions.observability import logger

        if self._original_stream is not None:
            logger.registered_handler.setStream(self._original_stream)  # type: ignore[attr-defined]
        if self._log_stream is not None and not isinstance(self._log_stream, _MemoryStream):
            self._log_stream.close()

    def client(self, service: str, region: str | None = None) -> Any:
        """The runtime's own client for `service` in `region`, made once: a new one per call re-read
        botocore's data files each time (0.1-0.4 s), which delayed every RDS event the simulator put on the
        bus by that much. Clients are thread-safe; making them is not, hence the lock."""
        key = (service, region or self.options.target_region)
        with self._clients_lock:
            if key not in self._clients:
                import boto3
                from botocore.config import Config

                self._clients[key] = boto3.session.Session().client(
                    service,
                    region_name=key[1],
                    endpoint_url=self.moto.url,
                    aws_access_key_id=PLUMBING_ACCESS_KEY,
                    aws_secret_access_key="testing",
                    # one connection per worker's long poll and then some: shared by every thread
                    config=Config(max_pool_connections=64),
                )
            return self._clients[key]

    # -- fixtures ----------------------------------------------------------------------------------------
    def config_document(self) -> dict[str, Any]:
        region = self.options.target_region
        env = self.options.environment
        document: dict[str, Any] = {
            "source_region": self.options.source_region,
            "target_region": region,
            "source_cluster_id": SOURCE_CLUSTER,
            "target_cluster_id": TARGET_CLUSTER,
            "target_subnet_group": f"{env}-subnet-group",
            "target_security_groups": [self.security_group_id],
            "master_credentials_secret_id": f"{env}/master-credentials",
            "notification_topic_arn": f"arn:aws:sns:{region}:{ACCOUNT}:{env}-notifications",
            "notification_queue_url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{env}-notifications",
            "log_bucket": f"{env}-aurora-restore-logs",
            "log_prefix": "aurora-restore-logs",
            "database_name": DATABASE,
            "expected_tables": ["public.users", "public.products", "app_schema.orders"],
            "recheck_interval_seconds": self.options.recheck_interval_seconds,
            "event_wait_recheck_seconds": self.options.event_wait_recheck_seconds,
        }
        document.update(self.options.config_overrides)
        return document

    def _seed(self) -> None:
        source, target = self.options.source_region, self.options.target_region
        env = self.options.environment
        rds_source, rds_target = self.client("rds", source), self.client("rds", target)
        ec2 = self.client("ec2", target)
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{target}{zone}")[
                "Subnet"
            ]["SubnetId"]
            for i, zone in enumerate("ab", start=1)
        ]
        rds_target.create_db_subnet_group(
            DBSubnetGroupName=f"{env}-subnet-group", DBSubnetGroupDescription="local", SubnetIds=subnets
        )
        self.security_group_id = ec2.create_security_group(
            GroupName=f"{env}-restored", Description="local", VpcId=vpc
        )["GroupId"]
        production_password = secrets.token_urlsafe(18)  # the source's password: never needed by the target
        rds_source.create_db_cluster(
            DBClusterIdentifier=SOURCE_CLUSTER,
            Engine="aurora-postgresql",
            EngineVersion=ENGINE_VERSION,
            MasterUsername=MASTER_USERNAME,
            MasterUserPassword=production_password,
            DatabaseName=DATABASE,
        )
        for days_ago in range(7):
            day = date.today() - timedelta(days=days_ago)
            rds_source.create_db_cluster_snapshot(
                DBClusterIdentifier=SOURCE_CLUSTER,
                DBClusterSnapshotIdentifier=f"{SOURCE_CLUSTER}-snapshot-{day}",
            )
        self._date_snapshots()
        self.add_target_cluster(TARGET_CLUSTER)
        ssm = self.client("ssm", target)
        ssm.put_parameter(
            Name=f"/aurora-restore/{env}/config",
            Value=json.dumps(self.config_document()),
            Type="String",
            Overwrite=True,
        )
        ssm.put_parameter(
            Name=f"/aurora-restore/{env}/db_users",
            Value=json.dumps(RUNBOOK_USERS),
            Type="String",
            Overwrite=True,
        )
        self.client("secretsmanager", target).create_secret(
            Name=f"{env}/master-credentials",
            SecretString=json.dumps({"username": MASTER_USERNAME, "password": self.master_password}),
        )
        self.client("sns", target).create_topic(Name=f"{env}-notifications")
        sqs = self.client("sqs", target)
        sqs.create_queue(QueueName=f"{env}-notifications")
        self.client("s3", target).create_bucket(
            Bucket=f"{env}-aurora-restore-logs", CreateBucketConfiguration={"LocationConstraint": target}
        )
        self.client("dynamodb", target).create_table(
            TableName=f"aurora-restore-state-{env}",
            KeySchema=[{"AttributeName": "operation_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "operation_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def add_target_cluster(self, cluster_id: str, database: str | None = None) -> None:
        """Another existing target cluster with its writer (the benchmark and chaos runs use many)."""
        rds = self.client("rds", self.options.target_region)
        rds.create_db_cluster(
            DBClusterIdentifier=cluster_id,
            Engine="aurora-postgresql",
            EngineVersion=ENGINE_VERSION,
            MasterUsername=MASTER_USERNAME,
            MasterUserPassword=secrets.token_urlsafe(18),
            DBSubnetGroupName=f"{self.options.environment}-subnet-group",
        )
        rds.create_db_instance(
            DBInstanceIdentifier=f"{cluster_id}-instance-1",
            DBClusterIdentifier=cluster_id,
            Engine="aurora-postgresql",
            DBInstanceClass="db.r6g.large",
        )
        if database:
            self.database_names[cluster_id] = database
        backend = self._backend(self.options.target_region)
        backend.databases[f"{cluster_id}-instance-1"].status = "available"
        backend.clusters[cluster_id]._status = "available"

    def database_for(self, cluster_id: str) -> str:
        return self.database_names.get(cluster_id) or cluster_id.replace("-", "_")

    def _backend(self, region: str) -> Any:
        from moto.backends import get_backend

        return get_backend("rds")[ACCOUNT][region]

    def _date_snapshots(self) -> None:
        for snapshot in self._backend(self.options.source_region).cluster_snapshots.values():
            if "-snapshot-" not in snapshot.db_cluster_snapshot_identifier:
                continue
            day = date.fromisoformat(snapshot.db_cluster_snapshot_identifier.rsplit("-snapshot-", 1)[1])
            snapshot.created = datetime(day.year, day.month, day.day, 3, 0, tzinfo=UTC)

    def _settle_seeded_clusters(self) -> None:
        for region in (self.options.source_region, self.options.target_region):
            for cluster in self._backend(region).clusters.values():
                if getattr(cluster, "_status", "available") == "creating":
                    cluster._status = "available"

    # -- the bus -------------------------------------------------------------------------------------------
    def _wire_bus(self) -> None:
        env = self.options.environment
        region = self.options.target_region
        events, sqs = self.client("events", region), self.client("sqs", region)
        bus = f"aurora-restore-{env}"
        events.create_event_bus(Name=bus)
        for function in FUNCTIONS:
            url = sqs.create_queue(
                QueueName=f"{function_name(function, env)}-local",
                Attributes={"VisibilityTimeout": str(self.options.visibility_timeout_seconds)},
            )["QueueUrl"]
            self._queues[function] = url
        for route in build_routes(region):
            rule = f"aurora-restore-{route.name}-{env}"
            bus_name = bus if route.bus == "environment" else "default"
            events.put_rule(
                Name=rule, EventBusName=bus_name, EventPattern=json.dumps(route.pattern), State="ENABLED"
            )
            arn = sqs.get_queue_attributes(
                QueueUrl=self._queues[route.function], AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            events.put_targets(
                Rule=rule,
                EventBusName=bus_name,
                Targets=[
                    {
                        "Id": route.function,
                        "Arn": arn,
                        # The whole event, `account` included, as Lambda would receive it.
                        "InputTransformer": {"InputPathsMap": {}, "InputTemplate": "<aws.events.event.json>"},
                    }
                ],
            )

    def _publish_rds_event(self, region: str, entry: dict[str, Any]) -> None:
        self.client("events", region).put_events(Entries=[{**entry, "EventBusName": "default"}])

    def put_restore_requested(
        self, operation_id: str, target_date: date | str, overrides: dict[str, Any] | None = None
    ) -> None:
        detail: dict[str, Any] = {"operation_id": operation_id, "target_date": str(target_date)}
        if overrides:
            detail["overrides"] = overrides
        from schemas.events import RestoreRequested

        event = RestoreRequested.model_validate(detail)
        answer = self.client("events").put_events(
            Entries=[
                {
                    "Source": "aurora-restore",
                    "DetailType": "RestoreRequested",
                    "Detail": event.model_dump_json(),
                    "EventBusName": f"aurora-restore-{self.options.environment}",
                }
            ]
        )
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"put-events failed: {answer['Entries']}")

    # -- functions -------------------------------------------------------------------------------------------
    def _load_handlers(self) -> None:
        for function in FUNCTIONS:
            module = importlib.import_module(f"functions.{function}")
            self.handlers[function] = module.handler
        self._install_crash_hook()

    def _install_crash_hook(self) -> None:
        """Crash profile: a step dies once per operation after its AWS calls, before its state write.

        Installed always and reading the current profile, so `set_faults` can switch it on later.
        """
        from functions.engine import writer

        if self._crash_hook_installed:
            return
        runtime = self

        def crashing_commit(step: Any, state: Any, events: list[Any], commit: Callable[[], bool]) -> bool:
            name = step.value if step is not None else None
            if name in runtime.options.faults.crash_steps and state.status != "failed":
                if runtime._crash_due(state, name):
                    raise SimulatedCrash(f"{name} crashed after its AWS calls, before writing state")
            published = commit()
            runtime._note_mutations(state)
            return published

        writer.intercept(crashing_commit)
        self._crash_hook_installed = True

    def _crash_due(self, state: Any, step: str) -> bool:
        """Crash this run? Once per (operation, step); an RDS-mutating step only after a mutating call."""
        key = (state.operation_id, step)
        with self._lock:
            if key in self._crashed:
                return False
            if step in RDS_MUTATING_STEPS:
                made = self._operation_mutations(state)
                if made <= self._mutations_seen.get(state.operation_id, 0):
                    return False
            self._crashed.add(key)
        return True

    def _note_mutations(self, state: Any) -> None:
        made = self._operation_mutations(state)
        with self._lock:
            self._mutations_seen[state.operation_id] = max(
                made, self._mutations_seen.get(state.operation_id, 0)
            )

    def _operation_mutations(self, state: Any) -> int:
        if self.simulator is None:
            return 0
        return sum(self.simulator.mutating_calls(operation_resources(state)).values())

    @property
    def crashes(self) -> set[tuple[str, str]]:
        """(operation, step) pairs the crash profile crashed."""
        with self._lock:
            return set(self._crashed)

    def set_faults(self, faults: FaultProfile) -> None:
        """Switch the fault profile of a running runtime (the chaos run goes through its profiles this way)."""
        self.options.faults = faults
        self._random = random.Random(faults.seed)
        if self.simulator is not None:
            self.simulator.options.send_events = not faults.drop_rds_events

    def invoke(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Run a function by its Lambda name (aurora-restore-<step>-<env>) or step name."""
        function = self.function_for(name)
        context = LambdaContext(function_name(function, self.options.environment), self.options.target_region)
        return self.handlers[function](payload, context)

    def function_for(self, name: str) -> str:
        env = self.options.environment
        name = name.rsplit(":function:", 1)[-1].split(":")[0]
        for function in FUNCTIONS:
            if name in (function, function_name(function, env)):
                return function
        raise KeyError(f"no function named {name}")

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _worker(self, function: str) -> None:
        sqs = self.client("sqs")
        url = self._queues[function]
        while not self._stop.is_set():
            faults = self.options.faults
            try:
                messages = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=1,
                    WaitTimeSeconds=1,
                    AttributeNames=["ApproximateReceiveCount"],
                ).get("Messages", [])
            except Exception as exc:  # noqa: BLE001 - the worker outlives a failed poll, as Lambda's poller does
                if not self._stop.is_set():
                    self.errors.append(f"{function} poll: {exc}")
                    self._stop.wait(0.2)
                continue
            for message in messages:
                with self._lock:
                    self.event_bodies.append(message["Body"])
                event = json.loads(message["Body"])
                if faults.max_delivery_delay:
                    self._stop.wait(self._random.uniform(0, faults.max_delivery_delay))
                if faults.duplicate_deliveries:
                    delivered = self._deliver_twice_at_once(function, event)
                else:
                    delivered = self._deliver(function, event)
                if (
                    delivered
                    or int(message["Attributes"].get("ApproximateReceiveCount", "1"))
                    >= self.options.max_receives
                ):
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                else:
                    sqs.change_message_visibility(
                        QueueUrl=url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=self.options.retry_delay_seconds,
                    )

    def _deliver_twice_at_once(self, function: str, event: dict[str, Any]) -> bool:
        """The duplicate profile: two invocations with the same event, running at the same time."""
        results: list[bool] = []
        twin = threading.Thread(
            target=lambda: results.append(self._deliver(function, event)),
            name=f"{threading.current_thread().name}-twin",
            daemon=True,
        )
        twin.start()
        first = self._deliver(function, event)
        twin.join()
        return first and all(results)

    def _deliver(self, function: str, event: dict[str, Any]) -> bool:
        detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
        operation_id = detail.get("operation_id") if detail else None
        try:
            response = self.invoke(function, event)
            outcome = str(response.get("status"))
            ok = True
        except Exception as exc:  # noqa: BLE001 - like Lambda: an error means the event comes again
            outcome = f"error: {type(exc).__name__}: {exc}"
            ok = False
        with self._lock:
            self.deliveries.append(
                Delivery(
                    time.monotonic() - self.started_at,
                    function,
                    str(event.get("detail-type")),
                    operation_id,
                    outcome,
                )
            )
        return ok

    def _reconciler(self) -> None:
        context = LambdaContext(
            function_name(RECONCILE, self.options.environment), self.options.target_region
        )
        while not self._stop.wait(self.options.reconcile_interval_seconds):
            try:
                self.handlers[RECONCILE]({"source": "aws.events", "detail-type": "Scheduled Event"}, context)
            except Exception as exc:  # noqa: BLE001 - the schedule fires again
                self.errors.append(f"reconcile: {exc}")

    def _scheduler(self) -> None:
        """EventBridge Scheduler's part: fire each one-time `at()` schedule when due, then delete it."""
        from moto.backends import get_backend

        events = self.client("events")
        while not self._stop.wait(0.05):
            backend = get_backend("scheduler")[ACCOUNT][self.options.target_region]
            now = datetime.now(UTC).replace(tzinfo=None)
            due = []
            for group in list(backend.schedule_groups.values()):
                for name, schedule in list(group.schedules.items()):
                    expression = schedule.schedule_expression
                    if expression.startswith("at(") and _due_at(schedule) <= now:
                        due.append((group, name, schedule))
            for group, name, schedule in due:
                group.schedules.pop(name, None)
                target = schedule.target
                parameters = target.get("EventBridgeParameters", {})
                try:
                    events.put_events(
                        Entries=[
                            {
                                "Source": parameters.get("Source"),
                                "DetailType": parameters.get("DetailType"),
                                "Detail": target.get("Input") or "{}",
                                "EventBusName": target["Arn"],
                            }
                        ]
                    )
                    with self._lock:
                        self.wakeups_fired += 1
                        self.wakeup_log.append((time.time(), json.loads(target.get("Input") or "{}")))
                except Exception as exc:  # noqa: BLE001 - a lost wake-up is what the reconciler is for
                    self.errors.append(f"scheduler: {exc}")

    def _aws_fault(self, service: str, action: str) -> Fault | None:
        """Throttle or fail a share of the functions' AWS calls (never the runtime's own plumbing)."""
        if self.options.faults.aws_failure_rate <= 0 or request_access_key() == PLUMBING_ACCESS_KEY:
            return None
        if self._random.random() >= self.options.faults.aws_failure_rate:
            return None
        if self._random.random() < 0.5:
            return Fault("ThrottlingException" if service != "rds" else "Throttling", "Rate exceeded")
        return Fault("ServiceUnavailable", "Service is unavailable, try again", status=503)

    # -- watching --------------------------------------------------------------------------------------------
    def state(self, operation_id: str) -> Any:
        from functions.state import DynamoStateStore

        return DynamoStateStore(
            f"aurora-restore-state-{self.options.environment}", self.options.target_region
        ).get(operation_id)

    def wait_for_step(self, operation_id: str, step: str, timeout: float = 60.0, poll: float = 0.1) -> Any:
        """Until the operation has recorded `step`'s result; its state then. AssertionError at the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(operation_id)
            if state is not None and step in state.results:
                return state
            time.sleep(poll)
        raise AssertionError(f"{operation_id} never finished {step}")

    def wait_for(self, operation_id: str, timeout: float = 60.0, poll: float = 0.1) -> Any:
        """Until the operation ends (completed, failed, aborted) or the timeout; returns its state."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.state(operation_id)
            if state is not None and state.status in ("completed", "failed", "aborted") and not state.outbox:
                return state
            time.sleep(poll)
        return state


def operation_resources(state: Any) -> set[str]:
    """The RDS resources one operation's mutating calls touch: its target cluster, writer and copy."""
    cluster = state.config.get("target_cluster_id") or state.outputs.get("target_cluster_id")
    resources: set[str] = set()
    if cluster:
        from functions.steps.cluster import writer_id

        resources |= {cluster, writer_id(cluster), f"{cluster}-instance-1"}
    if state.outputs.get("target_snapshot"):
        resources.add(str(state.outputs["target_snapshot"]))
    return resources


class _MemoryStream:
    """A write-only text stream that keeps each line (for scans of what the functions logged)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._partial += text
            *complete, self._partial = self._partial.split("\n")
            self.lines.extend(line for line in complete if line)
        return len(text)

    def flush(self) -> None:
        return None
