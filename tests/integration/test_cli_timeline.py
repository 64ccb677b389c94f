"""`aurora-restore timeline OP --out FILE.svg` against moto's state table: it reads the operation as `status`
does, writes one standalone SVG holding every step's name, prints its path, and says so when it cannot."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from unit.test_cli_offline import REGION, run
from unit.test_timeline_svg import COMPLETED, failed, state

from aurora_restore import cli
from aurora_restore.operations import Target
from integration.world import create_state_table
from schemas.state import OperationState

pytestmark = pytest.mark.integration

TARGET = Target("dev", REGION)
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def table(mocked_aws: None) -> None:
    create_state_table(TARGET.table, REGION)


def drawn(path: Path) -> str:
    """The SVG's visible words, after checking it is one standalone SVG document."""
    text = path.read_text(encoding="utf-8")
    root = ET.fromstring(text.encode())
    assert root.tag == f"{SVG}svg"
    assert "<script" not in text and "href" not in text
    return "\n".join("".join(element.itertext()) for element in root.iter(f"{SVG}text"))


@pytest.mark.parametrize(
    ("operation", "status"),
    [(state(COMPLETED, operation_id="restored"), "completed"), (failed(), "failed")],
    ids=["completed", "failed"],
)
def test_timeline_writes_the_operation_as_an_svg_with_every_step_and_prints_its_path(
    table: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], operation: OperationState, status: str
) -> None:
    # Given an operation in the environment's state table
    TARGET.store().create(operation)
    out = tmp_path / "timeline.svg"

    # When the operator draws it
    code, printed, err = run(capsys, "timeline", operation.operation_id, "--out", str(out))

    # Then it exits 0 and prints the file's path, which holds every step that ran and the operation's status
    assert (code, err) == (cli.EXIT_OK, "")
    assert printed == f"{out}\n"
    words = drawn(out)
    for step in {entry.step for entry in operation.history}:
        assert step in words.splitlines(), step
    assert operation.operation_id in words and f"status {status}" in words


def test_timeline_of_an_unknown_operation_says_so_and_writes_nothing(
    table: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "timeline.svg"

    code, printed, err = run(capsys, "timeline", "no-such-operation", "--out", str(out))

    assert code == cli.EXIT_FAILED and printed == ""
    assert err == f"aurora-restore: no operation no-such-operation in {TARGET.table} ({REGION})\n"
    assert not out.exists()


def test_timeline_that_cannot_write_its_file_says_why_in_one_line(
    table: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    TARGET.store().create(failed())

    code, printed, err = run(capsys, "timeline", failed().operation_id, "--out", str(tmp_path))

    assert code == cli.EXIT_FAILED and printed == ""
    assert err == f"aurora-restore: cannot write the timeline to {tmp_path}: Is a directory\n"
