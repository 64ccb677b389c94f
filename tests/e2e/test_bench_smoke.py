"""The benchmark's quick run end to end: it writes every required figure, measured, not assumed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from build_lock import build_lock

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def test_quick_bench_writes_the_figures_and_the_choreography_calls_aws_less(tmp_path: Path) -> None:
    # Given a quick benchmark run writing its JSON to a temporary file
    output = tmp_path / "bench-results.json"

    # When it runs as `make bench` would run it
    with build_lock():  # it reads build/lambda/'s artifact, which tests/infra/test_package.py writes
        run = subprocess.run(
            [sys.executable, "-m", "aurora_restore.bench", "--quick", "--output", str(output)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=480,  # the three contenders twice: on the fast and on the realistic simulated RDS
        )

    # Then it succeeded, printed its table and wrote every required key
    assert run.returncode == 0, run.stderr[-3000:]
    assert "polling runbook" in run.stdout
    results = json.loads(output.read_text())
    pipeline = results["pipeline"]
    for contender in ("choreography", "polling_runbook"):
        for key in ("invocations_per_op", "rds_api_calls_per_op", "overhead_s", "e2e_s"):
            assert isinstance(pipeline[contender][key], int | float), (contender, key)
        assert pipeline[contender]["status"] == "completed"
        # every step counted, cleanup included (it runs after the operation is recorded completed)
        assert pipeline[contender]["invocations"]["by_function"].get("cleanup", 0) >= 1, contender
        # and the invocations that raised (the functions' errors alarms count them), by exception type
        raised = pipeline[contender]["invocations"]["raised"]
        assert all(isinstance(count, int) and count > 0 for count in raised.values()), raised
    assert results["scale"]["operations"] > 0
    assert results["scale"]["completed"] == results["scale"]["operations"]
    assert results["cold_start"]["max_import_ms"] > 0
    # the artifact unpacked as Lambda does: its bytecode spares the compiling (unless it could not be built)
    probe = results["cold_start"]["artifact_probe"]
    assert "note" in probe or probe["sources_only"]["max_import_ms"] > probe["bytecode"]["max_import_ms"]
    # and the artifact's size is reported whenever one was built (by `make package` or by that probe)
    assert "note" in probe or results["cold_start"]["artifact"]["mb"] > 0
    # the slowest import split: the libraries it loads, timed alone in a fresh interpreter, botocore among them
    cold = results["cold_start"]
    assert 0 < cold["slowest_libraries_ms"]
    assert {"botocore", "pydantic", "aws_lambda_powertools"} <= set(cold["slowest_libraries"]["third_party"])
    # ours: the handler's import less its libraries', the two timed in alternation
    paired = cold["slowest_libraries"]["handler_ms"]
    assert 0 < paired
    assert cold["slowest_own_ms"] == pytest.approx(max(0.0, paired - cold["slowest_libraries_ms"]), abs=0.2)
    assert {"setup_users_1000_s", "verify_10000_tables_s"} <= set(results["db"])
    # the invocations RDS events started, counted by the resource they name: those ignored or raised
    # name no operation in their answer
    for contender in ("choreography", "polling_runbook"):
        rds = pipeline[contender]["invocations"]["rds_triggered"]
        assert set(rds) == {"total", "ignored", "raised"} and rds["total"] >= rds["ignored"] + rds["raised"]
    assert pipeline["choreography"]["invocations"]["rds_triggered"]["total"] > 0
    assert results["scale"]["rds_triggered"]["total"] > 0
    # and the users set up on a database that has tables too, beside the empty one
    assert "setup_users_1000_on_tables_s" in results["db"]
    on_tables = results["db"]["setup_users"]["on_tables"]
    assert on_tables["tables"] > 0 and on_tables["seconds"] > 0 and on_tables["users"] == 100
    # a role with a password costs the server more than one without (its secret is checked), and the
    # CPU-bound estimate is that work for every user spread over the CPUs as far as they run side by side
    per_role = results["db"]["setup_users"]["per_role"]
    assert per_role["server_secret_check_ms"] > 0 and per_role["client_verifier_ms"] > 0
    users = results["db"]["setup_users"]["users"]
    assert 1 <= per_role["parallel_speedup"] <= per_role["cpus"]
    work_s = users * (per_role["client_verifier_ms"] + per_role["server_role_ms"]) / 1000
    expected = work_s / per_role["parallel_speedup"]
    assert per_role["cpu_bound_s"] == pytest.approx(expected, abs=0.02)
    # verify with many users read their privileges for a few groups of alike tables, not table by table
    many = results["db"]["verify"]["many_users"]
    assert many["users"] == 20 and many["verify_s"] > 0
    assert 1 <= many["groups"] < results["db"]["verify"]["tables"]
    assert "verified for 20 users" in run.stdout
    # and set up again on them, against revoking and granting everything again (both figures reported)
    assert 0 < many["setup_again_s"] and many["revoke_and_grant_all_again_s"] > 0
    assert "again" in run.stdout
    # and both contenders did the same simulated AWS work, the choreography with fewer calls
    choreography, polling = pipeline["choreography"], pipeline["polling_runbook"]
    assert choreography["aws_work_s"] == pytest.approx(polling["aws_work_s"], rel=0.05)
    assert choreography["rds_api_calls_per_op"] < polling["rds_api_calls_per_op"]
    assert choreography["invocations_per_op"] < polling["invocations_per_op"]
    # and again on the realistic RDS profile, with the same keys, each completed, the choreography calling less
    realistic = results["pipeline_realistic"]
    assert realistic.keys() == pipeline.keys()
    for contender in ("choreography", "polling_runbook"):
        assert realistic[contender].keys() == pipeline[contender].keys()
        assert realistic[contender]["status"] == "completed"
    assert (
        realistic["choreography"]["invocations_per_op"] < realistic["polling_runbook"]["invocations_per_op"]
    )
    assert (
        realistic["choreography"]["rds_api_calls_per_op"]
        < realistic["polling_runbook"]["rds_api_calls_per_op"]
    )
    assert "one restore, realistic RDS" in run.stdout
    # and the swap strategy's restore on the same simulated durations, read with the same keys, completed,
    # its downtime the switch (two renames of about two AWS minutes, back to back), not the whole restore
    for measured in (pipeline, realistic):
        assert measured["swap"].keys() == measured["choreography"].keys()
        assert measured["swap"]["status"] == "completed"
        assert measured["swap"]["invocations"]["by_function"].get("swap_clusters", 0) >= 1
        assert 0 < measured["swap"]["downtime_s"] < measured["choreography"]["downtime_s"]
    rename_s = results["time_scale"]["aws_minutes"]["rename"] * 60
    assert rename_s <= pipeline["swap"]["downtime_s"] < rename_s + 60
    assert "swap downtime <= 120 s" in run.stdout
    # and masking, measured against one md5 UPDATE over the same rows in the same run (the 1m figures
    # themselves are null in --quick, which masks fewer rows)
    assert {"mask_1m_rows_s", "mask_baseline_s"} <= set(results["db"])
    masking = results["db"]["masking"]
    assert masking["rows"] == sum(masking["tables"].values()) > 0 and len(masking["tables"]) >= 2
    assert masking["mask_s"] > 0 and masking["baseline_s"] > 0
    assert masking["ratio"] == pytest.approx(masking["mask_s"] / masking["baseline_s"], abs=0.01)
    assert "rows masked <= 2x one md5 UPDATE" in run.stdout and "masked in" in run.stdout
