"""The RDS simulator: RDS's timing and events on top of moto, which makes every resource available at once.

It wraps moto's in-process RDS backend so that a snapshot copy stays `copying`, a deletion `deleting`, a
restored cluster and a new instance `creating`, each for a configured duration, and then publishes the
events real RDS documents (none for a cluster-snapshot copy) to the default bus of the region. When a
restored cluster becomes available it loads the stand-in PostgreSQL database with the seed schema; a
renamed cluster takes its database along (renames.py). Its
profile (rds_profiles.py) says how: `fast`, as kind as moto, or `realistic`, RDS on a bad day.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.rds import models as rds_models
from moto.rds.exceptions import InvalidDBClusterStateFault, InvalidDBInstanceStateFault, RDSClientError

from aurora_restore.local import account_quotas
from aurora_restore.local.rds_events import (
    CLUSTER_CREATED,
    CLUSTER_DELETED,
    INSTANCE_CREATED,
    INSTANCE_DELETED,
    Announcement,
    EventPublisher,
)
from aurora_restore.local.rds_profiles import FAST, Durations, EventPlan, RdsBehaviour, RdsProfile
from aurora_restore.local.renames import Renamer
from aurora_restore.local.standin import MASTER_USERNAME as MASTER_USERNAME  # re-exported
from aurora_restore.local.standin import SEED_SQL as SEED_SQL  # re-exported (the integration tests)
from aurora_restore.local.standin import StandIn, load_while_creating


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
    profile: RdsProfile = FAST
    # DescribeAccountAttributes' maxima (account_quotas.py); a test may lower one on a running runtime.
    account_quotas: dict[str, int] = field(default_factory=lambda: dict(account_quotas.DEFAULT_MAXIMA))


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


# The newest aurora-postgresql version moto's instance class offer data knows (its default, 12.7, is not in
# it), for the clusters the local runtime and the tests create: snapshot_check asks whether the writer's
# class is offered for the snapshot's version.
ENGINE_VERSION = "15.2"


class TimedWorks:
    """The simulated operations under way: each one's end scheduled, announced by its event as the profile
    plans it, and recorded with when it began and actually finished."""

    def __init__(self, scheduler: Scheduler, behaviour: RdsBehaviour) -> None:
        self.scheduler = scheduler
        self.behaviour = behaviour
        self.announce: Callable[[Announcement, tuple[float, ...]], None] = lambda _a, _d: None
        self.works: list[SimulatedWork] = []
        self._lock = threading.Lock()

    def record(self, action: str, resource: str, seconds: float) -> SimulatedWork:
        now = time.time()
        work = SimulatedWork(action, resource, now, now + seconds)
        with self._lock:
            self.works.append(work)
        return work

    def dues(self, action: str, resources: set[str]) -> list[float]:
        with self._lock:
            return [w.due for w in self.works if w.action == action and w.resource in resources]

    def after(
        self,
        action: str,
        resource: str,
        seconds: float,
        done: Callable[[], None],
        announce: Announcement | None = None,
    ) -> None:
        """Schedule `done` and the event announcing it. The profile may send the event before `done` (the
        interim status showing meanwhile), late, or twice."""
        work = self.record(action, resource, seconds)
        plan = self.behaviour.event_plan() if announce is not None else EventPlan()
        lead = min(plan.lead, seconds)

        def finish() -> None:
            done()
            if announce is not None and not lead:
                self.announce(announce, plan.delays)
            work.finished = time.time()

        if announce is not None and lead:

            def early() -> None:
                if announce.interim is not None:
                    announce.interim()
                self.announce(announce, plan.delays)

            self.scheduler.after(seconds - lead, early)
        self.scheduler.after(seconds, finish)


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
        self.stand_in = stand_in
        self.behaviour = RdsBehaviour(options.profile)
        self.scheduler = Scheduler()
        self.calls: Counter[tuple[str, str]] = Counter()  # (action, resource id) -> count of mutating calls
        self.refused: Counter[str] = Counter()  # calls the profile's RDS refused (busy, out of its limits)
        self.timed = TimedWorks(self.scheduler, self.behaviour)
        self.publisher = EventPublisher(options, publish, self.scheduler.after, self.timed.record)
        self.timed.announce = self.publisher.announce
        self._originals: dict[str, Any] = {}
        self._uninstall_quotas: Callable[[], None] = lambda: None
        self._restored: list[Any] = []  # the clusters restored from a snapshot (moto's objects)
        self.renamer = Renamer(
            lambda backend, kwargs: self._originals["modify_db_cluster"](backend, kwargs),
            self.timed.after,
            stand_in,
            lambda: self.options.profile.rename or self.options.durations.rename,
        )
        self._lock = threading.Lock()

    # -- installation -------------------------------------------------------------------------------------
    def install(self) -> None:
        backend = rds_models.RDSBackend
        self._originals = {name: getattr(backend, name) for name in WRAPPED}
        self._originals["cluster_status"] = rds_models.DBCluster.status
        # moto reports "creating" once and then "available"; the simulator decides when instead.
        rds_models.DBCluster.status = property(_status_get, _status_set)  # type: ignore[assignment,method-assign]
        for name, method in WRAPPED.items():
            setattr(backend, name, _in_place_of(getattr(self, method), name, self._refusal))
        self._uninstall_quotas = account_quotas.install(lambda: self.options.account_quotas)

    def uninstall(self) -> None:
        self.scheduler.stop()
        self._uninstall_quotas()
        backend = rds_models.RDSBackend
        for name, original in self._originals.items():
            if name == "cluster_status":
                rds_models.DBCluster.status = original  # type: ignore[method-assign]
            else:
                setattr(backend, name, original)
        self._originals = {}

    def _refusal(self, name: str, code: str) -> None:
        with self._lock:
            self.refused[f"{name}: {code}"] += 1

    def _count(self, action: str, resource: str) -> None:
        with self._lock:
            self.calls[(action, resource)] += 1

    # -- the wrapped calls --------------------------------------------------------------------------------
    def _copy(self, backend: Any, *args: Any, **kwargs: Any) -> Any:
        target = kwargs.get("target_db_cluster_snapshot_identifier")
        self.behaviour.check_identifier("TargetDBClusterSnapshotIdentifier", target)
        snapshot = self._originals["copy_db_cluster_snapshot"](backend, *args, **kwargs)
        self._count("CopyDBClusterSnapshot", snapshot.db_cluster_snapshot_identifier)
        snapshot.status = "copying"
        snapshot.percent_progress = 0

        def done() -> None:
            snapshot.status = "available"
            snapshot.percent_progress = 100
            # Aurora sends no event for a cluster-snapshot copy: nothing is published here.

        duration = self.options.durations.copy
        self.timed.after("CopyDBClusterSnapshot", snapshot.db_cluster_snapshot_identifier, duration, done)
        # PercentProgress grows as the copy runs, in whole percents as RDS reports it.
        for offset, percent in self.behaviour.copy_progress(duration):

            def advance(percent: int = percent) -> None:
                if snapshot.status == "copying":
                    snapshot.percent_progress = percent

            self.scheduler.after(offset, advance)
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

        announce = Announcement(backend, INSTANCE_DELETED, instance.db_instance_arn, instance_id)
        self.timed.after(
            "DeleteDBInstance", instance_id, self.options.durations.delete_instance, done, announce
        )
        return instance

    def _delete_cluster(self, backend: Any, *args: Any, **kwargs: Any) -> Any:
        cluster_id = kwargs.get("cluster_identifier") or args[0]
        self.behaviour.check_identifier("FinalDBSnapshotIdentifier", kwargs.get("snapshot_name"), limit=255)
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

        # The cluster goes after its instances: its own time runs from when the last of them is gone.
        member_ids = {m.db_instance_identifier for m in cluster.members}
        dues = self.timed.dues("DeleteDBInstance", member_ids)
        wait_for_members = max([due - time.time() for due in dues] + [0.0])
        seconds = wait_for_members + self.options.durations.delete_cluster
        announce = Announcement(backend, CLUSTER_DELETED, cluster.db_cluster_arn, cluster_id)
        self.timed.after("DeleteDBCluster", cluster_id, seconds, done, announce)
        return cluster

    def _restore(self, backend: Any, snapshot_id: str, overrides: dict[str, Any]) -> Any:
        wanted = overrides.get("db_cluster_identifier") or overrides.get("DBClusterIdentifier")
        self.behaviour.check_identifier("DBClusterIdentifier", wanted)
        if wanted and wanted in backend.clusters:
            # As RDS answers (moto would replace the cluster): the name is taken.
            raise RDSClientError("DBClusterAlreadyExistsFault", f"DB Cluster {wanted} already exists")
        default_version = self.options.profile.default_engine_version
        if default_version and not overrides.get("engine_version"):
            overrides = {**overrides, "engine_version": default_version}  # the region's, not the snapshot's
        cluster = self._originals["restore_db_cluster_from_snapshot"](backend, snapshot_id, overrides)
        cluster_id = cluster.db_cluster_identifier
        self._count("RestoreDBClusterFromSnapshot", cluster_id)
        cluster._status = "creating"
        self._restored.append(cluster)
        loaded = load_while_creating(self.stand_in, cluster_id)

        def done() -> None:
            loaded()
            cluster._status = "available"

        def backing_up() -> None:
            cluster._status = "backing-up"

        announce = Announcement(backend, CLUSTER_CREATED, cluster.db_cluster_arn, cluster_id, backing_up)
        self.timed.after(
            "RestoreDBClusterFromSnapshot", cluster_id, self.options.durations.restore, done, announce
        )
        return cluster

    def _create_instance(self, backend: Any, db_kwargs: dict[str, Any]) -> Any:
        if db_kwargs.get("db_cluster_identifier"):
            self.behaviour.check_identifier("DBInstanceIdentifier", db_kwargs.get("db_instance_identifier"))
            cluster = backend.clusters.get(db_kwargs["db_cluster_identifier"])
            # A created cluster takes its instances while `creating`; a restored one only once available.
            creating_ok = () if any(cluster is c for c in self._restored) else ("creating",)
            self.behaviour.check_available(cluster, "CreateDBInstance", also=creating_ok)
        instance = self._originals["create_db_instance"](backend, db_kwargs)
        if not db_kwargs.get("db_cluster_identifier"):
            return instance
        instance_id = instance.db_instance_identifier
        self._count("CreateDBInstance", instance_id)
        instance.status = "creating"

        def done() -> None:
            instance.status = "available"

        def configuring() -> None:
            instance.status = "configuring-enhanced-monitoring"

        announce = Announcement(backend, INSTANCE_CREATED, instance.db_instance_arn, instance_id, configuring)
        seconds = self.options.durations.create_instance
        self.timed.after("CreateDBInstance", instance_id, seconds, done, announce)
        return instance

    def _modify_cluster(self, backend: Any, kwargs: dict[str, Any]) -> Any:
        password = kwargs.get("master_user_password")
        cluster_id = kwargs.get("db_cluster_identifier", "")
        cluster = backend.clusters.get(cluster_id)
        self.behaviour.check_modify(backend, cluster, kwargs)
        renamed = kwargs.pop("new_db_cluster_identifier", None)
        self.renamer.check(backend, cluster, renamed)
        if password:
            self._count("ModifyDBCluster:MasterUserPassword", cluster_id)
            if self.stand_in is not None and cluster is not None:
                self.stand_in.set_master_password(cluster.master_username or self.stand_in.master, password)
        else:
            self._count("ModifyDBCluster", cluster_id)
        answer = self._originals["modify_db_cluster"](backend, kwargs)
        if password and cluster is not None and self.options.profile.credentials_reset:
            self._busy(cluster, "resetting-master-credentials", self.options.profile.credentials_reset)
        if renamed and cluster is not None and kwargs.get("apply_immediately"):
            # Without ApplyImmediately the rename waits for the maintenance window: not in a local run.
            self.renamer.rename(backend, cluster, renamed)
        return answer

    def _busy(self, cluster: Any, status: str, seconds: float) -> None:
        """The cluster shows `status` for `seconds`, then is available again."""
        cluster._status = status

        def done() -> None:
            if cluster._status == status:
                cluster._status = "available"

        self.timed.after(f"ModifyDBCluster:{status}", cluster.db_cluster_identifier, seconds, done)

    @property
    def works(self) -> list[SimulatedWork]:
        """Every timed operation, for the benchmark's timelines."""
        return self.timed.works

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every RDS event, sent or dropped, in the order they went."""
        return self.publisher.events

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


def _in_place_of(
    method: Callable[..., Any], name: str, refused: Callable[[str, str], None]
) -> Callable[..., Any]:
    """A backend method that calls the simulator's `method` with the backend and the call's arguments;
    each refusal (an RDS error) is told to `refused` with the method's name and the error's code."""

    def wrapped(backend: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(backend, *args, **kwargs)
        except RDSClientError as exc:
            refused(name, exc.code)
            raise

    return wrapped
