"""The RDS adapter: the calls our steps make, with ClientErrors turned into our own errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from botocore.exceptions import ClientError

from functions import aws
from functions.errors import AwsError, NotFound
from functions.identifiers import as_identifier as as_identifier  # where callers have found it

NOT_FOUND_CODES = frozenset(
    {
        "DBClusterNotFoundFault",
        "DBInstanceNotFound",
        "DBInstanceNotFoundFault",
        "DBClusterSnapshotNotFoundFault",
        "DBSubnetGroupNotFoundFault",
        "DBParameterGroupNotFound",
        "DBParameterGroupNotFoundFault",
    }
)
# A concurrent duplicate of the same step got there first: the deletion is under way, which is the goal.
DELETE_UNDER_WAY = frozenset(
    {"InvalidDBInstanceState", "InvalidDBInstanceStateFault", "InvalidDBClusterStateFault"}
)


# Pages of one listing read before giving up on it.
MAX_PAGES = 20
# A change RDS refuses while the cluster is busy with another (backing up, modifying, an instance being
# created or deleted, resetting its master credentials): asked again at the next check instead of failing
# the operation.
BUSY = frozenset({"InvalidDBClusterStateFault"})
INSTANCE_EXISTS = frozenset({"DBInstanceAlreadyExists", "DBInstanceAlreadyExistsFault"})


def rds_error(region: str, what: str, exc: ClientError) -> NotFound | AwsError:
    """Our error for an RDS (or EC2, KMS) refusal."""
    code = aws.error_code(exc)
    if code in NOT_FOUND_CODES:
        return NotFound(f"{what}: {code}")
    message = exc.response.get("Error", {}).get("Message", "")
    return AwsError(f"{what} failed in {region}: {code}: {message}", retryable=aws.is_transient(exc))


def _describe_one(
    adapter: RdsAdapter, what: str, call: Callable[..., Any], key: str, **kwargs: Any
) -> dict[str, Any] | None:
    """The one resource a describe call names, or None when it does not exist."""
    try:
        found = adapter._call(what, call, **kwargs)
    except NotFound:
        return None
    items = found.get(key, [])
    return dict(items[0]) if items else None


class RdsAdapter:
    """One region's RDS. Methods return plain dicts as RDS describes them, or None when absent."""

    def __init__(self, region: str) -> None:
        self.region = region

    @property
    def _client(self) -> Any:
        return aws.client("rds", self.region)

    def _call(
        self, what: str, call: Callable[..., Any], tolerate: frozenset[str] = frozenset(), **kwargs: Any
    ) -> Any:
        """Call RDS. Error codes in `tolerate` mean the change is already under way: None is returned."""
        try:
            return call(**kwargs)
        except ClientError as exc:
            if aws.error_code(exc) in tolerate:
                return None
            raise rds_error(self.region, what, exc) from exc

    def subnet_group(self, name: str) -> dict[str, Any] | None:
        """The DB subnet group, or None when it does not exist."""
        return _describe_one(
            self,
            f"describing DB subnet group {name}",
            self._client.describe_db_subnet_groups,
            "DBSubnetGroups",
            DBSubnetGroupName=name,
        )

    def offers_instance_class(self, engine: str, engine_version: str | None, instance_class: str) -> bool:
        """Whether RDS in this region offers `instance_class` for the engine (at that version, when known)."""
        request: dict[str, Any] = {"Engine": engine, "DBInstanceClass": instance_class, "MaxRecords": 100}
        if engine_version:
            request["EngineVersion"] = engine_version
        for _ in range(MAX_PAGES):
            page = self._call(
                f"describing the offer of {instance_class}",
                self._client.describe_orderable_db_instance_options,
                **request,
            )
            options = page.get("OrderableDBInstanceOptions", [])
            if any(option.get("DBInstanceClass") == instance_class for option in options):
                return True
            if not page.get("Marker"):
                return False
            request["Marker"] = page["Marker"]
        return True  # not settled within MAX_PAGES pages: not refused on a guess

    # -- snapshots --------------------------------------------------------------------------------------
    def cluster_snapshot(self, snapshot_id: str) -> dict[str, Any] | None:
        return _describe_one(
            self,
            f"describing snapshot {snapshot_id}",
            self._client.describe_db_cluster_snapshots,
            "DBClusterSnapshots",
            DBClusterSnapshotIdentifier=snapshot_id,
        )

    def snapshots_of_cluster(self, cluster_id: str | None) -> list[dict[str, Any]]:
        """The cluster's snapshots; None: every manual cluster snapshot in the region."""
        which = {"DBClusterIdentifier": cluster_id} if cluster_id else {"SnapshotType": "manual"}
        pages = self._client.get_paginator("describe_db_cluster_snapshots").paginate(**which)
        found: list[dict[str, Any]] = []
        try:
            for page in pages:
                found.extend(page.get("DBClusterSnapshots", []))
        except ClientError as exc:
            raise AwsError(
                f"listing snapshots of {cluster_id or 'the region'}: {aws.error_code(exc)}", retryable=True
            ) from exc
        return found

    def find_snapshot_for_date(self, cluster_id: str, day: date, name_pattern: str) -> dict[str, Any] | None:
        """The snapshot named by the pattern, else the newest available one created that day."""
        named = name_pattern.format(source_cluster_id=cluster_id, date=day.isoformat())
        snapshot = self.cluster_snapshot(named)
        if snapshot is not None and snapshot.get("DBClusterIdentifier") in (cluster_id, None):
            return snapshot
        same_day = [
            item
            for item in self.snapshots_of_cluster(cluster_id)
            if item.get("SnapshotCreateTime") is not None
            and item["SnapshotCreateTime"].date() == day
            and item.get("Status") == "available"
        ]
        same_day.sort(key=lambda item: item["SnapshotCreateTime"], reverse=True)
        return same_day[0] if same_day else None

    def copy_cluster_snapshot(
        self,
        source_arn: str,
        source_region: str,
        target_snapshot_id: str,
        tags: list[dict[str, str]],
        kms_key_id: str | None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "SourceDBClusterSnapshotIdentifier": source_arn,
            "TargetDBClusterSnapshotIdentifier": target_snapshot_id,
            "Tags": tags,
        }
        if source_region != self.region:
            kwargs["SourceRegion"] = source_region
        if kms_key_id:
            kwargs["KmsKeyId"] = kms_key_id
        answer = self._call(
            f"copying snapshot to {target_snapshot_id}",
            self._client.copy_db_cluster_snapshot,
            tolerate=frozenset({"DBClusterSnapshotAlreadyExistsFault"}),
            **kwargs,
        )
        return dict(answer["DBClusterSnapshot"]) if answer else {}

    def delete_cluster_snapshot(self, snapshot_id: str) -> bool:
        try:
            self._call(
                f"deleting snapshot {snapshot_id}",
                self._client.delete_db_cluster_snapshot,
                DBClusterSnapshotIdentifier=snapshot_id,
            )
        except NotFound:
            return False
        return True

    def parameter_group_family(self, name: str, *, cluster: bool) -> str | None:
        """The family (`aurora-postgresql15`) of a DB cluster (or DB) parameter group; None when none."""
        kind = "DBClusterParameterGroup" if cluster else "DBParameterGroup"
        call = (
            self._client.describe_db_cluster_parameter_groups
            if cluster
            else self._client.describe_db_parameter_groups
        )
        group = _describe_one(
            self, f"describing parameter group {name}", call, f"{kind}s", **{f"{kind}Name": name}
        )
        return group.get("DBParameterGroupFamily") if group else None

    # -- clusters and instances ---------------------------------------------------------------------------
    def cluster(self, cluster_id: str) -> dict[str, Any] | None:
        return _describe_one(
            self,
            f"describing cluster {cluster_id}",
            self._client.describe_db_clusters,
            "DBClusters",
            DBClusterIdentifier=cluster_id,
        )

    def instance(self, instance_id: str) -> dict[str, Any] | None:
        return _describe_one(
            self,
            f"describing instance {instance_id}",
            self._client.describe_db_instances,
            "DBInstances",
            DBInstanceIdentifier=instance_id,
        )

    def add_tags(self, arn: str, tags: dict[str, str]) -> None:
        self._call(
            f"tagging {arn}",
            self._client.add_tags_to_resource,
            ResourceName=arn,
            Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
        )

    def modify_cluster(self, cluster_id: str, what: str, **changes: Any) -> bool:
        """ModifyDBCluster with `changes`, applied now (ApplyImmediately). False when RDS refused it for now
        (the cluster busy: backing up, modifying, just restored, its instances being deleted): asked again
        at the next check. `what` names the change in an error, never a value (a password is one)."""
        answer = self._call(
            what,
            self._client.modify_db_cluster,
            tolerate=BUSY,
            DBClusterIdentifier=cluster_id,
            ApplyImmediately=True,
            **changes,
        )
        return answer is not None

    def delete_instance(self, instance_id: str) -> None:
        self._call(
            f"deleting instance {instance_id}",
            self._client.delete_db_instance,
            tolerate=DELETE_UNDER_WAY | {"DBInstanceNotFound", "DBInstanceNotFoundFault"},
            DBInstanceIdentifier=instance_id,
            SkipFinalSnapshot=True,
        )

    def delete_cluster(self, cluster_id: str, final_snapshot_id: str | None) -> bool:
        """Ask for the cluster's deletion; False when RDS refused it for now (an instance not yet deleting,
        or the cluster already deleting)."""
        kwargs: dict[str, Any] = {"DBClusterIdentifier": cluster_id}
        if final_snapshot_id:
            kwargs["FinalDBSnapshotIdentifier"] = final_snapshot_id
            kwargs["SkipFinalSnapshot"] = False
        else:
            kwargs["SkipFinalSnapshot"] = True
        answer = self._call(
            f"deleting cluster {cluster_id}",
            self._client.delete_db_cluster,
            tolerate=DELETE_UNDER_WAY,
            **kwargs,
        )
        return answer is not None

    def restore_cluster(self, **kwargs: Any) -> dict[str, Any]:
        answer = self._call(
            f"restoring cluster {kwargs['DBClusterIdentifier']}",
            self._client.restore_db_cluster_from_snapshot,
            tolerate=frozenset({"DBClusterAlreadyExistsFault"}),
            **kwargs,
        )
        return dict(answer["DBCluster"]) if answer else {}

    def create_instance(self, **kwargs: Any) -> bool:
        """Ask for an instance: whether RDS took it (or it exists already, a re-run after a crash). False
        when RDS refused it for now with InvalidDBClusterStateFault, its cluster in a state that takes no new
        instance yet, such as `resetting-master-credentials` right after ModifyDBCluster set the master
        password (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html, Errors)."""
        try:
            self._client.create_db_instance(**kwargs)
        except ClientError as exc:
            code = aws.error_code(exc)
            if code in BUSY:
                return False
            if code not in INSTANCE_EXISTS:
                raise rds_error(
                    self.region, f"creating instance {kwargs['DBInstanceIdentifier']}", exc
                ) from exc
        return True
