"""How moto's server records a mutating RDS call (aurora_restore.local.rds_calls): its kind and resource from
the request, and its answer read as accepted, a duplicate RDS refused, a refusal for now, or an injected fault."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from aurora_restore.local.rds_calls import INJECTED, RdsCall, RdsCallLog, mutating_call, refusal


def form(**params: str) -> bytes:
    return urlencode(params).encode()


def test_a_read_is_not_recorded_and_a_change_names_its_resource() -> None:
    assert mutating_call(form(DBClusterIdentifier="t"), "DescribeDBClusters") is None
    create = form(DBInstanceIdentifier="t-writer", DBClusterIdentifier="t")
    assert mutating_call(create, "CreateDBInstance") == ("CreateDBInstance", "t-writer")
    copy = form(
        SourceDBClusterSnapshotIdentifier="arn:aws:rds:x:1:cluster-snapshot:s",
        TargetDBClusterSnapshotIdentifier="s-copy",
    )
    assert mutating_call(copy, "CopyDBClusterSnapshot") == ("CopyDBClusterSnapshot", "s-copy")
    tag = form(ResourceName="arn:aws:rds:us-west-2:123456789012:cluster:t")
    assert mutating_call(tag, "AddTagsToResource") == ("AddTagsToResource", "t")


def test_a_master_password_change_is_its_own_kind_and_its_value_is_kept_nowhere() -> None:
    body = form(DBClusterIdentifier="t", MasterUserPassword="s3cret-value", ApplyImmediately="true")
    recorded = mutating_call(body, "ModifyDBCluster")
    assert recorded == ("ModifyDBCluster:MasterUserPassword", "t")
    assert "s3cret-value" not in repr(recorded)


def test_a_rename_is_its_own_kind_naming_the_cluster_renamed() -> None:
    # Given ModifyDBCluster renaming cluster t (the swap strategy's switch), When the server records it
    body = form(DBClusterIdentifier="t", NewDBClusterIdentifier="t-old-abc123", ApplyImmediately="true")
    # Then it is a rename, on the cluster it renamed, apart from other changes to a cluster
    assert mutating_call(body, "ModifyDBCluster") == ("ModifyDBCluster:NewDBClusterIdentifier", "t")
    assert mutating_call(form(DBClusterIdentifier="t"), "ModifyDBCluster") == ("ModifyDBCluster", "t")


@pytest.mark.parametrize(
    ("kind", "status", "body", "verdict"),
    [
        ("CreateDBInstance", "200 OK", b"<CreateDBInstanceResponse/>", "accepted"),
        (
            "CopyDBClusterSnapshot",
            "400 Bad",
            b"<Code>DBClusterSnapshotAlreadyExistsFault</Code>",
            "duplicate",
        ),
        ("RestoreDBClusterFromSnapshot", "400 Bad", b"<Code>DBClusterAlreadyExistsFault</Code>", "duplicate"),
        (
            "DeleteDBCluster",
            "400 Bad",
            b"<Code>InvalidDBClusterStateFault</Code><Message>DbCluster t is already being deleted.</Message>",
            "duplicate",
        ),
        ("DeleteDBInstance", "404 Not Found", b"<Code>DBInstanceNotFound</Code>", "duplicate"),
        (
            "CreateDBInstance",
            "400 Bad",
            b"<Code>InvalidDBClusterStateFault</Code><Message>cluster is resetting-master-credentials</Message>",
            "refused",
        ),
        (
            "RestoreDBClusterFromSnapshot",
            "404 Not Found",
            b"<Code>DBClusterSnapshotNotFoundFault</Code>",
            "refused",
        ),
    ],
)
def test_an_answer_reads_as_accepted_duplicate_or_refused(
    kind: str, status: str, body: bytes, verdict: str
) -> None:
    outcome, message = refusal(status, body)
    assert RdsCall(kind, "t", outcome, message, "testing").verdict == verdict


def test_the_log_tallies_by_kind_and_verdict_leaving_out_one_signer() -> None:
    log = RdsCallLog()
    log.add(RdsCall("CreateDBInstance", "t-writer", "accepted", "", "testing"))
    log.add(RdsCall("CreateDBInstance", "t-writer", "DBInstanceAlreadyExists", "", "testing"))
    log.add(RdsCall("CreateDBInstance", "t-writer", INJECTED, "Throttling", "testing"))
    log.add(RdsCall("CreateDBInstance", "t-instance-1", "accepted", "", "runtime"))
    log.add(RdsCall("DeleteDBCluster", "other", "accepted", "", "testing"))

    assert log.tally({"t-writer", "t-instance-1"}, exclude_key="runtime") == {
        ("CreateDBInstance", "accepted"): 1,
        ("CreateDBInstance", "duplicate"): 1,
        ("CreateDBInstance", "injected"): 1,
    }
