"""What the steps record in an operation's `outputs` for later steps, the notices and `status`, typed."""

# No `from __future__ import annotations`: pydantic would compile and evaluate each field's annotation
# text when it builds the models, at every cold start (docs/performance.md, "Cold start").

from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from schemas.common import IsoDateTime
from schemas.target_settings import TargetSettings

# notify_completion keeps the SNS message id of each notice it sent under `sns:<notice>` (`sns:completed`,
# `sns:<failed_step>#<n>`): a retry after SQS refused the message sends to SQS alone.
SNS_PREFIX = "sns:"


def _stored_shape(schema: dict[str, Any]) -> None:
    """The JSON Schema of the item's `outputs` as stored: the SNS ids are `sns:*` keys, not one object."""
    ids = schema["properties"].pop("sns_message_ids")
    schema["patternProperties"] = {
        f"^{SNS_PREFIX}": {"type": "string", "description": ids["description"]},
    }


class TableMasked(BaseModel):
    """How far mask_data is with one table (the database holds the exact progress; this is for `watch`)."""

    model_config = ConfigDict(extra="forbid")

    table: str
    rows_done: int
    rows_total: int = Field(description="The table's rows when masking began (an estimate on large tables)")
    done: bool


class ScriptRun(BaseModel):
    """One post-restore SQL script that ran: where it came from and what PostgreSQL said, never its data."""

    model_config = ConfigDict(extra="forbid")

    uri: str
    sha256: str
    status: str = Field(
        description="PostgreSQL's command tag of its last statement (`UPDATE 12`, `CREATE ...`)"
    )
    seconds: float


class StepOutputs(BaseModel):
    """Every key a step records in `outputs`; each is optional, and a key no step writes is refused.

    A step records only the keys it sets: `recorded()` leaves out the ones never set, so the state item
    holds what it held as a plain dict (a key set to None is kept, as `dict.update` kept it).
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_stored_shape)

    # snapshot_check
    snapshot_name: str | None = Field(
        default=None, description="The source snapshot found for target_date; copy_snapshot copies it"
    )
    snapshot_arn: str | None = Field(default=None, description="Its ARN, the source of the cross-region copy")
    snapshot_encrypted: bool | None = Field(
        default=None, description="Whether it is encrypted: the copy then takes kms_key_id"
    )
    source_shared_with: str | None = Field(
        default=None,
        description="The account the source account's snapshot was shared with (source_account_id);"
        " cleanup stops sharing it",
    )
    target_cluster_id: str | None = Field(
        default=None, description="The target cluster, recorded once its lease is taken (the lease held)"
    )
    engine_version: str | None = Field(
        default=None,
        description="The engine version restore_snapshot asks for (engine_version, else the snapshot's): the"
        " one the writer's instance class was checked against",
    )
    warnings: list[str] | None = Field(
        default=None, description="Configuration warnings found at the start (a literal password, ...)"
    )
    target_settings: TargetSettings | None = Field(
        default=None,
        description="The target cluster's own settings before the refresh, put back on the restored cluster"
        " and its writer (absent: there was no target cluster)",
    )
    # copy_snapshot
    target_snapshot: str | None = Field(
        default=None,
        description="The copy in the target region (`<snapshot>-copy`, shortened with a hash of the snapshot's"
        " name to RDS's 63 characters), shared with operations restoring the same snapshot; recorded before"
        " the copy is asked for",
    )
    copy_requested_at: IsoDateTime | None = Field(
        default=None, description="When the copy was first asked for: its progress is measured from here"
    )
    copy_queued_until: IsoDateTime | None = Field(
        default=None,
        description="The last check that found the copy at 0% (queued): its progress is measured from there",
    )
    # check_copy_status
    target_snapshot_arn: str | None = Field(default=None, description="The copy's ARN, once it is available")
    # delete_rds
    deletion_started: bool | None = Field(
        default=None,
        description="The old target's deletion was asked for (recorded before the first call): it is out of"
        " use from then",
    )
    instances_deleting: list[str] | None = Field(
        default=None, description="The old target's instances whose deletion was asked for"
    )
    final_snapshot: str | None = Field(
        default=None, description="The final snapshot RDS keeps of the old target (final_snapshot on)"
    )
    # swap_clusters (the swap strategy)
    switch_started: bool | None = Field(
        default=None,
        description="The switch began: the target's name was freed (renamed away, or none held it)",
    )
    switched: bool | None = Field(
        default=None, description="The restored cluster answers under the target's name"
    )
    switch_failure: str | None = Field(
        default=None, description="Why the switch failed half way: the old target is being renamed back"
    )
    switch_rolled_back: bool | None = Field(
        default=None, description="A failed switch renamed the old target back under its name"
    )
    old_cluster_id: str | None = Field(
        default=None, description="The old target's name once renamed away; delete_rds deletes it"
    )
    # check_restore_status
    cluster_endpoint: str | None = Field(default=None, description="The restored cluster's endpoint")
    cluster_port: int | None = Field(default=None, description="The restored cluster's port")
    master_username: str | None = Field(
        default=None, description="The restored cluster's master user (the source's, from the snapshot)"
    )
    master_password_set: bool | None = Field(
        default=None, description="The target's master password is set on the restored cluster"
    )
    writer_requested: bool | None = Field(default=None, description="The writer instance was asked for")
    writer_instance_id: str | None = Field(
        default=None, description="The writer instance (`<target_cluster_id>-writer`), once available"
    )
    # check_restore_status or cleanup (release_copy), once per operation
    copy_released: bool | None = Field(
        default=None, description="This operation gave up its share of the copy"
    )
    copy_deleted: bool | None = Field(
        default=None, description="The copy was deleted then (no other operation used it any more)"
    )
    # mask_data
    masking_samples: dict[str, list[str]] | None = Field(
        default=None,
        description="Per `schema.table.column`, keyed hashes of a sample of the values before masking (no"
        " value itself): verify_restore checks none is left",
    )
    masking_row_counts: dict[str, int] | None = Field(
        default=None, description="Each masked table's rows before masking: verify_restore finds as many"
    )
    masking_progress: list[TableMasked] | None = Field(
        default=None, description="Each masked table's progress, as of the last batch mask_data recorded"
    )
    post_restore_sql_done: list[ScriptRun] | None = Field(
        default=None, description="The post-restore SQL scripts run so far, in order (a re-run skips them)"
    )
    # setup_db_users
    users: list[str] | None = Field(default=None, description="The application users set up")
    # verify_restore
    verified_tables: int | None = Field(default=None, description="How many tables verify_restore found")
    verified_schemas: int | None = Field(default=None, description="How many schemas verify_restore found")
    # notify_completion
    sns_message_ids: dict[str, str] | None = Field(
        default=None,
        description="The SNS message id of each notice sent, by notice (`completed`, `<failed_step>#<n>`);"
        " stored as `sns:<notice>` keys",
    )
    failure_notifications: list[str] | None = Field(
        default=None, description="The SNS message ids of the failure notices sent"
    )
    failures_notified: list[str] | None = Field(
        default=None, description="The failures notified, as `<failed_step>#<failures so far>`"
    )
    # cleanup
    final_snapshots_deleted: list[str] | None = Field(
        default=None, description="Older final snapshots of the target deleted (final_snapshots_kept)"
    )

    @model_validator(mode="before")
    @classmethod
    def _gather_sns_ids(cls, data: Any) -> Any:
        """The stored `sns:<notice>` keys as one mapping."""
        if not isinstance(data, Mapping) or not any(str(key).startswith(SNS_PREFIX) for key in data):
            return data
        rest = {key: value for key, value in data.items() if not str(key).startswith(SNS_PREFIX)}
        ids = {key.removeprefix(SNS_PREFIX): value for key, value in data.items() if key not in rest}
        return rest | {"sns_message_ids": {**(rest.get("sns_message_ids") or {}), **ids}}

    @model_serializer(mode="wrap")
    def _spread_sns_ids(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Back to `sns:<notice>` keys, as the state item holds them."""
        data: dict[str, Any] = handler(self)
        ids = data.pop("sns_message_ids", None) or {}
        return data | {f"{SNS_PREFIX}{notice}": message_id for notice, message_id in ids.items()}

    @classmethod
    def of(cls, outputs: Mapping[str, Any]) -> "StepOutputs":
        """An operation's recorded outputs (`state.outputs`), checked."""
        return cls.model_validate(outputs)

    def recorded(self) -> dict[str, Any]:
        """The keys set, as the state item holds them. A value assigned is not checked then (a misspelt
        name is refused at once): a mistyped one is refused here."""
        data = self.model_dump(exclude_unset=True)
        type(self).model_validate(data)
        return data

    def merged(self, newer: "StepOutputs") -> "StepOutputs":
        """These outputs with `newer`'s recorded over them, as the state item's `outputs` is updated."""
        return type(self).of(self.recorded() | newer.recorded())
