"""The RDS simulator: RDS's timing and events on top of moto, which makes every resource available at once.

It wraps moto's in-process RDS backend so that a snapshot copy stays `copying`, a deletion `deleting`, a
restored cluster and a new instance `creating`, each for a configured duration, and then publishes the
events real RDS documents (none for a cluster-snapshot copy) to the default bus of the region. When a
restored cluster becomes available it loads the stand-in PostgreSQL database with the seed schema.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.rds import models as rds_models
from moto.rds.exceptions import InvalidDBClusterStateFault, InvalidDBInstanceStateFault, RDSClientError

from aurora_restore.local.postgres import SUPERUSER

SEED_SQL = Path(__file__).with_name("seed.sql")


@dataclass
class Durations:
    """Wall-clock seconds each simulated RDS operation takes."""

    copy: float = 3.0
    delete_instance: float = 1.5
    delete_cluster: float = 1.5
    restore: float = 2.5
    create_instance: float = 2.0

    def scaled(self, factor: float) -> Durations:
        return Durations(**{name: value * factor for name, value in self.__dict__.items()})


@dataclass
class SimulatedWork:
    """One simulated RDS operation: when it began and when it finished (wall clock, `time.time()`)."""

    action: str
    resource: str
    started: float
    due: float
    finished: float | None = None


@dataclass
class SimulatorOptions:
    durations: Durations = field(default_factory=Durations)
    send_events: bool = True
    event_filter: Callable[[dict[str, Any]], bool] | None = None  # False drops the event (fault profiles)


class Scheduler:
    """Runs callbacks at their due time on one background thread (no sleeping in any function)."""

    def __init__(self) -> None:
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._cv = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="rds-simulator", daemon=True)
        self._thread.start()
        self.errors: list[str] = []

    def after(self, seconds: float, callback: Callable[[], None]) -> None:
        with self._cv:
            heapq.heappush(self._queue, (time.monotonic() + seconds, next(self._counter), callback))
            self._cv.notify()

    def pending(self) -> int:
        with self._cv:
            return len(self._queue)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._stopped and (not self._queue or self._queue[0][0] > time.monotonic()):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cv.wait(timeout=timeout)
                if self._stopped:
                    return
                _, _, callback = heapq.heappop(self._queue)
            try:
                callback()
            except Exception as exc:  # noqa: BLE001 - a simulator fault must not kill the timeline
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()
        self._thread.join(timeout=5)


# The clusters' master user, as Aurora makes it: not a superuser, but CREATEROLE and CREATEDB (Aurora's
# master is rds_superuser's member with those). It owns each restored database and what the seed creates.
MASTER_USERNAME = "cluster_admin"
# The newest aurora-postgresql version moto's instance class offer data knows (its default, 12.7, is not in
# it), for the clusters the local runtime and the tests create: snapshot_check asks whether the writer's
# class is offered for the snapshot's version.
ENGINE_VERSION = "15.2"


class StandIn:
    """The real PostgreSQL server standing in for restored clusters: one database per target cluster.

    The steps connect as MASTER_USERNAME, not as the server's superuser: what only a superuser may do
    fails here as it would on Aurora.
    """

    def __init__(
        self, server: Any, database_for: Callable[[str], str], master: str = MASTER_USERNAME
    ) -> None:
        self.server = server
        self.database_for = database_for
        self.master = master
        self._lock = threading.Lock()

    def load(self, cluster_id: str) -> None:
        """A fresh restore: the database recreated with the seed schema, as a snapshot would bring it."""
        from psycopg2 import sql

        dbname, master = self.database_for(cluster_id), sql.Identifier(self.master)
        with self._lock:
            admin = self.server.connect("postgres")
            try:
                with admin.cursor() as cursor:
                    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.master,))
                    if cursor.fetchone() is None:  # its password is set as the cluster's (ModifyDBCluster)
                        cursor.execute(
                            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER CREATEDB CREATEROLE").format(master)
                        )
                    cursor.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
                    )
                    cursor.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), master)
                    )
            finally:
                admin.close()
            conn = self.server.connect(dbname)
            try:
                with conn.cursor() as cursor:
                    cursor.execute(sql.SQL("SET ROLE {}").format(master))
                    cursor.execute(SEED_SQL.read_text())
            finally:
                conn.close()

    def set_master_password(self, username: str, password: str) -> None:
        from psycopg2 import sql

        from functions.database import scram_verifier

        with self._lock:
            conn = self.server.connect("postgres")
            try:
                with conn.cursor() as cursor:
                    # As a verifier, as setup_db_users sends them: the server's log never sees the password.
                    cursor.execute(
                        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                            sql.Identifier(username), sql.Literal(scram_verifier(password))
                        )
                    )
            finally:
                conn.close()
        if username == SUPERUSER:  # the runtime's own connections use the superuser's password
            self.server.password = type(self.server.password)(password)


@dataclass(frozen=True)
class RdsEvent:
    """One kind of event RDS publishes: its detail-type, event id, message, categories and source type."""

    detail_type: str
    event_id: str
    message: str
    categories: tuple[str, ...]
    source_type: str

    def detail(self, arn: str, identifier: str) -> dict[str, Any]:
        return {
            "EventCategories": list(self.categories),
            "SourceType": self.source_type,
            "SourceArn": arn,
            "Date": datetime.now(UTC).isoformat(),
            "Message": self.message,
            "SourceIdentifier": f"rds:{identifier}",
            "EventID": self.event_id,
        }


INSTANCE_DELETED = RdsEvent(
    "RDS DB Instance Event", "RDS-EVENT-0003", "DB instance deleted", ("deletion",), "DB_INSTANCE"
)
INSTANCE_CREATED = RdsEvent(
    "RDS DB Instance Event", "RDS-EVENT-0005", "DB instance created", ("creation",), "DB_INSTANCE"
)
CLUSTER_CREATED = RdsEvent(
    "RDS DB Cluster Event", "RDS-EVENT-0170", "DB cluster created", ("creation",), "CLUSTER"
)
CLUSTER_DELETED = RdsEvent(
    "RDS DB Cluster Event", "RDS-EVENT-0171", "DB cluster deleted", ("deletion",), "CLUSTER"
)

# moto's RDS backend methods the simulator wraps, each with the simulator's method that takes its place.
WRAPPED = {
    "copy_db_cluster_snapshot": "_copy",
    "delete_db_instance": "_delete_instance",
    "delete_db_cluster": "_delete_cluster",
    "restore_db_cluster_from_snapshot": "_restore",
    "create_db_instance": "_create_instance",
    "modify_db_cluster": "_modify_cluster",
}


class RdsSimulator:
    """Installs itself on moto's RDS backend; `uninstall` puts moto back as it was."""

    def __init__(
        self,
        options: SimulatorOptions,
        publish: Callable[[str, dict[str, Any]], None],
        stand_in: StandIn | None,
    ):
        self.options = options
        self.publish = publish
        self.stand_in = stand_in
        self.scheduler = Scheduler()
        self.calls: Counter[tuple[str, str]] = Counter()  # (action, resource id) -> count of mutating calls
        self.events: list[dict[str, Any]] = []
        self.works: list[SimulatedWork] = []  # every timed operation, for the benchmark's timelines
        self._originals: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- installation -------------------------------------------------------------------------------------
    def install(self) -> None:
        backend = rds_models.RDSBackend
        self._originals = {name: getattr(backend, name) for name in WRAPPED}
        self._originals["cluster_status"] = rds_models.DBCluster.status
        # moto reports "creating" once and then "available"; the simulator decides when instead.
        rds_models.DBCluster.status = property(_status_get, _status_set)  # type: ignore[assignment,method-assign]
        for name, method in WRAPPED.items():
            setattr(backend, name, _in_place_of(getattr(self, method)))

    def uninstall(self) -> None:
        self.scheduler.stop()
        backend = rds_models.RDSBackend
        for name, original in self._originals.items():
            if name == "cluster_status":
                rds_models.DBCluster.status = original  # type: ignore[method-assign]
            else:
                setattr(backend, name, original)
        self._originals = {}

    def _after(self, action: str, resource: str, seconds: float, done: Callable[[], None]) -> None:
        """Schedule `done` and keep a record of the work with the time it actually finished."""
        now = time.time()
        work = SimulatedWork(action, resource, now, now + seconds)
        with self._lock:
            self.works.append(work)

        def finish() -> None:
            done()
            work.finished = time.time()

        self.scheduler.after(seconds, finish)

    def _count(self, action: str, resource: str) -> None:
        with self._lock:
            self.calls[(action, resource)] += 1

    # -- the wrapped calls --------------------------------------------------------------------------------
    def _copy(self, backend: Any, *args: Any, **kwargs: Any) -> Any:
        snapshot = self._originals["copy_db_cluster_snapshot"](backend, *args, **kwargs)
        self._count("CopyDBClusterSnapshot", snapshot.db_cluster_snapshot_identifier)
        snapshot.status = "copying"
        snapshot.percent_progress = 0

        def done() -> None:
            snapshot.status = "available"
            snapshot.percent_progress = 100
            # Aurora sends no event for a cluster-snapshot copy: nothing is published here.

        self._after(
            "CopyDBClusterSnapshot",
            snapshot.db_cluster_snapshot_identifier,
            self.options.durations.copy,
            done,
        )
        # PercentProgress grows as the copy runs, in whole percents as RDS reports it.
        for percent in range(1, 100):

            def advance(percent: int = percent) -> None:
                if snapshot.status == "copying":
                    snapshot.percent_progress = percent

            self.scheduler.after(self.options.durations.copy * percent / 100, advance)
        return snapshot

    def _delete_instance(self, backend: Any, *args: Any, **kwargs: Any) -> Any:
        instance_id = kwargs.get("db_instance_identifier") or args[0]
        instance = backend.databases.get(instance_id)
        if instance is None or getattr(instance, "deletion_protection", False):
            return self._originals["delete_db_instance"](backend, *args, **kwargs)
        if instance.status == "deleting":
            raise InvalidDBInstanceStateFault(f"Instance {instance_id} is already being deleted.")
        self._count("DeleteDBInstance", instance_id)
        instance.status = "deleting"

        def done() -> None:
            instance.status = "available"  # moto's own delete expects a live instance
            self._originals["delete_db_instance"](backend, instance_id, None, True)
            self._event(backend, INSTANCE_DELETED, instance.db_instance_arn, instance_id)

        self._after("DeleteDBInstance", instance_id, self.options.durations.delete_instance, done)
        return instance

    def _delete_cluster(self, backend: Any, *args: Any, **kwargs: Any) -> Any:
        cluster_id = kwargs.get("cluster_identifier") or args[0]
        cluster = backend.clusters.get(cluster_id)
        # Like RDS: refused while an instance is not yet `deleting`; accepted once every one is.
        live_members = [m for m in cluster.members if m.status != "deleting"] if cluster is not None else []
        if cluster is None or cluster.deletion_protection or live_members:
            return self._originals["delete_db_cluster"](backend, *args, **kwargs)
        if cluster._status == "deleting":
            raise InvalidDBClusterStateFault(f"DbCluster {cluster_id} is already being deleted.")
        self._count("DeleteDBCluster", cluster_id)
        cluster._status = "deleting"

        def done() -> None:
            backend.clusters.pop(cluster_id, None)
            # Like RDS's default, the automated backups go with the cluster.
            for name in [
                n for n, snap in backend.cluster_snapshots.items() if n.startswith(f"rds:{cluster_id}-")
            ]:
                backend.cluster_snapshots.pop(name, None)
            self._event(backend, CLUSTER_DELETED, cluster.db_cluster_arn, cluster_id)

        # The cluster goes after its instances: its own time runs from when the last of them is gone.
        member_ids = {m.db_instance_identifier for m in cluster.members}
        with self._lock:
            dues = [w.due for w in self.works if w.action == "DeleteDBInstance" and w.resource in member_ids]
        wait_for_members = max([due - time.time() for due in dues] + [0.0])
        self._after(
            "DeleteDBCluster", cluster_id, wait_for_members + self.options.durations.delete_cluster, done
        )
        return cluster

    def _restore(self, backend: Any, snapshot_id: str, overrides: dict[str, Any]) -> Any:
        wanted = overrides.get("db_cluster_identifier") or overrides.get("DBClusterIdentifier")
        if wanted and wanted in backend.clusters:
            # As RDS answers (moto would replace the cluster): the name is taken.
            raise RDSClientError("DBClusterAlreadyExistsFault", f"DB Cluster {wanted} already exists")
        cluster = self._originals["restore_db_cluster_from_snapshot"](backend, snapshot_id, overrides)
        cluster_id = cluster.db_cluster_identifier
        self._count("RestoreDBClusterFromSnapshot", cluster_id)
        cluster._status = "creating"
        loaded = load_while_creating(self.stand_in, cluster_id)

        def done() -> None:
            loaded()
            cluster._status = "available"
            self._event(backend, CLUSTER_CREATED, cluster.db_cluster_arn, cluster_id)

        self._after("RestoreDBClusterFromSnapshot", cluster_id, self.options.durations.restore, done)
        return cluster

    def _create_instance(self, backend: Any, db_kwargs: dict[str, Any]) -> Any:
        instance = self._originals["create_db_instance"](backend, db_kwargs)
        if not db_kwargs.get("db_cluster_identifier"):
            return instance
        instance_id = instance.db_instance_identifier
        self._count("CreateDBInstance", instance_id)
        instance.status = "creating"

        def done() -> None:
            instance.status = "available"
            self._event(backend, INSTANCE_CREATED, instance.db_instance_arn, instance_id)

        self._after("CreateDBInstance", instance_id, self.options.durations.create_instance, done)
        return instance

    def _modify_cluster(self, backend: Any, kwargs: dict[str, Any]) -> Any:
        password = kwargs.get("master_user_password")
        cluster_id = kwargs.get("db_cluster_identifier", "")
        if password:
            self._count("ModifyDBCluster:MasterUserPassword", cluster_id)
            cluster = backend.clusters.get(cluster_id)
            if self.stand_in is not None and cluster is not None:
                self.stand_in.set_master_password(cluster.master_username or self.stand_in.master, password)
        else:
            self._count("ModifyDBCluster", cluster_id)
        return self._originals["modify_db_cluster"](backend, kwargs)

    # -- events ---------------------------------------------------------------------------------------------
    def _event(self, backend: Any, kind: RdsEvent, arn: str, identifier: str) -> None:
        """Record the event and publish it to the region's default bus, unless the options drop it."""
        record = {
            "detail-type": kind.detail_type,
            "detail": kind.detail(arn, identifier),
            "region": backend.region_name,
        }
        with self._lock:
            self.events.append({**record, "sent": False})
        if not self.options.send_events:
            return
        if self.options.event_filter is not None and not self.options.event_filter(record):
            return
        self.events[-1]["sent"] = True
        self.publish(
            backend.region_name,
            {"Source": "aws.rds", "DetailType": kind.detail_type, "Detail": json.dumps(record["detail"])},
        )

    def mutating_calls(self, resources: set[str] | None = None) -> Counter[str]:
        """Mutating RDS calls by kind, optionally only those on the given resources."""
        counted: Counter[str] = Counter()
        with self._lock:
            for (action, resource), count in self.calls.items():
                if resources is None or resource in resources:
                    counted[action] += count
        return counted


def _status_get(cluster: Any) -> str:
    return str(cluster._status)


def _status_set(cluster: Any, value: str) -> None:
    cluster._status = value


def _in_place_of(method: Callable[..., Any]) -> Callable[..., Any]:
    """A backend method that calls the simulator's `method` with the backend and the call's arguments."""

    def wrapped(backend: Any, *args: Any, **kwargs: Any) -> Any:
        return method(backend, *args, **kwargs)

    return wrapped


def load_while_creating(stand_in: StandIn | None, cluster_id: str) -> Callable[[], None]:
    """Reload the stand-in database while the cluster is `creating`, as RDS brings the data in within the
    restore's own time: at the due time the cluster is ready at once, not a reload later. The returned
    callable waits for the load (when the restore is shorter than it) and raises what it raised."""
    if stand_in is None:
        return lambda: None
    failure: list[Exception] = []

    def load() -> None:
        try:
            stand_in.load(cluster_id)
        except Exception as exc:  # noqa: BLE001 - raised again when the restore is due
            failure.append(exc)

    thread = threading.Thread(target=load, name=f"stand-in-load-{cluster_id}", daemon=True)
    thread.start()

    def wait() -> None:
        thread.join()
        if failure:
            raise failure[0]

    return wait
