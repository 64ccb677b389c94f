"""Cluster renames in the RDS simulator: `renaming` for a while, then available under the new name with its
instances and its stand-in database, announced by RDS-EVENT-0172.

What is modelled, as RDS documents a rename (rds_profiles.RdsProfile cites it):
- ModifyDBCluster with NewDBClusterIdentifier and ApplyImmediately: the old name is gone at once (moto's
  rename), the cluster answers under the new one in status `renaming` for the rename's duration
  (Durations.rename, or the profile's own), then `available`, and RDS-EVENT-0172 goes to the default bus
  ("Renamed cluster from X to Y", source identifier the new name), timed as the profile plans events.
- The cluster's instances name the new cluster identifier at once (moto leaves them on the old name).
- The stand-in database follows the cluster: its PostgreSQL database is parked under a name no endpoint
  reaches while the cluster is `renaming` (the old DNS name deleted, the new one not yet effective), its
  sessions ended, then takes the new name's database name. So AURORA_RESTORE_PG_DSN, host and port only,
  with the configured database name, reaches whichever cluster holds that name now, as a cluster endpoint
  follows its identifier on AWS.
- Refused, with nothing changed: a name another cluster holds (DBClusterAlreadyExistsFault, whatever the
  profile) and a cluster already `renaming` (InvalidDBClusterStateFault).
- Without ApplyImmediately the rename is pending until the maintenance window, which no local run
  reaches: the call is accepted and the cluster keeps its name.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from moto.rds.exceptions import RDSClientError

from aurora_restore.local.rds_events import Announcement, cluster_renamed
from aurora_restore.local.standin import PARKED, StandIn

RENAMING = "renaming"


class Renamer:
    """Renames clusters for the simulator: `modify` is moto's own ModifyDBCluster, `after` schedules the
    end of a timed operation as TimedWorks.after does, `seconds` says how long a rename takes."""

    def __init__(
        self,
        modify: Callable[[Any, dict[str, Any]], Any],
        after: Callable[..., None],
        stand_in: StandIn | None,
        seconds: Callable[[], float],
    ) -> None:
        self.modify = modify
        self.after = after
        self.stand_in = stand_in
        self.seconds = seconds

    def check(self, backend: Any, cluster: Any, new_id: str | None) -> None:
        """RDS's refusals of a rename, before anything changes."""
        if not new_id or cluster is None:
            return
        if new_id.lower() in backend.clusters and backend.clusters[new_id.lower()] is not cluster:
            raise RDSClientError("DBClusterAlreadyExistsFault", f"DB Cluster {new_id} already exists")
        if cluster._status == RENAMING:
            raise RDSClientError(
                "InvalidDBClusterStateFault",
                f"DB cluster {cluster.db_cluster_identifier} is renaming: ModifyDBCluster needs it available.",
            )

    def rename(self, backend: Any, cluster: Any, new_id: str) -> None:
        """The old name gone at once, the new one `renaming` until the rename takes effect."""
        old_id = cluster.db_cluster_identifier
        members = list(cluster._members)  # moto finds them by the cluster's name: theirs follows it
        parked = self._park(old_id)
        self.modify(backend, {"db_cluster_identifier": old_id, "new_db_cluster_identifier": new_id})
        for member in members:
            member.db_cluster_identifier = cluster.db_cluster_identifier
        cluster._status = RENAMING

        def done() -> None:
            if parked is not None and self.stand_in is not None:
                self.stand_in.move(parked, cluster.db_cluster_identifier, parked=True)
            if cluster._status == RENAMING:
                cluster._status = "available"

        new_name = cluster.db_cluster_identifier
        announce = Announcement(backend, cluster_renamed(old_id, new_name), cluster.db_cluster_arn, new_name)
        self.after(f"ModifyDBCluster:{RENAMING}", new_name, self.seconds(), done, announce)

    def _park(self, cluster_id: str) -> str | None:
        """The cluster's database out of every endpoint's reach while it is renaming; None: it has none."""
        if self.stand_in is None:
            return None
        parked = f"{PARKED}{uuid.uuid4().hex[:16]}"  # no other run's, on a shared server
        return parked if self.stand_in.move(cluster_id, parked) else None
