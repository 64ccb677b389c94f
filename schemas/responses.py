"""The direct invocation's answers: the runbook's response of each step, field for field, and the error."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from schemas.common import OperationId, Step
from schemas.events import ErrorInfo

TargetCluster = Annotated[str, Field(description="The target cluster (target_cluster_id)")]
Endpoint = Annotated[str, Field(description="Where the restored cluster answers")]
Port = Annotated[int, Field(description="The restored cluster's port")]
# A replayed answer is the recorded one, whose lists past 20 items are cut (`<list>_omitted`: how many).
Omitted = Annotated[int | None, Field(description="Items left out of the list before it (a replayed answer)")]


class StepResponse(BaseModel):
    """What every success answer starts with; each step's fields and its next_step follow, in that order."""

    model_config = ConfigDict(extra="forbid")

    operation_id: OperationId
    status: Literal["success"]
    message: str


class SnapshotCheckResponse(StepResponse):
    snapshot_exists: Literal[True]
    snapshot_name: str = Field(description="The source snapshot found for target_date")
    next_step: Literal["copy_snapshot"]


class CopySnapshotResponse(StepResponse):
    source_snapshot: str = Field(description="The snapshot copied")
    target_snapshot: str = Field(description="The copy in the target region (`<snapshot>-copy`)")
    next_step: Literal["check_copy_status"]


class CheckCopyStatusResponse(StepResponse):
    target_snapshot: str
    copy_status: Literal["in-progress", "available"]
    next_step: Literal["check_copy_status", "delete_rds", "restore_snapshot"] = Field(
        description="check_copy_status while the copy is in progress; restore_snapshot under swap"
    )


class DeleteRdsResponse(StepResponse):
    target_cluster_id: TargetCluster
    deletion_status: Literal["in-progress", "completed"] | None = Field(
        default=None,
        description="Always sent: `completed` also when there was no cluster to delete (the runbook's"
        " example omits it there, and its script takes an empty value as completed)",
    )
    next_step: Literal["delete_rds", "restore_snapshot", "notify_completion"] = Field(
        description="delete_rds while the deletion is in progress; notify_completion under swap (the old"
        " target is deleted after the switch)"
    )


class RestoreSnapshotResponse(StepResponse):
    target_cluster_id: TargetCluster
    target_snapshot: str = Field(description="The copy restored")
    next_step: Literal["check_restore_status"]


class CheckRestoreStatusResponse(StepResponse):
    target_cluster_id: TargetCluster
    cluster_status: str = Field(
        description="`available` once the cluster and its writer are; else what RDS says (`creating`, ...)"
    )
    next_step: Literal["check_restore_status", "mask_data", "setup_db_users"] = Field(
        description="check_restore_status while the restore is in progress; mask_data when the configuration"
        " has masking rules or post-restore SQL"
    )


class MaskDataResponse(StepResponse):
    target_cluster_id: TargetCluster
    masking_status: Literal["masking to begin", "masking", "masking to end", "done"] = Field(
        description="Where mask_data is: sampled (masking next), masking, masked and scripts run, done"
    )
    tables_masked: int | None = Field(default=None, description="Tables masked (once done)")
    scripts_run: int | None = Field(default=None, description="Post-restore SQL scripts run (once done)")
    next_step: Literal["mask_data", "setup_db_users"] = Field(
        description="mask_data while it goes on in its next invocation"
    )


class CreatedUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str
    privileges: list[str]


class SetupDbUsersResponse(StepResponse):
    target_cluster_id: TargetCluster
    cluster_endpoint: Endpoint
    cluster_port: Port
    users_created: list[CreatedUser] = Field(description="Each user set up, with its privileges")
    users_created_omitted: Omitted = None
    next_step: Literal["verify_restore"]


class TableRef(BaseModel):
    # `schema` would shadow BaseModel.schema: the field has another name, and `schema` is its key.
    model_config = ConfigDict(extra="forbid", validate_by_name=True, serialize_by_alias=True)

    schema_name: str = Field(alias="schema", description="The table's schema")
    name: str


class SchemaInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schemas: list[str]
    tables: list[TableRef]
    schemas_omitted: Omitted = None
    tables_omitted: Omitted = None


class VerifyRestoreResponse(StepResponse):
    target_cluster_id: TargetCluster
    cluster_endpoint: Endpoint
    cluster_port: Port
    schema_info: SchemaInfo = Field(description="The restored database's schemas and tables")
    next_step: Literal["notify_completion", "swap_clusters"] = Field(
        description="swap_clusters under swap: the restored cluster is verified before anyone is switched"
    )


class SwapClustersResponse(StepResponse):
    target_cluster_id: TargetCluster
    swap_status: Literal["in-progress", "completed"] = Field(
        description="`completed` once the restored cluster answers under the target's name"
    )
    old_cluster_id: str | None = Field(
        default=None, description="The old target's name after the switch (`<target>-old-<hash>`)"
    )
    next_step: Literal["swap_clusters", "delete_rds"] = Field(
        description="swap_clusters while a rename is in progress; then delete_rds deletes the old target"
    )


class NotifyCompletionResponse(StepResponse):
    target_cluster_id: TargetCluster
    outcome: Literal["completed", "failed"] = Field(
        description="What was notified: the runbook's example has `status` twice, the second one is this"
    )
    sns_message_id: str | None = Field(
        default=None, description="Absent when the failure was notified before"
    )
    sqs_message_id: str | None = Field(
        default=None, description="Absent when the failure was notified before"
    )
    next_step: None = Field(description="null, as the runbook's script expects: it invokes cleanup itself")


class CleanupResults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    snapshot_deleted: bool = Field(description="The copy is gone (with the last operation that used it)")
    state_data_deleted: bool = Field(
        description="The state item is reduced to the step answers (delete_state)"
    )
    logs_deleted: bool = Field(description="The step records in the log bucket are deleted (delete_logs)")
    final_snapshots_deleted: list[str] | None = Field(
        default=None, description="Only with final_snapshots_kept: older final snapshots deleted"
    )
    final_snapshots_not_deleted: list[str] | None = Field(
        default=None, description="Only with final_snapshots_kept: older ones RDS refused to delete"
    )


class CleanupResponse(StepResponse):
    target_cluster_id: TargetCluster
    cleanup_results: CleanupResults
    next_step: None


class ErrorResponse(BaseModel):
    """A refused or failed step (`status: "error"`); nothing routes on."""

    model_config = ConfigDict(extra="forbid")

    operation_id: OperationId | None = Field(description="null when the payload named none we could read")
    status: Literal["error"]
    message: str
    error: ErrorInfo
    next_step: None


RESPONSE_BY_STEP: dict[Step, type[StepResponse]] = {
    Step.SNAPSHOT_CHECK: SnapshotCheckResponse,
    Step.COPY_SNAPSHOT: CopySnapshotResponse,
    Step.CHECK_COPY_STATUS: CheckCopyStatusResponse,
    Step.DELETE_RDS: DeleteRdsResponse,
    Step.RESTORE_SNAPSHOT: RestoreSnapshotResponse,
    Step.CHECK_RESTORE_STATUS: CheckRestoreStatusResponse,
    Step.MASK_DATA: MaskDataResponse,
    Step.SETUP_DB_USERS: SetupDbUsersResponse,
    Step.VERIFY_RESTORE: VerifyRestoreResponse,
    Step.SWAP_CLUSTERS: SwapClustersResponse,
    Step.NOTIFY_COMPLETION: NotifyCompletionResponse,
    Step.CLEANUP: CleanupResponse,
}


class DirectResponse(
    RootModel[
        SnapshotCheckResponse
        | CopySnapshotResponse
        | CheckCopyStatusResponse
        | DeleteRdsResponse
        | RestoreSnapshotResponse
        | CheckRestoreStatusResponse
        | MaskDataResponse
        | SetupDbUsersResponse
        | VerifyRestoreResponse
        | SwapClustersResponse
        | NotifyCompletionResponse
        | CleanupResponse
        | ErrorResponse
    ]
):
    """What a step answers a direct invocation (`aws lambda invoke` with the runbook's payload): its
    runbook response, field for field, or an error. A late or repeated call gets the recorded answer."""
