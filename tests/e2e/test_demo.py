"""`aurora-restore demo` as the operator sees it: its output, its function log, its timeout."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aurora_restore.demo import run_demo
from functions.sequence import RUNBOOK
from schemas.common import Step

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_completes_with_the_output_the_readme_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a function log left by an earlier demo
    log = tmp_path / "functions.log"
    log.write_text('{"message": "a line of an earlier demo"}\n')

    # When the demo runs
    code = run_demo(log_path=log)

    # Then it completes, with the README's lines and no others: no wait for the operation to appear,
    # no trailing spaces, and a log of this run only
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert re.fullmatch(
        r"COMPLETED: dev-target-cluster restored from dev-source-cluster-snapshot-\S+ in [\d.]+s "
        r"\([\d.]+s with start-up\); users app_user, readonly_user verified on \d+ tables; notification sent; "
        r"copy deleted; lease released",
        lines[-1],
    )
    assert not any("to appear" in line for line in lines), out
    assert [line for line in lines if line != line.rstrip()] == []
    readme = (ROOT / "README.md").read_text()
    sample = readme[readme.index("`make demo` prints:") :].split("```")[1].splitlines()
    kinds = {_kind(line) for line in sample if line}
    assert {_kind(line) for line in lines if line} <= kinds, out
    assert "an earlier demo" not in log.read_text()
    assert "snapshot_check" in log.read_text()
    # And the operation's SVG timeline is beside the log, naming every step
    drawn = [line.removeprefix("timeline SVG: ") for line in lines if line.startswith("timeline SVG: ")]
    assert len(drawn) == 1 and Path(drawn[0]).parent == tmp_path, out
    svg = ET.fromstring(Path(drawn[0]).read_bytes())
    words = {"".join(text.itertext()) for text in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert {step.value for step in RUNBOOK} <= words  # the demo masks nothing: the runbook's ten


def _kind(line: str) -> str:
    """What a demo line is, without its figures: its first two words, or the progress line's mark."""
    progress = re.match(r"\[\s*[\d.]+s\] (\S+)", line)
    if progress:
        return "progress " + progress.group(1)
    words = line.split()
    if words and words[0] in {step.value for step in Step}:
        return "timeline row"
    return " ".join(words[:2])


def test_a_demo_that_times_out_says_so_with_the_step_and_the_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a timeout shorter than the simulated copy (3 s), yet long enough for the first two steps on a
    # busy machine (make test runs another test on each CPU beside this one)
    # When the demo runs
    code = run_demo(timeout=2.5, log_path=tmp_path / "functions.log")

    # Then it fails saying it timed out, at which step, and what the operation is
    out = capsys.readouterr().out
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, out
    assert re.fullmatch(
        r"FAILED at (check_copy_status|copy_snapshot)\b.*: the demo timed out after 2\.5s; "
        r"operation demo-\S+ is still (running|waiting)",
        failed[0],
    ), failed[0]
    assert "None" not in failed[0]


def test_the_demo_under_swap_switches_by_rename_and_says_the_switch_was_the_downtime(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the demo runs with `--strategy swap`
    code = run_demo(log_path=tmp_path / "functions.log", strategy="swap")

    # Then it completes through swap_clusters, the old target deleted after the switch, and says that the
    # target was out of use for the switch only
    out = capsys.readouterr().out
    assert code == 0, out
    assert "overrides: {'strategy': 'swap'}" in out
    table = [
        line.split()[0] for line in out.splitlines() if line and line.split()[0] in {s.value for s in Step}
    ]
    assert table.index("swap_clusters") + 1 == table.index("delete_rds", table.index("swap_clusters"))
    lines = out.splitlines()
    assert lines[-2].startswith("COMPLETED: dev-target-cluster restored from ")
    assert re.fullmatch(r"strategy swap: the target was out of use \d+ s, the switch: from .+", lines[-1]), (
        out
    )
