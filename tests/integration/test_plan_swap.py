"""`plan` and `start` under the swap strategy, against moto and the runbook's world: the switch as the
expected downtime, the names the swap would give, a target too long for swap refused clearly, and
`--strategy` as the request's override."""

from __future__ import annotations

import json

import pytest
from unit.test_cli_offline import run

from aurora_restore import cli
from integration.test_cli import TARGET, Bus
from integration.test_plan import PLAN, everything
from integration.world import TARGET_CLUSTER, TARGET_DATE, World, create_state_table
from schemas.config import MAX_SWAP_TARGET_CLUSTER_ID

pytestmark = pytest.mark.integration


def test_plan_under_swap_expects_the_switch_and_names_the_clusters(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the runbook's world, its target existing
    before = everything(world)

    # When the operator plans a refresh under swap
    code, out, err = run(capsys, *PLAN, "--date", TARGET_DATE, "--strategy", "swap")

    # Then it would start: the old target keeps serving until the switch, which is the downtime
    assert code == cli.EXIT_OK, out + err
    assert "  strategy  swap: the old target keeps serving until the switch (one rename)" in out
    assert f"target    {TARGET_CLUSTER} in " in out and ": keeps serving; restored beside it as" in out
    assert "downtime  about 2 min (an estimate: the switch" in out

    # And its JSON says the strategy, the switch's estimate and the clusters the swap makes
    code, out, _ = run(capsys, *PLAN, "--date", TARGET_DATE, "--json", "--override", "strategy=swap")
    report = json.loads(out)
    assert report["strategy"] == "swap" and report["expected_downtime_s"] == 150
    target = report["target"]
    assert target["restored_as"].startswith(f"{TARGET_CLUSTER}-new-")
    assert target["old_renamed_to"].startswith(f"{TARGET_CLUSTER}-old-")
    assert target["writer"] == f"{target['restored_as']}-writer"
    # The restored cluster and its writer stand beside the target: the quotas count them
    quotas = next(check for check in report["checks"] if check["name"] == "quotas")
    assert quotas["outcome"] in ("unknown", "passed"), quotas

    # And nothing changed
    assert everything(world) == before and world.published() == []


def test_plan_refuses_a_target_too_long_for_swap_and_says_why(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    long_target = "t" * (MAX_SWAP_TARGET_CLUSTER_ID + 1)

    code, out, _ = run(
        capsys,
        *PLAN,
        "--date",
        TARGET_DATE,
        "--strategy",
        "swap",
        "--override",
        f"target_cluster_id={long_target}",
    )

    assert code == cli.EXIT_FAILED
    assert f"a refresh for {TARGET_DATE} would NOT start:\n  - configuration: " in out
    assert (
        f"strategy swap: target_cluster_id has {len(long_target)} characters, at most"
        f" {MAX_SWAP_TARGET_CLUSTER_ID} under swap" in out
    )
    assert "(or use strategy replace)" in out
    code, out, _ = run(
        capsys, *PLAN, "--date", TARGET_DATE, "--json", "--override", f"target_cluster_id={long_target}"
    )
    assert "strategy swap" not in out  # the same name under replace is not refused for it


def test_start_with_strategy_puts_it_in_the_request_s_overrides(
    mocked_aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    create_state_table(TARGET.table, TARGET.region)
    bus = Bus()

    code, out, err = run(
        capsys, "start", "--date", "2026-11-30", "--operation-id", "op-swap", "--strategy", "swap"
    )

    assert code == cli.EXIT_OK, out + err
    [event] = bus.events()
    assert event["detail"]["operation_id"] == "op-swap"
    assert event["detail"]["overrides"] == {"strategy": "swap"}

    # And --strategy against an --override saying otherwise is refused before anything is put on the bus
    code, _, err = run(
        capsys, "start", "--date", "2026-11-30", "--strategy", "replace", "--override", "strategy=swap"
    )
    assert code == cli.EXIT_FAILED
    assert "--strategy replace and --override strategy=swap disagree" in err
    assert bus.events() == []
