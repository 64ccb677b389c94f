"""Small fakes of the AWS clients our adapters call: no AWS, no sockets, and they record what they got."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions import aws
from functions.settings import Settings

SETTINGS = Settings(
    environment="dev",
    region="us-west-2",
    state_table="aurora-restore-state-dev",
    event_bus="aurora-restore-dev",
    config_parameter="/aurora-restore/dev/config",
    db_users_parameter="/aurora-restore/dev/db_users",
)

RUNBOOK_CONFIG: dict[str, Any] = {
    "source_region": "us-east-1",
    "target_region": "us-west-2",
    "source_cluster_id": "dev-source-cluster",
    "target_cluster_id": "dev-target-cluster",
    "target_subnet_group": "dev-subnet-group",
    "target_security_groups": ["sg-12345678"],
    "master_credentials_secret_id": "dev/master-credentials",
    "notification_topic_arn": "arn:aws:sns:us-west-2:123456789012:dev-notifications",
    "notification_queue_url": "https://sqs.us-west-2.amazonaws.com/123456789012/dev-notifications",
    "log_bucket": "dev-aurora-restore-logs",
    "log_prefix": "aurora-restore-logs",
}


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


class FakeSsm:
    """Parameters by name, each (value, type); GetParameter as SSM answers it."""

    def __init__(self) -> None:
        self.parameters: dict[str, tuple[str, str]] = {}
        self.requests: list[dict[str, Any]] = []

    def put(self, name: str, value: Any, kind: str = "String") -> None:
        self.parameters[name] = (value if isinstance(value, str) else json.dumps(value), kind)

    def get_parameter(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if request["Name"] not in self.parameters:
            raise client_error("ParameterNotFound", "GetParameter")
        value, kind = self.parameters[request["Name"]]
        return {"Parameter": {"Name": request["Name"], "Value": value, "Type": kind, "Version": 1}}


class FakeEvents:
    """PutEvents that fails the entries whose DetailType is in `fail`."""

    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.fail = fail
        self.batches: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.batches.append(Entries)
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
            if entry["DetailType"] in self.fail
            else {"EventId": f"id-{index}"}
            for index, entry in enumerate(Entries)
        ]
        return {"FailedEntryCount": sum("ErrorCode" in result for result in results), "Entries": results}


def install(monkeypatch: pytest.MonkeyPatch, **clients: Any) -> None:
    """Make functions.aws.client hand out these fakes by service name (anything else is an error)."""

    def client(service: str, region: str | None = None) -> Any:
        if service not in clients:
            raise AssertionError(f"unit tests make no {service} calls")
        return clients[service]

    monkeypatch.setattr(aws, "client", client)
