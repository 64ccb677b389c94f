"""The one route table: which event pattern starts which function, on which bus.

The Pulumi program builds its EventBridge rules from it and the local runtime builds its rules from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.common import Step, partition_of
from schemas.events import EVENT_SOURCE
from schemas.rds_event_ids import (
    CLUSTER_CREATE_FAILED,
    CLUSTER_CREATED,
    CLUSTER_DELETED,
    CLUSTER_EVENT,
    CLUSTER_RENAMED,
    CLUSTER_SNAPSHOT_EVENT,
    COPY_SUFFIX,
    INSTANCE_CREATED,
    INSTANCE_EVENT,
    INSTANCE_FAILED,
)

RECONCILE = "reconcile"
# The net below the net: waits are woken by one-shot schedules and RDS events, and the stretches between
# them by each operation's watchdog (functions/wakeup.py); the scan catches a wake-up never scheduled.
RECONCILE_SCHEDULE = "rate(1 hour)"


@dataclass(frozen=True)
class Route:
    """One EventBridge rule: events matching `pattern` on `bus` invoke `function`."""

    name: str  # short, unique: becomes the rule name aurora-restore-<name>-<env>
    function: str  # a Step value, or "reconcile"
    bus: Literal["environment", "default"]
    pattern: dict[str, Any] = field(hash=False)
    description: str = ""


def _ours(detail_type: str, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    pattern: dict[str, Any] = {"source": [EVENT_SOURCE], "detail-type": [detail_type]}
    if detail:
        pattern["detail"] = detail
    return pattern


def _rds_arn_prefix(region: str) -> str:
    return f"arn:{partition_of(region)}:rds:{region}:"


def _rds(region: str | None, *alternatives: tuple[str, list[str]]) -> dict[str, Any]:
    """RDS events matched on EventID (never Message) and, where the region is known, on the ARN's region."""
    arn: dict[str, Any] = {"SourceArn": [{"prefix": _rds_arn_prefix(region)}]} if region else {}
    branches = [{"detail-type": [kind], "detail": {"EventID": ids, **arn}} for kind, ids in alternatives]
    if len(branches) == 1:
        return {"source": ["aws.rds"], **branches[0]}
    return {"source": ["aws.rds"], "$or": branches}


def build_routes(target_region: str | None = None) -> list[Route]:
    routes = [
        Route(
            "restore-requested",
            Step.SNAPSHOT_CHECK.value,
            "environment",
            _ours("RestoreRequested"),
            "RestoreRequested starts an operation",
        )
    ]
    for step in list(Step)[1:]:
        routes.append(
            Route(
                f"to-{step.kebab}",
                step.value,
                "environment",
                _ours("StepCompleted", {"next_step": [step.value]}),
                f"StepCompleted with next_step {step.value}",
            )
        )
    routes.append(
        Route(
            "step-failed",
            Step.NOTIFY_COMPLETION.value,
            "environment",
            _ours("StepFailed"),
            "failures are notified",
        )
    )
    routes.append(
        Route(
            "request-rejected",
            Step.NOTIFY_COMPLETION.value,
            "environment",
            _ours("RequestRejected"),
            "a request refused before any operation was recorded is notified",
        )
    )
    # mask_data waits on itself: a large table goes on in its next invocation, woken the same way.
    waits = (
        Step.CHECK_COPY_STATUS,
        Step.DELETE_RDS,
        Step.CHECK_RESTORE_STATUS,
        Step.MASK_DATA,
        Step.SWAP_CLUSTERS,
    )
    for step in waits:
        routes.append(
            Route(
                f"recheck-{step.kebab}",
                step.value,
                "environment",
                _ours("RecheckDue", {"step": [step.value]}),
                f"the reconciler re-checks {step.value}",
            )
        )
    routes.append(
        Route(
            "stall-check",
            RECONCILE,
            "environment",
            _ours("StallCheckDue"),
            "an operation's watchdog fired: the reconciler looks at it",
        )
    )
    routes += [
        Route(
            "rds-snapshot",
            Step.CHECK_COPY_STATUS.value,
            "default",
            {
                "source": ["aws.rds"],
                "detail-type": [CLUSTER_SNAPSHOT_EVENT],
                # Only our copies (`<snapshot>-copy`): not every backup's event in the region.
                "detail": {
                    "SourceIdentifier": [{"suffix": COPY_SUFFIX}],
                    **({"SourceArn": [{"prefix": _rds_arn_prefix(target_region)}]} if target_region else {}),
                },
            },
            "our copies' cluster-snapshot events (Aurora sends none for a copy; kept for when it does)",
        ),
        Route(
            "rds-deleted",
            Step.DELETE_RDS.value,
            "default",
            _rds(target_region, (CLUSTER_EVENT, [CLUSTER_DELETED])),
            # Not the instances' deletions: the cluster outlives them, so each would be a wasted invocation.
            "the cluster was deleted",
        ),
        Route(
            "rds-restored",
            Step.CHECK_RESTORE_STATUS.value,
            "default",
            _rds(
                target_region,
                (CLUSTER_EVENT, [CLUSTER_CREATED, *CLUSTER_CREATE_FAILED]),
                (INSTANCE_EVENT, [INSTANCE_CREATED, *INSTANCE_FAILED]),
            ),
            "the cluster or its writer was created, or failed",
        ),
        Route(
            "rds-renamed",
            Step.SWAP_CLUSTERS.value,
            "default",
            _rds(target_region, (CLUSTER_EVENT, [CLUSTER_RENAMED])),
            "a cluster's rename took effect (the swap strategy's switch)",
        ),
    ]
    return routes


FUNCTIONS: tuple[str, ...] = (*[step.value for step in Step], RECONCILE)


def handler_path(function: str) -> str:
    return f"functions.{function}.handler"


def routes_for(function: str, target_region: str | None = None) -> list[Route]:
    return [route for route in build_routes(target_region) if route.function == function]
