"""What goes wrong on purpose in the local runtime: the fault profiles, their AWS faults and crashes."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aurora_restore.local.motoserver import Fault, request_access_key

# The runtime's own clients (seeding, workers' polling, RDS events, checks) sign with this key, the functions
# and the CLI with the environment's: injected AWS faults hit only the latter.
PLUMBING_ACCESS_KEY = "testing-runtime"

# The steps whose runs call RDS's mutating APIs; the crash profile crashes them after such a call.
RDS_MUTATING_STEPS = frozenset(
    {"copy_snapshot", "delete_rds", "restore_snapshot", "check_restore_status", "swap_clusters"}
)
# The step whose run sends the outcome notice; the crash profile crashes it after the send, before the run
# is recorded: the run is made again, and what the notice reaches twice is what such a crash costs.
SENDING_STEPS = frozenset({"notify_completion"})
# The step that masks the restored data; the crash profile crashes it after a run that masked rows (committed
# in the database with their progress), before the run is recorded: the re-run must mask no row twice.
MASKING_STEPS = frozenset({"mask_data"})


@dataclass
class FaultProfile:
    """What goes wrong on purpose. The default profile is a well-behaved AWS."""

    name: str = "none"
    duplicate_deliveries: bool = False  # every event delivered twice
    max_delivery_delay: float = 0.0  # each delivery held back up to this many seconds: late and out of order
    drop_rds_events: bool = False  # RDS events are never delivered: the reconciler must carry the waits
    aws_failure_rate: float = 0.0  # share of AWS calls answered with throttling or a transient error
    # Each of these steps crashes once per operation after its AWS calls and before its state write: an
    # RDS-mutating step right after the run that made its mutating call, notify_completion right after the
    # run that sent the notice, any other step on its first run.
    crash_steps: frozenset[str] = frozenset()
    seed: int = 7


class SimulatedCrash(RuntimeError):
    """A fault profile's crash: the function died after its AWS calls and before writing state."""


class FaultDraws:
    """The random decisions of the current profile: how late a delivery is, which AWS call fails.

    `profile` reads the profile in force when asked, so a switched profile applies at once.
    """

    def __init__(self, profile: Callable[[], FaultProfile]) -> None:
        self.profile = profile
        self._random = random.Random(profile().seed)

    def reseed(self, seed: int) -> None:
        self._random = random.Random(seed)

    def delivery_delay(self) -> float:
        """Seconds to hold the next delivery back (0 unless the profile delays deliveries)."""
        longest = self.profile().max_delivery_delay
        return self._random.uniform(0, longest) if longest else 0.0

    def aws_fault(self, service: str, action: str) -> Fault | None:
        """Throttle or fail a share of the functions' AWS calls (never the runtime's own plumbing)."""
        rate = self.profile().aws_failure_rate
        if rate <= 0 or request_access_key() == PLUMBING_ACCESS_KEY:
            return None
        if self._random.random() >= rate:
            return None
        if self._random.random() < 0.5:
            return Fault("ThrottlingException" if service != "rds" else "Throttling", "Rate exceeded")
        return Fault("ServiceUnavailable", "Service is unavailable, try again", status=503)


class CrashProfile:
    """The crash profile: a listed step dies once per operation after its AWS calls, before its state write.

    Always in place and reading the profile in force, so switching profiles can turn it on later. An
    RDS-mutating step crashes only after a run that made a mutating call, a sending step only after a run
    that sent; `mutations` counts an operation's changes of both kinds.
    """

    def __init__(self, profile: Callable[[], FaultProfile], mutations: Callable[[Any], int]) -> None:
        self.profile = profile
        self.mutations = mutations
        self._crashed: set[tuple[str, str]] = set()
        self._mutations_seen: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def crashes(self) -> set[tuple[str, str]]:
        """(operation, step) pairs crashed so far."""
        with self._lock:
            return set(self._crashed)

    def before_commit(self, step: str, state: Any) -> None:
        """Raise SimulatedCrash when this run of `step` is the one to crash."""
        if step in self.profile().crash_steps and state.status != "failed" and self._crash_due(state, step):
            raise SimulatedCrash(f"{step} crashed after its AWS calls, before writing state")

    def after_commit(self, state: Any) -> None:
        """Note the operation's changes so far: the next crash needs one more."""
        if not self.profile().crash_steps:
            return
        made = self.mutations(state)
        with self._lock:
            self._mutations_seen[state.operation_id] = max(
                made, self._mutations_seen.get(state.operation_id, 0)
            )

    def _crash_due(self, state: Any, step: str) -> bool:
        """Crash this run? Once per (operation, step); an RDS-mutating or sending step only after a change."""
        key = (state.operation_id, step)
        with self._lock:
            if key in self._crashed:
                return False
            if step in MASKING_STEPS and not _masked(state):
                return False
            if step in RDS_MUTATING_STEPS | SENDING_STEPS:
                made = self.mutations(state)
                if made <= self._mutations_seen.get(state.operation_id, 0):
                    return False
            self._crashed.add(key)
        return True


def _masked(state: Any) -> bool:
    """The run being recorded masked rows (the progress it records counts some)."""
    return any(row.get("rows_done") for row in state.outputs.get("masking_progress") or [])


def install_crash_hook(profile: CrashProfile) -> Callable[[], None]:
    """Put the crash profile around every commit of a transition (the engine's writer seam); returns what
    takes it away again."""
    from functions.engine import writer

    def crashing_commit(step: Any, state: Any, events: list[Any], commit: Callable[[], bool]) -> bool:
        if step is not None:
            profile.before_commit(step.value, state)
        published = commit()
        profile.after_commit(state)
        return published

    writer.intercept(crashing_commit)
    return lambda: writer.intercept(None)


def operation_resources(state: Any) -> set[str]:
    """The RDS resources one operation's mutating calls touch: its target cluster, writer and copy; under the
    swap strategy also the cluster restored beside the target, its writer and the old target's new name."""
    cluster = state.config.get("target_cluster_id") or state.outputs.get("target_cluster_id")
    resources: set[str] = set()
    if cluster:
        from functions.steps.cluster import writer_id

        resources |= {cluster, writer_id(cluster), f"{cluster}-instance-1"}
        if state.strategy == "swap":
            from functions.identifiers import swap_names

            new_id, old_id = swap_names(cluster, state.operation_id)
            resources |= {new_id, writer_id(new_id), old_id}
    if state.outputs.get("target_snapshot"):
        resources.add(str(state.outputs["target_snapshot"]))
    return resources
