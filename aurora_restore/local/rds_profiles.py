"""The RDS simulator's profiles: `fast`, RDS as kind as moto, and `realistic`, RDS on a bad day.

The fast profile is what the local runtime has always run: each operation takes its set time, its event is
on the bus the moment the status changes, a copy's progress grows evenly, and whatever moto accepts goes.
The realistic profile adds what RDS is documented or reported to do (`RdsProfile` cites each), and the
fixtures as a real account has them (the existing target's database answers its master secret). Its draws
come from one seeded generator per simulator, so a run can be repeated.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, replace
from typing import Any

from moto.rds.exceptions import RDSClientError


@dataclass
class Durations:
    """Wall-clock seconds each simulated RDS operation takes."""

    copy: float = 3.0
    delete_instance: float = 1.5
    delete_cluster: float = 1.5
    restore: float = 2.5
    create_instance: float = 2.0
    # `renaming` after ModifyDBCluster's NewDBClusterIdentifier (the fast profile's; the realistic one has
    # its own, RdsProfile.rename). Not part of a replace's restore, so not of `total`.
    rename: float = 1.0

    def scaled(self, factor: float) -> Durations:
        return Durations(**{name: value * factor for name, value in self.__dict__.items()})

    @property
    def total(self) -> float:
        """The restore path's operations together (a rename is none of them): the pace of these durations."""
        return sum(value for name, value in self.__dict__.items() if name != "rename")


# The default Durations stand for AWS at 0.2 wall seconds per AWS minute (their 10.5 s for the 53 minutes the
# benchmark's AWS durations add up to): the realistic profile's times below are at that pace, 1/300.
Span = tuple[float, float]  # (shortest, longest) wall seconds, drawn uniformly
# One AWS minute at that pace exactly (10.5 s / 53): for a time compared with a target in AWS seconds.
AWS_MINUTE = Durations().total / 53


@dataclass(frozen=True)
class RdsProfile:
    """How the simulated RDS behaves beyond moto. Times are wall seconds at the default Durations' pace;
    `scaled` stretches them as Durations.scaled does. The defaults are the fast profile: none of it.

    - Events late, early and twice. "Amazon RDS emits events on a best effort basis. We recommend that you
      avoid writing programs that depend on the order or existence of notification events, because they
      might be out of sequence or missing."
      (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/working-with-events.html). Late: a
      service's deliveries to EventBridge are retried for up to 24 hours
      (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-delivery-level.html), so
      seconds usually, minutes sometimes. Early: "DB instance created" comes while the instance is still
      `backing-up` or `configuring-enhanced-monitoring` (crossplane-contrib/provider-aws#760: "an RDS instance
      changes directly from creating to backing-up"; hashicorp/terraform#8707). Twice: EventBridge sends an
      event again when it could not confirm a delivery
      (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html), the same detail,
      Date included.
    - A copy's PercentProgress neither even nor steady: a cross-region copy request may wait in a queue,
      and "No progress information is displayed about copy requests while they are in the queue"
      (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_CopySnapshot.html); after that
      it moves at more than one rate and stalls for a while part way.
    - The cluster busy after its master password is set: `resetting-master-credentials` for minutes
      (hashicorp/terraform-provider-aws#2791, seen right after a restore from a snapshot), and while it is
      not `available` RDS refuses CreateDBInstance and ModifyDBCluster with InvalidDBClusterStateFault ("You
      can create DB instances only after the RestoreDBClusterFromSnapshot operation has completed and the DB
      cluster is available": https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBClusterFromSnapshot.html;
      a cluster made by CreateDBCluster takes its instances while `creating`, as consoles ask for both at once).
    - Renames take time: the old name is gone at once (ansible/ansible#7054), the new one answers `renaming`
      until it takes effect "in about two minutes"; an existing name cannot be taken
      (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/multi-az-db-cluster-rename.html: "The new DNS
      name for the renamed Multi-AZ DB cluster becomes effective in about two minutes. The renamed Multi-AZ
      DB cluster isn't available until the new name becomes effective"; the Aurora guide gives no figure of
      its own, so the Multi-AZ cluster's is taken). Without ApplyImmediately the rename waits for the
      maintenance window, which no local run reaches (renames.py).
    - RDS's limits: cluster, instance and cluster-snapshot identifiers (CopyDBClusterSnapshot's target
      included) 1 to 63 letters, digits or hyphens, a letter first, no hyphen last or twice in a row; a
      final snapshot's up to 255 (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html,
      API_DeleteDBCluster.html, API_CreateDBInstance.html); MasterUserPassword 8 to 41 printable ASCII
      characters but "/", '"', "@" and space (API_ModifyDBCluster.html). A restore that names no
      EngineVersion gets the region's default version, not the snapshot's (API_RestoreDBClusterFromSnapshot.html;
      the default here is aurora-postgresql's at the time of writing, not re-checked).
    """

    name: str = "fast"
    event_delay: Span = (0.0, 0.0)  # every event this late
    late_event_chance: float = 0.0  # and sometimes, instead, minutes late
    late_event_delay: Span = (0.0, 0.0)
    early_event_chance: float = 0.0  # sent this long before the status it announces
    early_event_lead: Span = (0.0, 0.0)
    duplicate_event_chance: float = 0.0  # sent again this long after the first
    duplicate_event_gap: Span = (0.0, 0.0)
    uneven_copy: bool = False
    credentials_reset: float = 0.0  # seconds `resetting-master-credentials` after a master password change
    rename: float = 0.0  # seconds `renaming`; 0: Durations.rename
    refuse_when_busy: bool = False  # CreateDBInstance and ModifyDBCluster only on an available cluster
    enforce_limits: bool = False
    default_engine_version: str | None = None  # a restore's without EngineVersion; None: the snapshot's
    existing_target_database: bool = False  # the stand-in has it from the start, with the secret's password
    seed: int = 22

    def scaled(self, factor: float) -> RdsProfile:
        """The same profile with every time multiplied by `factor`."""
        spans = ("event_delay", "late_event_delay", "early_event_lead", "duplicate_event_gap")
        changes: dict[str, Any] = {name: tuple(v * factor for v in getattr(self, name)) for name in spans}
        changes |= {name: getattr(self, name) * factor for name in ("credentials_reset", "rename")}
        return replace(self, **changes)


FAST = RdsProfile()
REALISTIC = RdsProfile(
    name="realistic",
    event_delay=(0.01, 0.1),  # 3-30 AWS seconds
    late_event_chance=0.2,
    late_event_delay=(0.2, 0.8),  # 1-4 AWS minutes
    early_event_chance=0.25,
    early_event_lead=(0.05, 0.3),  # 15-90 AWS seconds
    duplicate_event_chance=0.25,
    duplicate_event_gap=(0.01, 0.2),
    uneven_copy=True,
    credentials_reset=0.4,  # 2 AWS minutes
    rename=2 * AWS_MINUTE,  # "about two minutes" (above), exactly: the swap's downtime is measured on it
    refuse_when_busy=True,
    enforce_limits=True,
    default_engine_version="16.6",
    existing_target_database=True,
)
PROFILES = {profile.name: profile for profile in (FAST, REALISTIC)}


def rds_profile(name: str, durations: Durations) -> RdsProfile:
    """The named profile at the pace of `durations` (the default Durations' pace: as defined)."""
    if name not in PROFILES:
        raise ValueError(f"unknown RDS profile {name!r}: one of {', '.join(PROFILES)}")
    return PROFILES[name].scaled(durations.total / Durations().total)


@dataclass(frozen=True)
class EventPlan:
    """When an event goes: `lead` seconds before the status it announces changes (0: at the change, or
    after), then once per delay, each that long after it went (a second delay: sent twice)."""

    lead: float = 0.0
    delays: tuple[float, ...] = (0.0,)


ON_TIME = EventPlan()
IDENTIFIER = re.compile(r"[A-Za-z](?:-?[A-Za-z0-9])*")
PASSWORD = re.compile(r"[!#-.0-?A-~]{8,41}")  # printable ASCII but space, '"', '/' and '@'


class RdsBehaviour:
    """The profile's draws and checks, for one simulator: what the realistic profile does beyond moto."""

    def __init__(self, profile: RdsProfile) -> None:
        self.profile = profile
        self._random = random.Random(profile.seed)
        self._lock = threading.Lock()

    def _draw(self, span: Span) -> float:
        with self._lock:
            return self._random.uniform(*span) if span[1] > 0 else 0.0

    def _happens(self, chance: float) -> bool:
        with self._lock:
            return chance > 0 and self._random.random() < chance

    def event_plan(self) -> EventPlan:
        profile = self.profile
        if not (profile.event_delay[1] or profile.late_event_chance or profile.early_event_chance):
            if not profile.duplicate_event_chance:
                return ON_TIME
        lead = self._draw(profile.early_event_lead) if self._happens(profile.early_event_chance) else 0.0
        late = self._happens(profile.late_event_chance)
        first = 0.0 if lead else self._draw(profile.late_event_delay if late else profile.event_delay)
        delays = [first]
        if self._happens(profile.duplicate_event_chance):
            delays.append(first + self._draw(profile.duplicate_event_gap))
        return EventPlan(lead, tuple(delays))

    def copy_progress(self, duration: float) -> list[tuple[float, int]]:
        """(seconds after the copy began, PercentProgress from then on), for each whole percent below 100."""
        if not self.profile.uneven_copy:
            return [(duration * percent / 100, percent) for percent in range(1, 100)]
        queued = duration * self._draw((0.05, 0.2))
        stall = duration * self._draw((0.1, 0.25))
        stall_at = int(self._draw((30, 70)))
        moving = duration - queued - stall
        before = moving * self._draw((0.2, 0.8))  # the time to reach stall_at, out of proportion to it
        after = moving - before
        points = [(queued + before * percent / stall_at, percent) for percent in range(1, stall_at + 1)]
        resumes = queued + before + stall
        points += [
            (resumes + after * (percent - stall_at) / (100 - stall_at), percent)
            for percent in range(stall_at + 1, 100)
        ]
        return points

    # -- limits and refusals ----------------------------------------------------------------------------------
    def check_identifier(self, parameter: str, value: str | None, limit: int = 63) -> None:
        """RDS's rule for the identifier passed as `parameter` (InvalidParameterValue), when enforced."""
        if not self.profile.enforce_limits or value is None:
            return
        if len(value) > limit:
            raise RDSClientError(
                "InvalidParameterValue",
                f"The parameter {parameter} is not a valid identifier because it is longer than {limit} characters.",
            )
        if not IDENTIFIER.fullmatch(value):
            raise RDSClientError(
                "InvalidParameterValue",
                f"The parameter {parameter} is not a valid identifier. Identifiers must begin with a letter; "
                "must contain only ASCII letters, digits, and hyphens; and must not end with a hyphen or "
                "contain two consecutive hyphens.",
            )

    def check_password(self, password: str | None) -> None:
        """MasterUserPassword's limits, when enforced; the message never holds the password."""
        if self.profile.enforce_limits and password is not None and not PASSWORD.fullmatch(password):
            raise RDSClientError(
                "InvalidParameterValue",
                "The parameter MasterUserPassword is not a valid password: it must be 8 to 41 printable ASCII "
                "characters other than '/', '\"', '@' and space.",
            )

    def check_available(self, cluster: Any, action: str, also: tuple[str, ...] = ()) -> None:
        """A cluster neither available nor in a status of `also` refuses `action`
        (InvalidDBClusterStateFault), when the profile says so."""
        if not self.profile.refuse_when_busy or cluster is None:
            return
        status = str(cluster._status)
        if status != "available" and status not in also:
            raise RDSClientError(
                "InvalidDBClusterStateFault",
                f"DB cluster {cluster.db_cluster_identifier} is {status}: {action} needs it available.",
            )

    def check_modify(self, backend: Any, cluster: Any, kwargs: dict[str, Any]) -> None:
        """ModifyDBCluster's refusals: a busy cluster, a password or new name out of RDS's limits, or a new
        name already taken (moto would put the cluster in that one's place)."""
        self.check_available(cluster, "ModifyDBCluster")
        self.check_password(kwargs.get("master_user_password"))
        new_name = kwargs.get("new_db_cluster_identifier")
        self.check_identifier("NewDBClusterIdentifier", new_name)
        if self.profile.enforce_limits and new_name and new_name.lower() in backend.clusters:
            raise RDSClientError("DBClusterAlreadyExistsFault", f"DB Cluster {new_name} already exists")
