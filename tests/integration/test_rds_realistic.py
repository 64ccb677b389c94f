"""The RDS simulator's realistic profile, one behaviour at a time, on moto in-process; and the fast profile,
which adds none of them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from aurora_restore.arguments import RDS_PROFILES
from aurora_restore.local.rds_profiles import FAST, PROFILES, REALISTIC, RdsBehaviour, rds_profile
from aurora_restore.local.simulator import ENGINE_VERSION, Durations, RdsSimulator, SimulatorOptions
from aurora_restore.local.world import (
    TARGET_CLUSTER,
    WorldNames,
    WorldSeeder,
    rds_backend,
    writer_of,
)

NAMES = WorldNames()
REGION = NAMES.target_region
SHORT = Durations(copy=0.6, delete_instance=0.3, delete_cluster=0.3, restore=0.3, create_instance=0.3)
# Only the behaviour under test: every other one as the fast profile has it.
QUIET = replace(FAST, name="under-test")


def rds() -> Any:
    return boto3.client("rds", region_name=REGION)


def _client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)


@pytest.fixture
def seeded(mocked_aws: None) -> None:
    """The source with a snapshot, and the existing target cluster with its writer, all available."""
    seeder = WorldSeeder(_client, NAMES)
    seeder.network()
    seeder.source([date(2023, 6, 1)])
    seeder.target_cluster(TARGET_CLUSTER)
    seeder.settle()


Published = list[tuple[float, dict[str, Any], str | None]]  # (when, the put-events entry, the status then)


@pytest.fixture
def simulate(seeded: None) -> Iterator[Callable[..., tuple[RdsSimulator, Published]]]:
    """Install a simulator with the given profile; every event it publishes is kept with the status its
    resource had at that moment."""
    installed: list[RdsSimulator] = []

    def install(profile: Any, durations: Durations = SHORT) -> tuple[RdsSimulator, Published]:
        published: Published = []

        def publish(region: str, entry: dict[str, Any]) -> None:
            published.append((time.time(), entry, _status_of(entry)))

        simulator = RdsSimulator(SimulatorOptions(durations=durations, profile=profile), publish, None)
        simulator.install()
        installed.append(simulator)
        return simulator, published

    yield install
    for simulator in installed:
        simulator.uninstall()


def _status_of(entry: dict[str, Any]) -> str | None:
    import json

    identifier = json.loads(entry["Detail"])["SourceIdentifier"].removeprefix("rds:")
    backend = rds_backend(REGION)
    if identifier in backend.databases:
        return str(backend.databases[identifier].status)
    if identifier in backend.clusters:
        return str(backend.clusters[identifier]._status)
    return None


def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def code_of(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    return str(refused.value.response["Error"]["Code"])


def new_writer(name: str = "new-writer") -> dict[str, Any]:
    return rds().create_db_instance(
        DBInstanceIdentifier=name,
        DBClusterIdentifier=TARGET_CLUSTER,
        DBInstanceClass="db.r6g.large",
        Engine="aurora-postgresql",
    )


# -- events -------------------------------------------------------------------------------------------------
def test_an_event_can_come_late(simulate: Callable[..., tuple[RdsSimulator, Published]]) -> None:
    # Given RDS's events 0.5 s late
    simulator, published = simulate(replace(QUIET, event_delay=(0.5, 0.5)))

    # When the target's writer is deleted
    rds().delete_db_instance(DBInstanceIdentifier=writer_of(TARGET_CLUSTER), SkipFinalSnapshot=True)
    until(lambda: bool(published))

    # Then its event came after the instance was gone, that much later
    deleted = next(w for w in simulator.works if w.action == "DeleteDBInstance")
    sent_at, entry, status = published[0]
    assert entry["DetailType"] == "RDS DB Instance Event" and status is None
    assert deleted.finished is not None and sent_at - deleted.finished >= 0.4


def test_an_event_can_come_before_the_status_it_announces(
    simulate: Callable[..., tuple[RdsSimulator, Published]],
) -> None:
    # Given RDS's events always 0.2 s early
    _, published = simulate(replace(QUIET, early_event_chance=1.0, early_event_lead=(0.2, 0.2)))

    # When an instance is created
    new_writer()
    until(lambda: rds_backend(REGION).databases["new-writer"].status == "available")

    # Then "DB instance created" came while the instance was still configuring, not yet available
    [(_, entry, status)] = published
    assert '"RDS-EVENT-0005"' in entry["Detail"]
    assert status == "configuring-enhanced-monitoring"


def test_an_event_can_come_twice(simulate: Callable[..., tuple[RdsSimulator, Published]]) -> None:
    # Given RDS's events always sent again 0.1 s later
    simulator, published = simulate(
        replace(QUIET, duplicate_event_chance=1.0, duplicate_event_gap=(0.1, 0.1))
    )

    # When an instance is created
    new_writer()
    until(lambda: len(published) == 2)

    # Then the same event came twice, Date and all, the second one marked as a repeat in the record
    assert published[0][1] == published[1][1]
    assert [event.get("repeated", False) for event in simulator.events] == [False, True]


# -- the copy -----------------------------------------------------------------------------------------------
def test_a_copy_sits_at_zero_then_moves_unevenly_and_stalls() -> None:
    # Given the realistic profile's plan for a 100-second copy
    points = RdsBehaviour(REALISTIC).copy_progress(100.0)

    # Then it shows no progress for a while (queued), stalls part way, and moves at more than one rate
    times = [at for at, _ in points]
    assert [percent for _, percent in points] == list(range(1, 100))
    assert times == sorted(times) and times[-1] < 100
    assert times[0] >= 5
    gaps = [
        (later - earlier, percent) for (earlier, percent), (later, _) in zip(points, points[1:], strict=False)
    ]
    longest, stalled_at = max(gaps)
    assert longest >= 10 and 1 < stalled_at < 99
    before = times[stalled_at - 1] - times[0]
    after = times[-1] - times[stalled_at]
    rates = (stalled_at - 1) / before, (99 - stalled_at - 1) / after
    assert abs(rates[0] - rates[1]) > 0.01 * max(rates)


def test_the_fast_profile_copies_evenly() -> None:
    assert RdsBehaviour(FAST).copy_progress(3.0) == [(3.0 * p / 100, p) for p in range(1, 100)]


def test_a_realistic_copy_reads_zero_at_first(
    simulate: Callable[..., tuple[RdsSimulator, Published]],
) -> None:
    # Given the realistic copy progress
    simulate(replace(QUIET, uneven_copy=True))
    client = rds()
    snapshot = client.create_db_cluster_snapshot(
        DBClusterIdentifier=TARGET_CLUSTER, DBClusterSnapshotIdentifier="target-now"
    )["DBClusterSnapshot"]

    # When it is copied
    client.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=snapshot["DBClusterSnapshotArn"],
        TargetDBClusterSnapshotIdentifier="target-now-copy",
    )

    # Then at first it reads copying at 0%, and in the end available at 100%
    def described() -> dict[str, Any]:
        return client.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier="target-now-copy")[
            "DBClusterSnapshots"
        ][0]

    first = described()
    assert (first["Status"], first["PercentProgress"]) == ("copying", 0)
    until(lambda: described()["Status"] == "available")
    assert described()["PercentProgress"] == 100


# -- a busy cluster, renames --------------------------------------------------------------------------------
def test_a_master_password_change_leaves_the_cluster_busy_refusing_a_writer(
    simulate: Callable[..., tuple[RdsSimulator, Published]],
) -> None:
    # Given a cluster busy for 0.5 s after its master password is set, refusing changes meanwhile
    simulator, _ = simulate(replace(QUIET, credentials_reset=0.5, refuse_when_busy=True))
    client = rds()

    # When its master password is set, and a writer asked for at once
    client.modify_db_cluster(
        DBClusterIdentifier=TARGET_CLUSTER, MasterUserPassword="a-new-password-1", ApplyImmediately=True
    )
    status = client.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]["Status"]
    refused = code_of(new_writer)

    # Then the cluster is resetting its master credentials, and the writer is refused for now
    assert status == "resetting-master-credentials"
    assert refused == "InvalidDBClusterStateFault"
    assert simulator.refused == {"create_db_instance: InvalidDBClusterStateFault": 1}
    assert "CreateDBInstance" not in simulator.mutating_calls()
    # And once it is available again the writer is accepted
    until(lambda: rds_backend(REGION).clusters[TARGET_CLUSTER]._status == "available")
    assert new_writer()["DBInstance"]["DBInstanceStatus"] == "creating"


def test_a_restored_cluster_takes_its_writer_only_once_available(
    simulate: Callable[..., tuple[RdsSimulator, Published]],
) -> None:
    # Given a cluster that refuses changes while busy, a snapshot, and a cluster just created
    simulate(replace(QUIET, refuse_when_busy=True))
    WorldSeeder(_client, NAMES).target_cluster("created-target")  # its writer asked for while `creating`
    client = rds()
    client.create_db_cluster_snapshot(DBClusterIdentifier=TARGET_CLUSTER, DBClusterSnapshotIdentifier="snap")

    # When a cluster is restored and its writer asked for at once
    client.restore_db_cluster_from_snapshot(
        DBClusterIdentifier="restored", SnapshotIdentifier="snap", Engine="aurora-postgresql"
    )

    # Then RDS refuses the writer until the restore is done
    def writer() -> Any:
        return client.create_db_instance(
            DBInstanceIdentifier="restored-writer",
            DBClusterIdentifier="restored",
            DBInstanceClass="db.r6g.large",
            Engine="aurora-postgresql",
        )

    assert code_of(writer) == "InvalidDBClusterStateFault"
    until(lambda: rds_backend(REGION).clusters["restored"]._status == "available")
    assert writer()["DBInstance"]["DBInstanceStatus"] == "creating"


def test_a_rename_takes_time(simulate: Callable[..., tuple[RdsSimulator, Published]]) -> None:
    # Given renames that take 0.5 s
    simulate(replace(QUIET, rename=0.5, enforce_limits=True))
    client = rds()

    # When the target is renamed, applied at once
    client.modify_db_cluster(
        DBClusterIdentifier=TARGET_CLUSTER, NewDBClusterIdentifier="renamed-target", ApplyImmediately=True
    )

    # Then the old name is gone at once, and the new one is renaming, then available, its writer with it
    assert code_of(lambda: client.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)) == (
        "DBClusterNotFoundFault"
    )
    renamed = client.describe_db_clusters(DBClusterIdentifier="renamed-target")["DBClusters"][0]
    assert renamed["Status"] == "renaming"
    until(lambda: rds_backend(REGION).clusters["renamed-target"]._status == "available")
    members = client.describe_db_clusters(DBClusterIdentifier="renamed-target")["DBClusters"][0]
    assert [m["DBInstanceIdentifier"] for m in members["DBClusterMembers"]] == [writer_of(TARGET_CLUSTER)]


def test_a_rename_waits_for_apply_immediately_and_refuses_a_taken_name(
    simulate: Callable[..., tuple[RdsSimulator, Published]],
) -> None:
    # Given renames that take time, and a second cluster
    simulate(replace(QUIET, rename=0.2, enforce_limits=True))
    WorldSeeder(_client, NAMES).target_cluster("second-target")
    client = rds()

    # When the target is renamed without ApplyImmediately, then onto the second one's name
    client.modify_db_cluster(DBClusterIdentifier=TARGET_CLUSTER, NewDBClusterIdentifier="later-name")
    taken = code_of(
        lambda: client.modify_db_cluster(
            DBClusterIdentifier=TARGET_CLUSTER, NewDBClusterIdentifier="second-target", ApplyImmediately=True
        )
    )

    # Then the first waits for the maintenance window (the name is unchanged) and the second is refused
    time.sleep(0.4)
    assert client.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]["Status"] == (
        "available"
    )
    assert taken == "DBClusterAlreadyExistsFault"
    assert "second-target" in rds_backend(REGION).clusters


# -- RDS's limits -------------------------------------------------------------------------------------------
LONG = "a" * 64


@pytest.mark.parametrize(
    ("what", "call"),
    [
        (
            "a 64-character copy",
            lambda c, arn: c.copy_db_cluster_snapshot(
                SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier=LONG
            ),
        ),
        (
            "a 64-character restored cluster",
            lambda c, arn: c.restore_db_cluster_from_snapshot(
                DBClusterIdentifier=LONG, SnapshotIdentifier="snap", Engine="aurora-postgresql"
            ),
        ),
        (
            "a 256-character final snapshot",
            lambda c, arn: c.delete_db_cluster(
                DBClusterIdentifier=TARGET_CLUSTER,
                FinalDBSnapshotIdentifier="a" * 256,
                SkipFinalSnapshot=False,
            ),
        ),
        (
            "a new name with two hyphens in a row",
            lambda c, arn: c.modify_db_cluster(
                DBClusterIdentifier=TARGET_CLUSTER, NewDBClusterIdentifier="a--b", ApplyImmediately=True
            ),
        ),
        (
            "a 42-character master password",
            lambda c, arn: c.modify_db_cluster(
                DBClusterIdentifier=TARGET_CLUSTER, MasterUserPassword="p" * 42, ApplyImmediately=True
            ),
        ),
    ],
)
def test_rds_limits_are_enforced(
    simulate: Callable[..., tuple[RdsSimulator, Published]], what: str, call: Callable[[Any, str], Any]
) -> None:
    # Given RDS's limits enforced, and a snapshot of the target
    simulate(replace(QUIET, enforce_limits=True))
    client = rds()
    arn = client.create_db_cluster_snapshot(
        DBClusterIdentifier=TARGET_CLUSTER, DBClusterSnapshotIdentifier="snap"
    )["DBClusterSnapshot"]["DBClusterSnapshotArn"]

    # When the call goes beyond them
    with pytest.raises(ClientError) as refused:
        call(client, arn)

    # Then RDS refuses it as invalid, saying which parameter, never echoing a password
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidParameterValue", what
    assert "p" * 42 not in error["Message"]
    assert TARGET_CLUSTER in rds_backend(REGION).clusters


def test_the_limits_let_the_longest_names_through(
    simulate: Callable[..., tuple[RdsSimulator, Published]],
) -> None:
    # Given RDS's limits enforced
    simulate(replace(QUIET, enforce_limits=True))
    client = rds()
    arn = client.create_db_cluster_snapshot(
        DBClusterIdentifier=TARGET_CLUSTER, DBClusterSnapshotIdentifier="snap"
    )["DBClusterSnapshot"]["DBClusterSnapshotArn"]

    # When a copy is named with 63 characters and a password has 41
    copy = client.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier="c" * 63
    )
    client.modify_db_cluster(
        DBClusterIdentifier=TARGET_CLUSTER, MasterUserPassword="p" * 41, ApplyImmediately=True
    )

    # Then both are accepted
    assert copy["DBClusterSnapshot"]["DBClusterSnapshotIdentifier"] == "c" * 63


def test_a_restore_without_an_engine_version_gets_the_regions_default(
    simulate: Callable[..., tuple[RdsSimulator, Published]],
) -> None:
    # Given the region's default engine version, other than the snapshot's
    simulate(replace(QUIET, default_engine_version="16.6"))
    client = rds()
    client.create_db_cluster_snapshot(DBClusterIdentifier=TARGET_CLUSTER, DBClusterSnapshotIdentifier="snap")

    # When one restore names no version and another names the snapshot's
    def restore(name: str, **version: str) -> str:
        answer = client.restore_db_cluster_from_snapshot(
            DBClusterIdentifier=name, SnapshotIdentifier="snap", Engine="aurora-postgresql", **version
        )
        return str(answer["DBCluster"]["EngineVersion"])

    # Then the first runs the region's default, the second the version it named
    assert restore("unversioned") == "16.6"
    assert restore("versioned", EngineVersion=ENGINE_VERSION) == ENGINE_VERSION


# -- the fast profile ----------------------------------------------------------------------------------------
def test_the_fast_profile_is_as_kind_as_moto(simulate: Callable[..., tuple[RdsSimulator, Published]]) -> None:
    # Given the fast profile
    simulator, published = simulate(FAST)
    client = rds()
    arn = client.create_db_cluster_snapshot(
        DBClusterIdentifier=TARGET_CLUSTER, DBClusterSnapshotIdentifier="snap"
    )["DBClusterSnapshot"]["DBClusterSnapshotArn"]

    # When the master password is set and a writer asked for at once, a long copy made, and a restore
    # naming no version
    client.modify_db_cluster(
        DBClusterIdentifier=TARGET_CLUSTER, MasterUserPassword="p" * 42, ApplyImmediately=True
    )
    new_writer()
    client.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=arn, TargetDBClusterSnapshotIdentifier=LONG
    )
    restored = client.restore_db_cluster_from_snapshot(
        DBClusterIdentifier="restored", SnapshotIdentifier="snap", Engine="aurora-postgresql"
    )["DBCluster"]
    until(lambda: len(published) == 2)

    # Then nothing is refused, the restore keeps the snapshot's version, and each event comes once, as
    # its status changes
    assert not simulator.refused
    assert restored["EngineVersion"] == ENGINE_VERSION
    assert sorted(status or "" for _, _, status in published) == ["available", "available"]
    time.sleep(0.3)
    assert len(published) == 2


def test_the_profiles_by_name_and_pace() -> None:
    # The command line offers every profile, and a profile runs at the pace of the durations
    assert RDS_PROFILES == tuple(PROFILES)
    assert rds_profile("fast", Durations().scaled(0.5)) == FAST
    halved = rds_profile("realistic", Durations().scaled(0.5))
    assert halved.credentials_reset == pytest.approx(REALISTIC.credentials_reset / 2)
    assert halved.late_event_delay == pytest.approx(tuple(v / 2 for v in REALISTIC.late_event_delay))
    with pytest.raises(ValueError, match="fast, realistic"):
        rds_profile("slow", Durations())


@pytest.mark.parametrize("command", [["demo"], ["chaos"], ["local", "serve", "--env-file", "x.env"]])
def test_the_local_commands_take_rds_fast_by_default(command: list[str]) -> None:
    from aurora_restore import cli

    parser = cli.build_parser()
    assert parser.parse_args(command).rds == "fast"
    assert parser.parse_args([*command, "--rds", "realistic"]).rds == "realistic"
    with pytest.raises(SystemExit):
        parser.parse_args([*command, "--rds", "slow"])
