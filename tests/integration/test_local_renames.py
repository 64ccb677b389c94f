"""The RDS simulator's cluster renames, as a swap needs them: `renaming` then available, RDS-EVENT-0172,
instances and stand-in databases following their cluster, on moto in-process and a real PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from aurora_restore.local.rds_profiles import FAST
from aurora_restore.local.simulator import Durations, RdsSimulator, SimulatorOptions
from aurora_restore.local.standin import StandIn
from aurora_restore.local.world import TARGET_CLUSTER, WorldNames, WorldSeeder, rds_backend, writer_of
from functions.database.connection import target_endpoint
from schemas.rds_event_ids import CLUSTER_RENAMED

NAMES = WorldNames()
REGION = NAMES.target_region
NEW = "target-restored"  # the restored cluster beside the target, under a name of its own
OLD = "target-old"  # where the old target goes
RENAME = 0.4
DURATIONS = Durations(
    copy=0.3, delete_instance=0.3, delete_cluster=0.3, restore=0.3, create_instance=0.3, rename=RENAME
)


def _client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)


def rds() -> Any:
    return boto3.client("rds", region_name=REGION)


@dataclass
class Renames:
    simulator: RdsSimulator
    published: list[tuple[dict[str, Any], str]]  # (the put-events entry, its cluster's status then)
    postgres: Any
    database_for: Callable[[str], str]

    def rename(self, old: str, new: str) -> None:
        rds().modify_db_cluster(DBClusterIdentifier=old, NewDBClusterIdentifier=new, ApplyImmediately=True)

    def data_behind(self, cluster_id: str) -> str | None:
        """Whose data the database configured for `cluster_id` holds, reached through the endpoint seam as
        the steps reach it (the DSN names host and port only); None: no database answers there."""
        dsn = f"host={self.postgres.host} port={self.postgres.port}"
        endpoint = target_endpoint("unused", 5432, self.database_for(cluster_id), stand_in=dsn)
        try:
            conn = self.postgres.connect(endpoint.dbname)
        except Exception:  # noqa: BLE001 - the database is not there (renaming): nothing answers
            return None
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT owner FROM public.whose")
                return str(cursor.fetchone()[0])
        finally:
            conn.close()

    def renamed_events(self) -> list[tuple[dict[str, Any], str]]:
        return [(d, s) for d, s in self.published if d["EventID"] == CLUSTER_RENAMED]


@pytest.fixture
def renames(mocked_aws: None, postgres: Any) -> Iterator[Renames]:
    """The target and a restored cluster beside it, each with its writer and its own stand-in database
    holding data of its own, and the simulator with the fast profile's renames (0.4 s)."""
    seeder = WorldSeeder(_client, NAMES)
    seeder.network()
    seeder.target_cluster(TARGET_CLUSTER)
    seeder.target_cluster(NEW)
    seeder.settle()
    prefix = f"renames_{uuid.uuid4().hex[:8]}"
    names = {TARGET_CLUSTER: f"{prefix}_appdb"}

    def database_for(cluster_id: str) -> str:
        return names.get(cluster_id) or f"{prefix}_{cluster_id.replace('-', '_')}"

    stand_in = StandIn(postgres, database_for)
    for cluster_id, owner in ((TARGET_CLUSTER, "old"), (NEW, "new")):
        stand_in.load(cluster_id)
        _mark(postgres, database_for(cluster_id), owner)
    published: list[tuple[dict[str, Any], str]] = []

    def publish(region: str, entry: dict[str, Any]) -> None:
        detail = json.loads(entry["Detail"])
        identifier = detail["SourceIdentifier"].removeprefix("rds:")
        published.append((detail | {"detail-type": entry["DetailType"]}, _status(identifier)))

    simulator = RdsSimulator(SimulatorOptions(durations=DURATIONS, profile=FAST), publish, stand_in)
    simulator.install()
    try:
        yield Renames(simulator, published, postgres, database_for)
    finally:
        simulator.uninstall()
        _drop_databases(postgres, prefix)


def _mark(postgres: Any, dbname: str, owner: str) -> None:
    conn = postgres.connect(dbname)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE public.whose (owner text)")
        cursor.execute("INSERT INTO public.whose VALUES (%s)", (owner,))
    conn.close()


def _drop_databases(postgres: Any, prefix: str) -> None:
    admin = postgres.connect()
    with admin.cursor() as cursor:
        cursor.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s OR datname LIKE 'renaming\\_%%'",
            (f"{prefix}%",),
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _status(cluster_id: str) -> str:
    cluster = rds_backend(REGION).clusters.get(cluster_id)
    return "gone" if cluster is None else str(cluster._status)


def status(cluster_id: str) -> str:
    return str(rds().describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]["Status"])


def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def code_of(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    return str(refused.value.response["Error"]["Code"])


def cluster_of(instance_id: str) -> str:
    return str(
        rds().describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]["DBClusterIdentifier"]
    )


def members(cluster_id: str) -> list[str]:
    cluster = rds().describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]
    return [member["DBInstanceIdentifier"] for member in cluster["DBClusterMembers"]]


# -- the swap -----------------------------------------------------------------------------------------------
def test_a_swap_puts_the_restored_clusters_data_behind_the_targets_name(renames: Renames) -> None:
    # Given the target and a restored cluster beside it, each with data of its own
    assert renames.data_behind(TARGET_CLUSTER) == "old"
    assert renames.data_behind(NEW) == "new"

    # When the old target is renamed away and the restored cluster into its name, at once
    began = time.monotonic()
    renames.rename(TARGET_CLUSTER, OLD)
    renames.rename(NEW, TARGET_CLUSTER)

    # Then both are `renaming`, the old names are gone, and no database answers for a renaming cluster
    assert (status(OLD), status(TARGET_CLUSTER)) == ("renaming", "renaming")
    assert code_of(lambda: rds().describe_db_clusters(DBClusterIdentifier=NEW)) == "DBClusterNotFoundFault"
    assert renames.data_behind(TARGET_CLUSTER) is None
    assert renames.data_behind(OLD) is None
    # And after the rename's time both are available, each name reaching the data of the cluster holding it
    until(lambda: status(OLD) == "available" and status(TARGET_CLUSTER) == "available")
    assert time.monotonic() - began >= RENAME
    assert renames.data_behind(TARGET_CLUSTER) == "new"
    assert renames.data_behind(OLD) == "old"
    # And the instances followed their cluster
    assert (cluster_of(writer_of(TARGET_CLUSTER)), cluster_of(writer_of(NEW))) == (OLD, TARGET_CLUSTER)
    assert members(TARGET_CLUSTER) == [writer_of(NEW)]
    assert members(OLD) == [writer_of(TARGET_CLUSTER)]


def test_each_rename_announces_itself_once_with_the_new_name(renames: Renames) -> None:
    # When the old target is renamed away and the restored cluster into its name
    renames.rename(TARGET_CLUSTER, OLD)
    renames.rename(NEW, TARGET_CLUSTER)
    until(lambda: len(renames.renamed_events()) == 2)

    # Then one RDS-EVENT-0172 per rename, shaped as RDS sends it, once the renamed cluster is available
    events = sorted(renames.renamed_events(), key=lambda item: item[0]["SourceIdentifier"])
    assert [(d["SourceIdentifier"], d["Message"], s) for d, s in events] == [
        (f"rds:{TARGET_CLUSTER}", f"Renamed cluster from {NEW} to {TARGET_CLUSTER}", "available"),
        (f"rds:{OLD}", f"Renamed cluster from {TARGET_CLUSTER} to {OLD}", "available"),
    ]
    for detail, _ in events:
        assert detail["detail-type"] == "RDS DB Cluster Event"
        assert (detail["EventCategories"], detail["SourceType"]) == (["notification"], "CLUSTER")
        assert detail["SourceArn"].endswith(f":cluster:{detail['SourceIdentifier'].removeprefix('rds:')}")
    time.sleep(RENAME)
    assert len(renames.renamed_events()) == 2


# -- refusals and the way back ------------------------------------------------------------------------------
def test_a_rename_onto_a_taken_name_is_refused_and_changes_nothing(renames: Renames) -> None:
    # When the restored cluster is renamed into the target's name while the target still holds it
    taken = code_of(lambda: renames.rename(NEW, TARGET_CLUSTER))

    # Then RDS refuses it (whatever the profile), and both clusters and their data are as they were
    assert taken == "DBClusterAlreadyExistsFault"
    assert (status(TARGET_CLUSTER), status(NEW)) == ("available", "available")
    assert (renames.data_behind(TARGET_CLUSTER), renames.data_behind(NEW)) == ("old", "new")
    assert cluster_of(writer_of(NEW)) == NEW
    assert renames.renamed_events() == []


def test_a_renaming_cluster_refuses_another_rename(renames: Renames) -> None:
    # Given the target renaming
    renames.rename(TARGET_CLUSTER, OLD)

    # When it is renamed again before the first rename took effect
    refused = code_of(lambda: renames.rename(OLD, "target-other"))

    # Then RDS refuses it, and the first rename ends as it would have
    assert refused == "InvalidDBClusterStateFault"
    until(lambda: status(OLD) == "available")
    assert renames.data_behind(OLD) == "old"


def test_a_rename_without_apply_immediately_waits_for_the_maintenance_window(renames: Renames) -> None:
    # When the target is renamed without ApplyImmediately
    rds().modify_db_cluster(DBClusterIdentifier=TARGET_CLUSTER, NewDBClusterIdentifier=OLD)

    # Then the rename is pending (no local run reaches a maintenance window): the name and data unchanged
    time.sleep(RENAME + 0.2)
    assert status(TARGET_CLUSTER) == "available"
    assert code_of(lambda: rds().describe_db_clusters(DBClusterIdentifier=OLD)) == "DBClusterNotFoundFault"
    assert renames.data_behind(TARGET_CLUSTER) == "old"
    assert renames.renamed_events() == []


def test_a_swap_renamed_back_restores_the_target(renames: Renames) -> None:
    # Given a swap that took effect
    renames.rename(TARGET_CLUSTER, OLD)
    renames.rename(NEW, TARGET_CLUSTER)
    until(lambda: status(OLD) == "available" and status(TARGET_CLUSTER) == "available")

    # When it is renamed back: the restored cluster to its own name, the old target into the target's
    renames.rename(TARGET_CLUSTER, NEW)
    renames.rename(OLD, TARGET_CLUSTER)
    until(lambda: status(NEW) == "available" and status(TARGET_CLUSTER) == "available")

    # Then everything is where it began, each rename announced once
    assert (renames.data_behind(TARGET_CLUSTER), renames.data_behind(NEW)) == ("old", "new")
    assert (cluster_of(writer_of(TARGET_CLUSTER)), cluster_of(writer_of(NEW))) == (TARGET_CLUSTER, NEW)
    assert code_of(lambda: rds().describe_db_clusters(DBClusterIdentifier=OLD)) == "DBClusterNotFoundFault"
    until(lambda: len(renames.renamed_events()) == 4)


def test_a_rename_takes_the_profiles_time_over_the_durations(postgres: Any, renames: Renames) -> None:
    # Given a profile with renames of its own length (as the realistic one has)
    renames.simulator.options.profile = replace(FAST, rename=1.0)

    # When the target is renamed
    renames.rename(TARGET_CLUSTER, OLD)

    # Then it is still renaming after the durations' 0.4 s, and available after the profile's 1 s
    time.sleep(RENAME + 0.2)
    assert status(OLD) == "renaming"
    until(lambda: status(OLD) == "available")
