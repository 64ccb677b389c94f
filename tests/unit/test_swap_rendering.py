"""The strategy and the swap's downtime as the operator and the subscribers see them: out_of_use and the
outcome notice, `status`, `watch`, `list`, their JSON, `plan`'s words and the timeline SVG, from hand-built
operation states (no AWS)."""

from __future__ import annotations

import ast
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aurora_restore import arguments, cli, operations, render, timeline
from aurora_restore.operations import OperatorError
from aurora_restore.plan import DOWNTIME_MODEL_S, SWAP_DOWNTIME_MODEL_S, quota_needs, quota_note
from functions.identifiers import swap_names
from functions.notify import out_of_use, outcome_notice
from functions.sequence import steps
from schemas.config import RestoreConfig
from schemas.events import ErrorInfo
from schemas.state import HistoryEntry, OperationState
from unit.fakes import RUNBOOK_CONFIG

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
OP = "dev-restore-2026-12-06-020000"
TARGET = RUNBOOK_CONFIG["target_cluster_id"]
NEW, OLD = swap_names(TARGET, OP)
SVG = "{http://www.w3.org/2000/svg}"
ROOT = Path(__file__).resolve().parents[2]

# (step, outcome, trigger, start minute, length in seconds): a completed swap of 55 minutes whose switch
# began at minute 45:18 (the old target renamed away) and ended at 47:30 (the restored cluster answering)
SWAP = [
    ("snapshot_check", "success", "RestoreRequested", 0.0, 1.0),
    ("copy_snapshot", "success", "StepCompleted", 0.1, 1.0),
    ("check_copy_status", "waiting", "StepCompleted", 0.2, 0.5),
    ("check_copy_status", "success", "RecheckDue", 20.0, 0.5),
    ("restore_snapshot", "success", "StepCompleted", 20.1, 1.0),
    ("check_restore_status", "waiting", "StepCompleted", 20.2, 0.5),
    ("check_restore_status", "success", "RDS-EVENT-0170", 44.0, 2.0),
    ("setup_db_users", "success", "StepCompleted", 45.0, 3.0),
    ("verify_restore", "success", "StepCompleted", 45.1, 2.0),
    ("swap_clusters", "waiting", "StepCompleted", 45.3, 1.0),
    ("swap_clusters", "success", "RDS-EVENT-0172", 47.5, 0.0),
    ("delete_rds", "waiting", "StepCompleted", 47.6, 1.0),
    ("delete_rds", "success", "RDS-EVENT-0171", 55.0, 0.5),
    ("notify_completion", "success", "StepCompleted", 55.1, 0.5),
    ("cleanup", "success", "StepCompleted", 55.2, 0.5),
]
SWITCH_BEGAN = T0 + timedelta(minutes=45.3)
SWITCH_ENDED = T0 + timedelta(minutes=47.5)
SWITCH_S = 132  # 45:18 to 47:30
# The same restore under replace: delete_rds before restore_snapshot, no swap_clusters
REPLACE = [
    *SWAP[:4],
    ("delete_rds", "waiting", "StepCompleted", 20.1, 1.0),
    ("delete_rds", "success", "RDS-EVENT-0171", 28.0, 0.5),
    ("restore_snapshot", "success", "StepCompleted", 28.1, 1.0),
    ("check_restore_status", "waiting", "StepCompleted", 28.2, 0.5),
    ("check_restore_status", "success", "RDS-EVENT-0170", 52.0, 2.0),
    ("setup_db_users", "success", "StepCompleted", 53.0, 3.0),
    ("verify_restore", "success", "StepCompleted", 53.1, 2.0),
    ("notify_completion", "success", "StepCompleted", 53.2, 0.5),
    ("cleanup", "success", "StepCompleted", 53.3, 0.5),
]
REPLACE_DOWN_S = 32 * 60 + 57  # 20:06 to 53:03


def history(rows: list[tuple[str, str, str, float, float]]) -> list[HistoryEntry]:
    return [
        HistoryEntry(
            step=step,
            outcome=outcome,  # type: ignore[arg-type]
            message=f"{step} {outcome}",
            trigger=trigger,
            started_at=T0 + timedelta(minutes=minute),
            finished_at=T0 + timedelta(minutes=minute, seconds=seconds),
        )
        for step, outcome, trigger, minute, seconds in rows
    ]


def config(strategy: str | None) -> dict[str, Any]:
    extra = {"strategy": strategy} if strategy else {}
    return RestoreConfig.model_validate(RUNBOOK_CONFIG | extra).model_dump(mode="json")


def operation(
    rows: list[tuple[str, str, str, float, float]], strategy: str | None = "swap", **fields: Any
) -> OperationState:
    entries = history(rows)
    fields.setdefault("status", "completed")
    fields.setdefault("config", config(strategy))
    if strategy == "swap":
        switched = any(row[0] == "swap_clusters" for row in rows)
        fields.setdefault(
            "outputs", {"switch_started": True, "switched": True, "old_cluster_id": OLD} if switched else {}
        )
        fields["outputs"].setdefault("deletion_started", switched)  # delete_rds deletes the old target
    else:
        fields.setdefault("outputs", {"deletion_started": True})
    return OperationState(
        operation_id=OP,
        target_date=date(2026, 12, 6),
        target_cluster_id=TARGET,
        created_at=T0,
        updated_at=max((entry.finished_at for entry in entries), default=T0),
        history=entries,
        **fields,
    )


def before_the_switch(status: str = "waiting") -> OperationState:
    """A swap at verify_restore (running) or failed there: the old target never touched."""
    rows = SWAP[:9]
    if status == "failed":
        rows = [*SWAP[:8], ("verify_restore", "failed", "StepCompleted", 45.1, 2.0)]
        error = ErrorInfo(type="VerificationFailed", message="table public.users missing", retryable=False)
        return operation(rows, status="failed", failed_step="verify_restore", error=error)
    return operation(rows, status=status, current_step="verify_restore", next_step="swap_clusters")


# -- 2: out_of_use and the outcome notice -------------------------------------------------------------------
def test_out_of_use_under_swap_is_the_switch_alone() -> None:
    # Given a completed swap that also deleted its old target (deletion_started) after the switch
    done = operation(SWAP)
    # Then the target was out of use from the run that renamed it away to swap_clusters' success only
    assert out_of_use(done) == (SWITCH_BEGAN, SWITCH_ENDED)


def test_out_of_use_under_replace_is_the_deletion_to_the_users_set_up() -> None:
    done = operation(REPLACE, strategy="replace")
    assert out_of_use(done) == (T0 + timedelta(minutes=20.1), T0 + timedelta(minutes=53, seconds=3))


def test_a_swap_before_its_switch_took_the_target_out_of_use_at_no_point() -> None:
    assert out_of_use(before_the_switch()) is None
    assert out_of_use(before_the_switch("failed")) is None


def test_a_rolled_back_switch_was_out_of_use_until_its_failure_and_a_resume_counts_afresh() -> None:
    # Given a switch that failed and renamed the old target back (its runs at minutes 46 and 46.5)
    rows = [
        *SWAP[:9],
        ("swap_clusters", "waiting", "StepCompleted", 46.0, 1.0),
        ("swap_clusters", "failed", "RecheckDue", 46.5, 1.0),
    ]
    rolled = operation(rows, status="failed", outputs={"switch_started": True, "switch_rolled_back": True})
    # Then the target was out of use from the first run to the failure, and is back
    assert out_of_use(rolled) == (T0 + timedelta(minutes=46), T0 + timedelta(minutes=46.5, seconds=1))
    # And a failure that did not roll back is not over
    rolled.outputs.pop("switch_rolled_back")
    assert out_of_use(rolled) == (T0 + timedelta(minutes=46), None)
    # When it is resumed and the new attempt switches (minutes 60 to 62)
    rolled.outputs["switch_rolled_back"] = True
    rolled.history += history(
        [
            ("swap_clusters", "waiting", "resume", 60.0, 1.0),
            ("swap_clusters", "success", "RDS-EVENT-0172", 62.0, 1.0),
        ]
    )
    # Then the downtime is the new attempt's, not from the first attempt's start
    assert out_of_use(rolled) == (T0 + timedelta(minutes=60), T0 + timedelta(minutes=62, seconds=1))


def test_the_completed_notice_under_swap_says_swap_and_the_switch_s_downtime() -> None:
    notice = outcome_notice(operation(SWAP), "completed", TARGET)

    assert notice.strategy == "swap"
    assert notice.target_down_since == SWITCH_BEGAN
    assert notice.target_downtime_s == SWITCH_S
    body = json.loads(notice.body())
    assert body["strategy"] == "swap" and body["target_downtime_s"] == SWITCH_S

    # And under replace, the deletion to the users set up
    replaced = outcome_notice(operation(REPLACE, strategy="replace"), "completed", TARGET)
    assert replaced.strategy == "replace" and replaced.target_downtime_s == REPLACE_DOWN_S


# -- 1: status, watch, list and their JSON ------------------------------------------------------------------
def test_status_of_a_completed_swap_says_swap_and_the_switch_as_its_downtime() -> None:
    text = render.status_text(operation(SWAP))

    assert (
        f"strategy    swap\n            restored beside the target as {NEW}\n"
        f"            the old target renamed {OLD}, to be deleted after the switch\n"
    ) in text
    assert (
        "downtime    2 min, the switch: from 2026-12-07 02:45:18 UTC (the old target renamed away) to the"
        " restored cluster answering under the target's name"
    ) in text
    assert "(the deletion)" not in text


def test_status_history_lists_swap_clusters_in_the_operation_s_order() -> None:
    text = render.status_text(operation(SWAP))

    rows = re.findall(r"^\s+\[\s*[\d.]+s\] ok (\w+)", text, re.MULTILINE)
    order = steps(RestoreConfig.model_validate(RUNBOOK_CONFIG | {"strategy": "swap"}))
    assert rows == [step.value for step in order]
    assert rows.index("swap_clusters") == rows.index("verify_restore") + 1 == rows.index("delete_rds") - 1


def test_status_of_a_replace_says_replace_and_its_downtime_as_before() -> None:
    text = render.status_text(operation(REPLACE, strategy="replace"))

    assert "strategy    replace\n" in text
    assert "downtime    33 min, from 2026-12-07 02:20:06 UTC (the deletion) to the users set up" in text
    # An operation whose configuration names no strategy (recorded before there was one) is a replace
    assert "strategy    replace\n" in render.status_text(operation(REPLACE, strategy=None))


def test_status_of_a_swap_before_its_switch_says_the_target_kept_serving() -> None:
    assert "downtime    none so far: the target serves until the switch" in render.status_text(
        before_the_switch()
    )
    failed = render.status_text(before_the_switch("failed"))
    assert "downtime    none: the switch never began, the target kept serving" in failed
    assert f"restored_cluster_id: {NEW}" in failed  # kept for a resume (functions.notify.left_in_place)


def test_status_of_a_switch_under_way_or_rolled_back_says_since_when() -> None:
    switching = operation(SWAP[:10], status="waiting", outputs={"switch_started": True})
    assert (
        "downtime    since 2026-12-07 02:45:18 UTC (the switch): the restored cluster does not answer under"
        in render.status_text(switching)
    )
    rows = [*SWAP[:10], ("swap_clusters", "failed", "RecheckDue", 46.0, 1.0)]
    rolled_back = operation(
        rows,
        status="failed",
        failed_step="swap_clusters",
        outputs={"switch_started": True, "switch_rolled_back": True},
        error=ErrorInfo(type="AwsError", message="rename refused", retryable=False),
    )
    assert "(the switch), rolled back: the old target was renamed back under its name" in render.status_text(
        rolled_back
    )
    # And once resumed, switching afresh, it is no longer said to be rolled back
    rolled_back.history += history([("swap_clusters", "waiting", "resume", 50.0, 1.0)])
    rolled_back.status, rolled_back.failed_step, rolled_back.error = "waiting", None, None
    assert "(the switch): the restored cluster does not answer under" in render.status_text(rolled_back)


def test_status_json_carries_the_strategy_and_the_switch() -> None:
    document = json.loads(render.status_json(operation(SWAP)))

    assert document["strategy"] == "swap"
    assert document["out_of_use"] == {
        "since": SWITCH_BEGAN.isoformat(),
        "until": SWITCH_ENDED.isoformat(),
        "seconds": SWITCH_S,
        "what": "the switch",
    }
    replaced = json.loads(render.status_json(operation(REPLACE, strategy="replace")))
    assert replaced["strategy"] == "replace" and replaced["out_of_use"]["seconds"] == REPLACE_DOWN_S
    assert json.loads(render.status_json(before_the_switch()))["out_of_use"] is None


def test_watch_ends_with_the_strategy_and_the_switch() -> None:
    said = render.watch_ended(operation(SWAP))

    assert said.splitlines() == [
        f"operation {OP} is completed",
        "  strategy swap",
        "  downtime 2 min, the switch: from 2026-12-07 02:45:18 UTC (the old target renamed away) to the"
        " restored cluster answering under the target's name",
    ]
    replaced = render.watch_ended(operation(REPLACE, strategy="replace")).splitlines()
    assert replaced[1] == "  strategy replace" and replaced[2].startswith("  downtime 33 min, from ")


def test_list_has_a_strategy_column_once_an_operation_swaps() -> None:
    swap, replace = operation(SWAP), operation(REPLACE, strategy="replace")
    replace.operation_id = "dev-restore-2026-12-05-020000"

    rows = [re.split(r"\s{2,}", line) for line in render.operations_table([swap, replace]).splitlines()]

    assert rows[0][:4] == ["OPERATION", "STATUS", "STRATEGY", "STEP"]
    assert [row[:3] for row in rows[1:]] == [
        [OP, "completed", "swap"],
        [replace.operation_id, "completed", "replace"],
    ]
    # And a list of replaces looks as it always has
    only = render.operations_table([replace]).splitlines()[0]
    assert re.split(r"\s{2,}", only)[:3] == ["OPERATION", "STATUS", "STEP"]
    # And --json carries each operation's strategy
    listed = json.loads(render.operations_json([swap, replace]))
    assert [row["strategy"] for row in listed] == ["swap", "replace"]


# -- 3: plan's words, its swap model, its quotas, and --strategy ----------------------------------------------
def plan_report(strategy: str) -> dict[str, Any]:
    model = SWAP_DOWNTIME_MODEL_S if strategy == "swap" else DOWNTIME_MODEL_S
    return {
        "would_start": True,
        "reasons": [],
        "target_date": "2026-12-06",
        "strategy": strategy,
        "snapshot": None,
        "copy": None,
        "target": None,
        "settings_carried": {},
        "users": [],
        "masking_rules": [],
        "expected_downtime_s": sum(model.values()),
        "warnings": [],
        "checks": [],
    }


def test_plan_under_swap_estimates_the_switch_and_says_the_old_target_serves_until_then() -> None:
    text = render.plan_text(plan_report("swap"))

    assert "  strategy  swap: the old target keeps serving until the switch (one rename)" in text
    assert "  downtime  about 2 min (an estimate: the switch, one rename" in text
    assert "the old target serves until then" in text
    replaced = render.plan_text(plan_report("replace"))
    assert "  strategy  replace: the target is deleted, then restored under its name" in replaced
    assert "downtime  about 33 min (an estimate: delete, restore and writer" in replaced


def test_the_swap_model_is_the_benchmark_s_rename_and_a_little() -> None:
    # aurora_restore.bench.pipeline.AWS_MINUTES.rename, read from its source (importing it starts moto)
    tree = ast.parse((ROOT / "aurora_restore" / "bench" / "pipeline.py").read_text())
    call = next(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "AWS_MINUTES"
    )
    assert isinstance(call, ast.Call)
    rename = next(keyword.value for keyword in call.keywords if keyword.arg == "rename")
    assert isinstance(rename, ast.Constant)
    assert SWAP_DOWNTIME_MODEL_S["rename into the target's name"] == rename.value * 60
    assert 0 < sum(SWAP_DOWNTIME_MODEL_S.values()) - rename.value * 60 <= 60  # a little for the event


def test_under_swap_the_restored_cluster_stands_beside_the_target_in_the_quotas() -> None:
    target = {"DBClusterIdentifier": "t", "DBClusterMembers": [{"DBInstanceIdentifier": "t-1"}]}
    needs = quota_needs(target, copy_exists=True, final_snapshot=False, swap=True)
    assert needs == {"DBClusters": 1, "DBInstances": 1, "ManualClusterSnapshots": 0}
    assert "stands beside the target until the switch" in quota_note(needs, swap=True)


def test_start_and_plan_take_strategy_as_the_request_s_override() -> None:
    parser = cli.build_parser()
    for command in ("start", "plan"):
        args = parser.parse_args([command, "--date", "2026-12-06", "--strategy", "swap"])
        assert operations.with_strategy({}, args.strategy) == {"strategy": "swap"}
        assert parser.parse_args([command, "--date", "2026-12-06"]).strategy is None
    assert operations.with_strategy({"copy_timeout_minutes": 5}, None) == {"copy_timeout_minutes": 5}
    assert operations.with_strategy({"strategy": "swap"}, "swap") == {"strategy": "swap"}
    with pytest.raises(OperatorError, match="--strategy replace and --override strategy=swap disagree"):
        operations.with_strategy({"strategy": "swap"}, "replace")
    assert arguments.STRATEGIES == tuple(RestoreConfig.model_fields["strategy"].annotation.__args__)  # type: ignore[union-attr]


def test_an_unknown_strategy_is_refused_by_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(["start", "--date", "2026-12-06", "--strategy", "blue-green"])
    assert exited.value.code == 2
    assert "invalid choice: 'blue-green'" in capsys.readouterr().err


# -- 4: the timeline ----------------------------------------------------------------------------------------
def test_the_timeline_of_a_swap_shades_the_switch_alone_and_draws_swap_clusters() -> None:
    root = ET.fromstring(timeline.svg(operation(SWAP), T0 + timedelta(days=1)).encode())
    shown = "\n".join("".join(element.itertext()) for element in root.iter(f"{SVG}text"))

    names = [line for line in shown.splitlines() if line in {row[0] for row in SWAP}]
    assert names == list(dict.fromkeys(row[0] for row in SWAP))  # swap_clusters between verify and delete
    assert "strategy swap" in shown
    assert "target unavailable 2m 12s (the switch)" in shown
    # The shaded stretch spans the switch: from swap_clusters' first run to its success, not the restore
    [shade] = [
        rect
        for rect in root.iter(f"{SVG}rect")
        if rect.get("fill") == "url(#down)" and rect.find(f"{SVG}title") is not None
    ]
    frame = timeline.Frame(T0, T0 + timedelta(minutes=55.2, seconds=0.5))
    assert float(shade.get("x", "0")) == pytest.approx(frame.x(SWITCH_BEGAN), abs=0.1)
    assert float(shade.get("width", "0")) == pytest.approx(
        frame.x(SWITCH_ENDED) - frame.x(SWITCH_BEGAN), abs=0.2
    )


def test_the_timeline_of_a_swap_before_its_switch_shades_nothing() -> None:
    root = ET.fromstring(timeline.svg(before_the_switch("failed"), T0 + timedelta(days=1)).encode())
    assert not [
        rect
        for rect in root.iter(f"{SVG}rect")
        if rect.get("fill") == "url(#down)" and rect.find(f"{SVG}title") is not None
    ]
    assert "strategy swap" in "".join(root.itertext())
