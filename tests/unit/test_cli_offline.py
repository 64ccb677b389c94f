"""The operator's CLI without AWS: parsing, rendering, help, watching a fake store, and broken pipes.

tests/integration/test_cli.py holds what runs against moto (the state table and the bus) and imports the
helpers here.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from aurora_restore import cli, operations, render
from schemas.common import utcnow
from schemas.events import ErrorInfo
from schemas.state import HistoryEntry, OperationState, Waiting

REGION = "us-west-2"
CLUSTER = "dev-target-cluster"
ROOT = Path(__file__).resolve().parents[2]


# -- helpers (tests/integration/test_cli.py uses them too) ---------------------------------------------------
def operation(operation_id: str = "dev-restore-2026-11-30", **fields: Any) -> OperationState:
    now = utcnow()
    fields.setdefault("config", {"target_cluster_id": CLUSTER, "target_region": REGION})
    return OperationState(
        operation_id=operation_id, target_date=date(2026, 11, 30), created_at=now, updated_at=now, **fields
    )


def copy_wait(waiting_for: str) -> Waiting:
    """Waiting for the copy since now: the next check in a minute, the deadline in four hours."""
    now = utcnow()
    return Waiting(
        step="check_copy_status",
        waiting_for=waiting_for,
        next_check_at=now + timedelta(minutes=1),
        deadline=now + timedelta(hours=4),
        since=now,
    )


def failed_at_snapshot_check(operation_id: str, error_type: str, message: str) -> OperationState:
    """Failed at the first step, before it took the lease (no snapshot, another operation's lease)."""
    return operation(
        operation_id,
        status="failed",
        failed_step="snapshot_check",
        error=ErrorInfo(type=error_type, message=message, retryable=False),
    )


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def help_text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        cli.main([*argv, "--help"])
    assert exited.value.code == 0
    return " ".join(capsys.readouterr().out.split())


# -- 1, 2: overrides as their fields take them ---------------------------------------------------------------
def test_overrides_are_taken_as_their_fields_take_them() -> None:
    # Given overrides written as an operator would
    pairs = [
        "copy_timeout_minutes=5",
        'expected_tables=["public.users", "public.orders"]',
        "engine_version=15.4",  # JSON would make it a number: the field takes text
        "instance_class=db.r6g.xlarge",
        "delete_logs=true",
        "kms_key_id=null",
    ]

    # When parsed
    overrides = operations.parse_overrides(pairs)

    # Then each holds the value its field takes
    assert overrides == {
        "copy_timeout_minutes": 5,
        "expected_tables": ["public.users", "public.orders"],
        "engine_version": "15.4",
        "instance_class": "db.r6g.xlarge",
        "delete_logs": True,
        "kms_key_id": None,
    }


# -- 3: a reader that goes away ------------------------------------------------------------------------------
def _with_closed_stdout(argv: list[str], lines: int) -> subprocess.CompletedProcess[str]:
    """Run cli.main(argv) in a child whose stdout's reader is gone before it writes (as `| head -1` ends):
    the command (status) prints `lines` lines; the child waits for its stdin to close before running."""
    script = textwrap.dedent(
        f"""
        import sys
        from aurora_restore import cli
        def status(args):
            for n in range({lines}):
                print("line", n)
            return 0
        cli.cmd_status = status
        sys.stdin.read()
        sys.exit(cli.main({argv!r}))
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None and child.stdin is not None and child.stderr is not None
    child.stdout.close()  # the reader is gone
    child.stdin.close()  # now the child runs
    err = child.stderr.read()
    code = child.wait(timeout=60)
    return subprocess.CompletedProcess(child.args, code, "", err)


@pytest.mark.parametrize("lines", [1, 100_000])
def test_output_into_a_closed_pipe_ends_quietly(lines: int) -> None:
    # Given a command whose output goes to a pipe nobody reads any more (`aurora-restore status OP | head -1`)
    # When it prints (a line that stays in the buffer until exit, or more than the pipe holds)
    done = _with_closed_stdout(["status", "OP"], lines)

    # Then it ends quietly, as a shell reports a pipe closed on a writer
    assert done.stderr == ""
    assert done.returncode == cli.EXIT_PIPE_CLOSED


def test_help_into_a_closed_pipe_ends_quietly() -> None:
    # Given `aurora-restore --help | head -1`, its reader gone
    # When argparse prints the help and exits
    done = _with_closed_stdout(["--help"], 0)

    # Then nothing is said on stderr either
    assert done.stderr == ""


# -- 4: watch ------------------------------------------------------------------------------------------------
class _AppearsLater:
    """A store that has the operation from its `after`-th read on."""

    def __init__(self, state: OperationState, after: int) -> None:
        self.state, self.after, self.reads = state, after, 0

    def get(self, operation_id: str) -> OperationState | None:
        self.reads += 1
        return self.state if self.reads > self.after else None


class _FakeTarget:
    def __init__(self, store: Any) -> None:
        self._store = store

    def store(self) -> Any:
        return self._store


def _completed() -> OperationState:
    now = utcnow()
    entry = HistoryEntry(
        step="snapshot_check",
        outcome="success",
        message="Snapshot exists",
        trigger="RestoreRequested",
        started_at=now,
        finished_at=now,
    )
    return operation("op-1", status="completed", history=[entry])


class Lines:
    """A terminal that keeps what is written to it."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def write(self, text: str) -> None:
        self.written.append(text)

    def flush(self) -> None:
        pass


def test_watch_does_not_announce_a_wait_for_an_operation_that_appears_at_once() -> None:
    # Given an operation that is in the store from the second read on (its first step wrote it meanwhile)
    store = _AppearsLater(_completed(), after=1)
    out = Lines()

    # When watched
    state = cli.watch(_FakeTarget(store), "op-1", poll=0.01, out=out)  # type: ignore[arg-type]

    # Then only its progress is printed, not a wait for it to appear
    assert state is not None and state.status == "completed"
    text = "".join(out.written)
    assert "waiting for" not in text
    assert "Snapshot exists" in text


def test_watch_announces_a_wait_for_an_operation_that_is_slow_to_appear() -> None:
    # Given an operation that is not in the store for a while
    store = _AppearsLater(_completed(), after=30)
    out = Lines()

    # When watched (with the announcement due after 0.05 s)
    cli.watch(_FakeTarget(store), "op-1", poll=0.01, out=out, announce_after=0.05)  # type: ignore[arg-type]

    # Then the wait is announced once
    assert "".join(out.written).count("waiting for op-1 to appear ...") == 1


# -- 9: status -----------------------------------------------------------------------------------------------
def test_status_of_a_waiting_operation_gives_its_times_in_utc() -> None:
    # Given an operation waiting for its copy
    waiting = copy_wait("snapshot copy")
    state = operation("op-1", status="waiting", waiting=waiting)

    # When shown
    text = render.status_text(state)

    # Then the next check and the deadline both say UTC
    assert f"next check {waiting.next_check_at:%H:%M:%S} UTC, deadline " in text
    assert f"deadline {waiting.deadline:%Y-%m-%d %H:%M:%S} UTC" in text


def test_status_says_how_long_the_target_has_been_out_of_use() -> None:
    # Given an operation whose delete_rds started deleting the target at 08:25, restoring since
    began = utcnow().replace(hour=8, minute=0, second=0, microsecond=0)

    def entry(step: str, outcome: str, minute: int) -> HistoryEntry:
        at = began + timedelta(minutes=minute)
        return HistoryEntry(
            step=step, outcome=outcome, message="-", trigger="StepCompleted", started_at=at, finished_at=at
        )

    state = operation(
        "op-1",
        status="running",
        next_step="check_restore_status",
        outputs={"deletion_started": True},
        history=[entry("delete_rds", "waiting", 25), entry("delete_rds", "success", 33)],
    )
    state.created_at = began

    # Then its status says since when, and that it is not back yet
    assert (
        f"downtime    since {began:%Y-%m-%d} 08:25:00 UTC (the deletion): the target is not back in use yet"
        in (render.status_text(state))
    )

    # And once the users are set up on the restored cluster, for how long it was
    state.history.append(entry("setup_db_users", "success", 58))
    state.status, state.next_step = "completed", None
    assert f"downtime    33 min, from {began:%Y-%m-%d} 08:25:00 UTC (the deletion) to the users set up" in (
        render.status_text(state)
    )

    # And an operation that deleted nothing has no such line
    assert "downtime" not in render.status_text(operation("op-2"))


# -- 8: timeline ---------------------------------------------------------------------------------------------
def test_timeline_rows_have_no_trailing_spaces() -> None:
    # Given an operation whose steps were advanced by triggers of different lengths
    now = utcnow()

    def entry(step: str, trigger: str, outcome: str = "success") -> HistoryEntry:
        return HistoryEntry(
            step=step, outcome=outcome, message="m", trigger=trigger, started_at=now, finished_at=now
        )

    state = operation(
        "op-1",
        history=[
            entry("snapshot_check", "RestoreRequested"),
            entry("check_copy_status", "StepCompleted", "waiting"),
            entry("check_copy_status", "RecheckDue"),
            entry("cleanup", "StepCompleted"),
        ],
    )

    # When its timeline is rendered
    lines = render.timeline(state, []).splitlines()

    # Then no line ends in a space
    assert len(lines) == 5
    assert [line for line in lines if line != line.rstrip()] == []


# -- list ----------------------------------------------------------------------------------------------------
def test_list_refuses_a_limit_that_is_not_a_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["list", "--limit", "-3"])
    assert exited.value.code == cli.EXIT_USAGE
    assert "'-3' is not a count (0 for all)" in capsys.readouterr().err


def test_a_long_error_is_cut_in_the_list_and_whole_in_status() -> None:
    state = failed_at_snapshot_check("op-1", "LeaseHeld", "x" * 200)
    note = render.note_of(state)
    assert len(note) == render.NOTE_CHARS and note.endswith("...")
    assert "x" * 200 in render.status_text(state)


# -- 13: help ------------------------------------------------------------------------------------------------
def test_invoke_help_says_the_choreography_carries_on_and_names_the_steps_one_way(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from schemas.common import Step

    # When the operator reads invoke's help
    text = help_text(capsys, "invoke")

    # Then it says the step's StepCompleted drives the rest, and names every step in kebab case only
    assert "StepCompleted event starts the next step" in text
    assert "the choreography is always on" in text.lower()
    assert ", ".join(step.kebab for step in Step) in text
    assert "snapshot_check" not in text


def test_demo_timeout_and_status_json_have_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert "give up if the restore has not ended this many seconds" in help_text(capsys, "demo")
    assert "--json the state item as JSON" in help_text(capsys, "status")


def test_a_cli_command_does_not_import_chaos() -> None:
    # Given a fresh interpreter
    # When the parser is built (every command builds it)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from aurora_restore import cli; cli.build_parser(); print('aurora_restore.chaos' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )

    # Then the chaos module (moto, seconds to import) is not loaded
    assert done.stdout.strip() == "False"


# -- settings ------------------------------------------------------------------------------------------------
def test_a_bad_function_setting_is_named_without_pydantics_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.errors import ConfigError
    from functions.settings import get_settings

    monkeypatch.setenv("AWS_REGION", REGION)  # else the missing region is all it says
    monkeypatch.setenv("AURORA_RESTORE_ENV", "Dev Env")
    get_settings.cache_clear()
    with pytest.raises(ConfigError) as raised:
        get_settings()
    get_settings.cache_clear()

    assert raised.value.message.startswith("invalid function settings: environment: String should match")
    assert "input_value" not in raised.value.message and "errors.pydantic.dev" not in raised.value.message


# -- local serve --source-account -----------------------------------------------------------------------------
def test_local_serve_takes_a_source_account_and_passes_it_to_the_runtime(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import types

    served: dict[str, Any] = {}
    fake = types.ModuleType("aurora_restore.local.serve")  # the real one starts moto's server
    fake.serve = lambda env_file, log, **options: served.update(options)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "aurora_restore.local.serve", fake)
    assert (
        cli.main(["local", "serve", "--env-file", str(tmp_path / "env"), "--source-account", "111111111111"])
        == 0
    )
    assert served == {"rds": "fast", "source_account": "111111111111"}


@pytest.mark.parametrize("account", ["11111111111", "abcdefghijkl", "123456789012"])
def test_local_serve_refuses_a_source_account_that_is_no_other_account(
    account: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["local", "serve", "--env-file", str(tmp_path / "env"), "--source-account", account])
    assert exited.value.code == cli.EXIT_USAGE
    assert "--source-account" in capsys.readouterr().err
