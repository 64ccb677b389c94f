"""The RDS event types and IDs we act on, apart from the models that parse the events (schemas.rds_events):
the route table and the steps name them without building those models."""

from __future__ import annotations

CLUSTER_EVENT = "RDS DB Cluster Event"
INSTANCE_EVENT = "RDS DB Instance Event"
CLUSTER_SNAPSHOT_EVENT = "RDS DB Cluster Snapshot Event"

# What each event type is about. The resource index keys an identifier by its kind: a cluster, an instance
# and a snapshot may share a name (a target cluster named `x-writer` and target x's writer instance).
CLUSTER = "cluster"
INSTANCE = "instance"
CLUSTER_SNAPSHOT = "cluster-snapshot"
RESOURCE_KIND = {CLUSTER_EVENT: CLUSTER, INSTANCE_EVENT: INSTANCE, CLUSTER_SNAPSHOT_EVENT: CLUSTER_SNAPSHOT}
# A snapshot copy is `<snapshot>-copy` (functions.identifiers.copy_name): the route table matches its
# snapshot events on that suffix.
COPY_SUFFIX = "-copy"

# Event IDs we act on (design.md, "Facts about AWS").
CLUSTER_CREATED = "RDS-EVENT-0170"
CLUSTER_DELETED = "RDS-EVENT-0171"
CLUSTER_RENAMED = "RDS-EVENT-0172"  # "Renamed cluster from X to Y": a rename has taken effect
CLUSTER_CREATE_FAILED = ("RDS-EVENT-0354", "RDS-EVENT-0355")
INSTANCE_CREATED = "RDS-EVENT-0005"
INSTANCE_DELETED = "RDS-EVENT-0003"
INSTANCE_FAILED = ("RDS-EVENT-0353", "RDS-EVENT-0035", "RDS-EVENT-0036")
FAILURE_EVENT_IDS = frozenset(CLUSTER_CREATE_FAILED + INSTANCE_FAILED)
