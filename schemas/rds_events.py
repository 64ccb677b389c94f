"""RDS events as EventBridge delivers them (source aws.rds), parsed through Powertools' EventBridgeModel."""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

CLUSTER_EVENT = "RDS DB Cluster Event"
INSTANCE_EVENT = "RDS DB Instance Event"
CLUSTER_SNAPSHOT_EVENT = "RDS DB Cluster Snapshot Event"

# Event IDs we act on (design.md, "Facts about AWS").
CLUSTER_CREATED = "RDS-EVENT-0170"
CLUSTER_DELETED = "RDS-EVENT-0171"
CLUSTER_CREATE_FAILED = ("RDS-EVENT-0354", "RDS-EVENT-0355")
INSTANCE_CREATED = "RDS-EVENT-0005"
INSTANCE_DELETED = "RDS-EVENT-0003"
INSTANCE_FAILED = ("RDS-EVENT-0353", "RDS-EVENT-0035", "RDS-EVENT-0036")
FAILURE_EVENT_IDS = frozenset(CLUSTER_CREATE_FAILED + INSTANCE_FAILED)


class RdsEventDetail(BaseModel):
    """The `detail` of an RDS event. Only EventID and SourceArn are matched on, never Message."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    event_categories: list[str] = Field(default_factory=list, alias="EventCategories")
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
