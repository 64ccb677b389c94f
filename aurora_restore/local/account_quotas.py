"""RDS's DescribeAccountAttributes on the local runtime (moto has none): usage counted, RDS's default maxima."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# RDS's default quotas per account and region
# (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/CHAP_Limits.html); `plan` checks these three.
DEFAULT_MAXIMA = {"DBClusters": 40, "DBInstances": 40, "ManualClusterSnapshots": 100}


def usage(backend: Any) -> dict[str, int]:
    """What one region's moto RDS backend holds, counted as RDS counts it against each quota."""
    return {
        "DBClusters": len(backend.clusters),
        "DBInstances": len(backend.databases),
        "ManualClusterSnapshots": sum(
            1 for snapshot in backend.cluster_snapshots.values() if snapshot.snapshot_type == "manual"
        ),
    }


def install(maxima: Callable[[], Mapping[str, int]]) -> Callable[[], None]:
    """Answer DescribeAccountAttributes from moto's backend with `maxima()` (read at each call, so a test
    may lower one on a running runtime); returns what puts moto back as it was."""
    from moto.core.responses import ActionResult
    from moto.rds.responses import RDSResponse

    def describe_account_attributes(self: Any) -> ActionResult:
        used, most = usage(self.backend), maxima()
        quotas = [{"AccountQuotaName": name, "Used": used[name], "Max": most[name]} for name in most]
        return ActionResult({"AccountQuotas": quotas})

    RDSResponse.describe_account_attributes = describe_account_attributes  # type: ignore[attr-defined]

    def uninstall() -> None:
        if hasattr(RDSResponse, "describe_account_attributes"):
            del RDSResponse.describe_account_attributes  # type: ignore[attr-defined]

    return uninstall
