"""The embedded local runtime: the whole system on this machine, without an AWS account.

moto's server on 127.0.0.1 (the handlers reach it through AWS_ENDPOINT_URL and run unchanged), the world
seeded into it (world.py), the bus and its rules with in-process workers feeding the handlers
(delivery.py), the wake-ups' schedules fired when due (scheduler.py), the RDS simulator, a real
PostgreSQL standing in for the restored cluster, the fault profiles (faults.py), and a Lambda Invoke
endpoint for the function names. LocalRuntime composes them and is what the CLI, demo, chaos run,
benchmarks and end-to-end tests drive.
"""

from __future__ import annotations

import importlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from aurora_restore.local import cross_account
from aurora_restore.local.delivery import Delivery, EventDelivery, LambdaContext
from aurora_restore.local.faults import (
    PLUMBING_ACCESS_KEY,
    CrashProfile,
    FaultDraws,
    FaultProfile,
    install_crash_hook,
    operation_resources,
)
from aurora_restore.local.invoke import InvokeServer
from aurora_restore.local.logs import LogRedirect
from aurora_restore.local.motoserver import LocalMotoServer
from aurora_restore.local.notices import NoticeCount, count_notices
from aurora_restore.local.postgres import PostgresServer
from aurora_restore.local.rds_calls import ACCEPTED
from aurora_restore.local.rds_profiles import rds_profile
from aurora_restore.local.scheduler import SchedulerEmulator
from aurora_restore.local.simulator import MASTER_USERNAME, Durations, RdsSimulator, SimulatorOptions, StandIn
from aurora_restore.local.source_account import world_seeder
from aurora_restore.local.world import (
    ACCOUNT,
    DATABASE,
    TARGET_CLUSTER,
    WorldNames,
    WorldSeeder,
    last_days,
    runbook_config,
    seed_world,
)
from aurora_restore.local.world import RUNBOOK_USERS as RUNBOOK_USERS  # re-exported (chaos, e2e tests)
from aurora_restore.local.world import SOURCE_CLUSTER as SOURCE_CLUSTER  # re-exported (chaos)
from functions.database.connection import stand_in_database
from functions.routes import FUNCTIONS
from functions.settings import function_name

_log = logging.getLogger("aurora_restore.local")


@dataclass
class RuntimeOptions:
    environment: str = "dev"
    source_region: str = "us-east-1"
    target_region: str = "us-west-2"
    durations: Durations = field(default_factory=Durations)
    # The RDS simulator's profile (rds_profiles.PROFILES): "fast", or "realistic", RDS on a bad day at the
    # pace of `durations`.
    rds: str = "fast"
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
    # Which wake-ups fire: None, every one-time schedule when due; a set of step names, only those steps'
    # RecheckDue (every other schedule, the watchdogs' too, is dropped unfired, as if Scheduler lost it).
    # With `reconciler` False as well, nothing but an RDS event can end the other steps' waits.
    wakeups_fired_for: frozenset[str] | None = None
    reconciler: bool = True  # False: no reconciler scan (its hourly schedule) in this runtime
    faults: FaultProfile = field(default_factory=FaultProfile)
    config_overrides: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = None  # where the functions' JSON logs go; None keeps them in memory
    source_account: str | None = None  # the source cluster in this other account (source_account.py)


class LocalRuntime:
    """The system on this machine: started, driven and watched through this object."""

    def __init__(self, options: RuntimeOptions | None = None) -> None:
        self.options = options or RuntimeOptions()
        self.moto = LocalMotoServer()
        self.postgres: PostgresServer | None = None
        self.simulator: RdsSimulator | None = None
        self.invoke_server: InvokeServer | None = None
        self.handlers: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {}
        self.errors: list[str] = []
        self.log_lines: list[str] = []
        self.database_names: dict[str, str] = {TARGET_CLUSTER: DATABASE}
        self.master_password = secrets.token_urlsafe(18)
        self.started_at = 0.0
        self.security_group_id = ""  # the restored clusters' (in the subnet group's VPC), made when seeding
        self.stop_event = threading.Event()
        self.fault_draws = FaultDraws(lambda: self.options.faults)
        self.crash_profile = CrashProfile(
            lambda: self.options.faults, lambda state: operation_changes(self, state)
        )
        self.delivery = EventDelivery(self)
        self.wakeups = SchedulerEmulator(
            lambda: self.client("events"),
            self.options.target_region,
            self.errors,
            only_steps=self.options.wakeups_fired_for,
        )
        self._logs = LogRedirect(self.options.log_path, self.log_lines)
        self._threads: list[threading.Thread] = []
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()
        self._saved_env: dict[str, str | None] = {}
        self._uninstall_crash_hook: Callable[[], None] | None = None

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
        _apply_environment(self.environment() | _function_environment(self.options), self._saved_env)
        _reset_function_caches()
        self._logs.start()
        self._seed()
        if self.options.source_account:  # before the simulator, which wraps the copy stand-in
            cross_account.install()
        self.simulator = _simulator(self, rds_profile(self.options.rds, self.options.durations))
        if self.simulator.options.profile.existing_target_database:
            _existing_database(self, TARGET_CLUSTER)
        self._load_handlers()
        self.delivery.wire()
        self.moto.app.fault_hook = self.fault_draws.aws_fault
        if self.options.choreography:
            self.delivery.start(self._spawn)
            self._spawn("scheduler", self.wakeups.run, self.stop_event)
        if self.options.invoke_endpoint:
            self.invoke_server = InvokeServer(self.invoke).start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.invoke_server is not None:
            self.invoke_server.stop()
        if self.simulator is not None:
            self.simulator.uninstall()
        cross_account.uninstall()
        if self._uninstall_crash_hook is not None:
            self._uninstall_crash_hook()
            self._uninstall_crash_hook = None
        if self.postgres is not None:
            self.postgres.stop()
        try:
            self.moto.stop()
        except Exception as exc:  # noqa: BLE001 - stopping must go on whatever moto says
            _log.debug("moto stop: %s", exc)
        with self._clients_lock:
            self._clients.clear()  # they point at the moto server just stopped
        self._logs.restore()
        _restore_environment(self._saved_env)
        _reset_function_caches()

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- environment and clients ---------------------------------------------------------------------------
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

    def client(self, service: str, region: str | None = None) -> Any:
        """The runtime's own client for `service` in `region`, made once: a new one per call re-read
        botocore's data files each time (0.1-0.4 s), which delayed every RDS event the simulator put on the
        bus by that much. Clients are thread-safe; making them is not, hence the lock."""
        key = (service, region or self.options.target_region)
        with self._clients_lock:
            if key not in self._clients:
                self._clients[key] = _plumbing_client(service, key[1], self.moto.url)
            return self._clients[key]

    # -- the world --------------------------------------------------------------------------------------------
    @property
    def names(self) -> WorldNames:
        return WorldNames(self.options.environment, self.options.source_region, self.options.target_region)

    def config_document(self, security_group_id: str | None = None) -> dict[str, Any]:
        """The SSM config document: the runbook's values, the runtime's timings, then the overrides."""
        document = runbook_config(self.names, security_group_id or self.security_group_id) | {
            "database_name": DATABASE,
            "expected_tables": ["public.users", "public.products", "app_schema.orders"],
            "recheck_interval_seconds": self.options.recheck_interval_seconds,
            "event_wait_recheck_seconds": self.options.event_wait_recheck_seconds,
            # As the stack does: the key is there, so masking_rules alone turn masking on.
            "masking_key_secret_id": self.names.masking_key_secret_id,
        }
        return document | self.options.config_overrides

    def _seed(self) -> None:
        seeded = seed_world(
            world_seeder(self.client, self.names, self.options.source_account, self.moto.url),
            days=last_days(7),
            master_password=self.master_password,
            config=self.config_document,
            database=DATABASE,
        )
        self.security_group_id = seeded.security_group_id

    def add_target_cluster(self, cluster_id: str, database: str | None = None) -> None:
        """Another existing target cluster with its writer (the benchmark and chaos runs use many)."""
        WorldSeeder(self.client, self.names).target_cluster(cluster_id)
        if database:
            self.database_names[cluster_id] = database
        if self.simulator is not None and self.simulator.options.profile.existing_target_database:
            _existing_database(self, cluster_id)

    def database_for(self, cluster_id: str) -> str:
        return self.database_names.get(cluster_id) or stand_in_database(cluster_id)

    def _publish_rds_event(self, region: str, entry: dict[str, Any]) -> None:
        self.client("events", region).put_events(Entries=[{**entry, "EventBusName": "default"}])

    def put_restore_requested(
        self, operation_id: str, target_date: date | str, overrides: dict[str, Any] | None = None
    ) -> None:
        entry = restore_requested_entry(self.names.event_bus, operation_id, target_date, overrides)
        answer = self.client("events").put_events(Entries=[entry])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"put-events failed: {answer['Entries']}")

    # -- functions and faults ------------------------------------------------------------------------------
    def _load_handlers(self) -> None:
        for function in FUNCTIONS:
            self.handlers[function] = importlib.import_module(f"functions.{function}").handler
        if self._uninstall_crash_hook is None:
            self._uninstall_crash_hook = install_crash_hook(self.crash_profile)

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

    def set_faults(self, faults: FaultProfile) -> None:
        """Switch the fault profile of a running runtime (the chaos run goes through its profiles this way)."""
        self.options.faults = faults
        self.fault_draws.reseed(faults.seed)
        if self.simulator is not None:
            self.simulator.options.send_events = not faults.drop_rds_events

    def notices(self, operation_id: str) -> NoticeCount:
        """The outcome notices naming the operation: on the notices' topic, and on their queue."""
        return count_notices(self.options.target_region, self.names.notifications, operation_id)

    # -- watching --------------------------------------------------------------------------------------------
    @property
    def crashes(self) -> set[tuple[str, str]]:  # (operation, step) pairs the crash profile crashed
        return self.crash_profile.crashes

    @property
    def deliveries(self) -> list[Delivery]:
        return self.delivery.deliveries

    @property
    def event_bodies(self) -> list[str]:  # every event a worker received, raw (scans of what travelled)
        return self.delivery.event_bodies

    @property
    def wakeups_fired(self) -> int:
        return self.wakeups.fired

    @property
    def wakeup_log(self) -> list[tuple[float, dict[str, Any]]]:
        """(time.time() it fired, the detail it put on the bus): when each wait's timer ran out."""
        return self.wakeups.log

    def state(self, operation_id: str) -> Any:
        from functions.state import DynamoStateStore

        return DynamoStateStore(self.names.state_table, self.options.target_region).get(operation_id)

    def wait_for_step(self, operation_id: str, step: str, timeout: float = 60.0, poll: float = 0.1) -> Any:
        """Until the operation has recorded `step`'s result; its state then. AssertionError at the timeout."""
        state = _poll(lambda: self.state(operation_id), lambda s: step in s.results, timeout, poll)
        if state is None or step not in state.results:
            raise AssertionError(f"{operation_id} never finished {step}")
        return state

    def wait_for(self, operation_id: str, timeout: float = 60.0, poll: float = 0.1) -> Any:
        """Until the operation ends (completed, failed, aborted) or the timeout; returns its state."""
        return _poll(lambda: self.state(operation_id), _ended, timeout, poll)


def _simulator(runtime: LocalRuntime, profile: Any) -> RdsSimulator:
    """The RDS simulator installed on moto's backend: the profile's timing, the PostgreSQL stand-in."""
    assert runtime.postgres is not None
    options = runtime.options
    simulator = RdsSimulator(
        SimulatorOptions(
            durations=options.durations, send_events=not options.faults.drop_rds_events, profile=profile
        ),
        publish=runtime._publish_rds_event,
        stand_in=StandIn(runtime.postgres, runtime.database_for),
    )
    simulator.install()
    return simulator


def _existing_database(runtime: LocalRuntime, cluster_id: str) -> None:
    """The target's database as a real account has it before any refresh: there, answering the master user
    with the password in the master secret."""
    assert runtime.simulator is not None and runtime.simulator.stand_in is not None
    runtime.simulator.stand_in.load(cluster_id)
    runtime.simulator.stand_in.set_master_password(MASTER_USERNAME, runtime.master_password)


def operation_changes(runtime: LocalRuntime, state: Any) -> int:
    """The operation's changes so far, as the crash profile counts them: the mutating RDS calls RDS accepted
    on its resources (counted at moto's server) and the outcome notices that name it."""
    tally = runtime.moto.app.rds_calls.tally(operation_resources(state), exclude_key=PLUMBING_ACCESS_KEY)
    made = sum(count for (_, verdict), count in tally.items() if verdict == ACCEPTED)
    return made + runtime.notices(state.operation_id).total


def restore_requested_entry(
    bus: str, operation_id: str, target_date: date | str, overrides: dict[str, Any] | None
) -> dict[str, Any]:
    """The put-events entry of a RestoreRequested, validated as the trigger validates it."""
    from schemas.events import RestoreRequested

    detail: dict[str, Any] = {"operation_id": operation_id, "target_date": str(target_date)}
    if overrides:
        detail["overrides"] = overrides
    event = RestoreRequested.model_validate(detail)
    return {
        "Source": "aurora-restore",
        "DetailType": "RestoreRequested",
        "Detail": event.model_dump_json(),
        "EventBusName": bus,
    }


def _ended(state: Any) -> bool:
    return state.status in ("completed", "failed", "aborted") and not state.outbox


def _poll(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float, poll: float) -> Any:
    """`read()` until `done` holds for a state read or the timeout; the last state read (None: never any)."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = read()
        if state is not None and done(state):
            return state
        time.sleep(poll)
    return state


def _function_environment(options: RuntimeOptions) -> dict[str, str]:
    """What the functions in this process read besides `environment()`: timings and wake-up targets."""
    return {
        "POWERTOOLS_METRICS_DISABLED": "true",
        # A step's claim lasts as long as the function may run: short here, as local runs are quick.
        "AURORA_RESTORE_CLAIM_SECONDS": "20",
        # A running step unmoved this long without a claim lost its trigger: the reconciler re-drives it.
        "AURORA_RESTORE_STALL_SECONDS": str(options.stall_seconds),
        # Wake-ups through (moto's) EventBridge Scheduler, fired by the runtime's scheduler thread.
        "AURORA_RESTORE_SCHEDULER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/aurora-restore-scheduler",
        "AURORA_RESTORE_EVENT_BUS_ARN": (
            f"arn:aws:events:{options.target_region}:{ACCOUNT}:event-bus/aurora-restore-{options.environment}"
        ),
        "AURORA_RESTORE_WAKEUP_GRACE_SECONDS": str(options.wakeup_grace_seconds),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
        "AWS_MAX_ATTEMPTS": "",
    }


def _apply_environment(env: dict[str, str], saved: dict[str, str | None]) -> None:
    """Set each variable (an empty value unsets it), keeping in `saved` what it was before the first change."""
    for name, value in env.items():
        saved.setdefault(name, os.environ.get(name))
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)


def _restore_environment(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _reset_function_caches() -> None:
    """Forget the functions' clients, settings, parameters and services (the endpoint changed)."""
    from aws_lambda_powertools.utilities import parameters

    from functions import aws
    from functions.engine import services
    from functions.settings import get_settings

    aws.reset_clients()
    services.reset()
    get_settings.cache_clear()
    parameters.clear_caches()


def _plumbing_client(service: str, region: str, endpoint: str) -> Any:
    """A client of the runtime's own, signed with the plumbing key (never faulted)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=PLUMBING_ACCESS_KEY,
        aws_secret_access_key="testing",
        # one connection per worker's long poll and then some: shared by every thread
        config=Config(max_pool_connections=64),
    )
