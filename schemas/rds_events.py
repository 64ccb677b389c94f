"""RDS events as EventBridge delivers them (source aws.rds), parsed through Powertools' EventBridgeModel.

The event types and IDs we act on are in schemas.rds_event_ids."""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

from schemas.common import empty_list


class RdsEventDetail(BaseModel):
    """The `detail` of an RDS event. Only EventID and SourceArn are matched on, never Message."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    event_categories: list[str] = Field(default_factory=empty_list, alias="EventCategories")
    source_type: str | None = Field(default=None, alias="SourceType")
    source_arn: str = Field(alias="SourceArn")
    date: str | None = Field(default=None, alias="Date")
    message: str | None = Field(default=None, alias="Message")
    source_identifier: str = Field(alias="SourceIdentifier")
    event_id: str = Field(alias="EventID")

    @property
    def identifier(self) -> str:
        """The resource identifier, without the `rds:` prefix RDS sometimes adds."""
        return self.source_identifier.removeprefix("rds:")


class RdsEvent(EventBridgeModel):
    """An RDS event on the default bus."""

    source: Literal["aws.rds"]
    detail_type: Literal["RDS DB Cluster Event", "RDS DB Instance Event", "RDS DB Cluster Snapshot Event"] = (
        Field(alias="detail-type")
    )
    detail: RdsEventDetail
