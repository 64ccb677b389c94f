"""Malformed requests put on the local runtime's bus, through its rules: a failed operation and its notice, or
a RequestRejected and its notice; the target untouched."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from e2e.test_failure_path import StoreView

from aurora_restore import chaos
from aurora_restore.local.runtime import TARGET_CLUSTER, LocalRuntime

pytestmark = pytest.mark.e2e


def put(runtime: LocalRuntime, detail: dict[str, Any]) -> None:
    """A RestoreRequested as anyone can put it: the detail as written, not through our model."""
    answer = runtime.client("events").put_events(
        Entries=[
            {
                "Source": "aurora-restore",
                "DetailType": "RestoreRequested",
                "Detail": json.dumps(detail),
                "EventBusName": f"aurora-restore-{runtime.options.environment}",
            }
        ]
    )
    assert not answer.get("FailedEntryCount"), answer


def notices(runtime: LocalRuntime, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The notices on the notification queue, once there are `count` (or the timeout ran out), and a moment
    more: a second notice for one request would arrive then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [json.loads(body) for body in chaos.queue_messages(runtime, "dev-notifications")]
        if len(found) >= count:
            time.sleep(2)
            return [json.loads(body) for body in chaos.queue_messages(runtime, "dev-notifications")]
        time.sleep(0.2)
    return [json.loads(body) for body in chaos.queue_messages(runtime, "dev-notifications")]


def test_malformed_requests_on_the_bus_end_failed_or_rejected_each_with_one_notice(
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    # Given the local runtime, and malformed RestoreRequested put on its bus
    runtime = start_runtime(log_path=None)
    rds = runtime.client("rds")
    before = rds.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]
    mutations = dict(runtime.simulator.mutating_calls())  # type: ignore[union-attr]
    bad = {
        "bad-date": {"target_date": "2023-13-45"},
        "shell-text": {"target_date": "yesterday; rm -rf /"},
        "a-number": {"target_date": 20230601},
        "overrides-not-an-object": {"target_date": "2023-06-01", "overrides": "x"},
    }
    for operation_id, detail in bad.items():
        put(runtime, {"operation_id": operation_id, **detail})
    put(runtime, {"operation_id": "not an id", "target_date": "2023-06-01"})

    # When the rules have delivered them, and notify_completion the events they led to
    sent = notices(runtime, len(bad) + 1)

    # Then each request with a usable id is a failed operation with its reason, notified once
    for operation_id in bad:
        state = runtime.wait_for(operation_id, timeout=30)
        assert state is not None and (state.status, state.failed_step) == ("failed", "snapshot_check"), state
        assert state.error is not None and state.error.type == "InvalidRequest"
        about = [notice for notice in sent if notice["operation_id"] == operation_id]
        assert len(about) == 1 and about[0]["error"]["message"] == state.error.message, about
    # And the one without is a rejected notice saying what was received
    (rejected,) = [notice for notice in sent if notice["outcome"] == "rejected"]
    assert rejected["operation_id"] is None and '"not an id"' in rejected["received"]
    assert len(sent) == len(bad) + 1
    # And the target is as it was: no RDS call changed anything, and no lease was taken
    after = rds.describe_db_clusters(DBClusterIdentifier=TARGET_CLUSTER)["DBClusters"][0]
    assert after["Status"] == before["Status"] and after["ClusterCreateTime"] == before["ClusterCreateTime"]
    assert dict(runtime.simulator.mutating_calls()) == mutations  # type: ignore[union-attr]
    assert StoreView(runtime).lease_holder(TARGET_CLUSTER) is None
