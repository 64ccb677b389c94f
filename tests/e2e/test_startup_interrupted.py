"""Ctrl-C while the local runtime starts (`aurora-restore demo`, `local serve`): nothing is left running.

KeyboardInterrupt is a BaseException: cleanup written as `except Exception` misses it, and a PostgreSQL
server started by pg_ctl (in a session of its own) outlives us, reparented to PID 1, with its folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aurora_restore.local import postgres
from aurora_restore.local.invoke import InvokeServer
from aurora_restore.local.postgres import PostgresServer
from aurora_restore.local.runtime import LocalRuntime, RuntimeOptions

pytestmark = pytest.mark.e2e


def processes_using(folder: Path) -> list[str]:
    """Command lines of the live processes that name `folder` (a server's data folder is on its own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[PostgresServer]]:
    """Every PostgresServer made in the test; any still running afterwards is stopped (and fails the test)."""
    made: list[PostgresServer] = []
    original = PostgresServer.__init__

    def init(self: PostgresServer, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(PostgresServer, "__init__", init)
    yield made
    for server in made:
        if processes_using(server._root):
            server.stop()


def interrupt_after_pg_ctl_start(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Ctrl-C right after `pg_ctl start` returned: the server is up. Returns (after) the server's pid."""
    pids: list[int] = []
    real_run = PostgresServer._run

    def run(self: PostgresServer, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        done = real_run(self, *args, **kwargs)
        if args[-1] == "start":
            pids.append(int((self.datadir / "postmaster.pid").read_text().split()[0]))
            raise KeyboardInterrupt
        return done

    monkeypatch.setattr(PostgresServer, "_run", run)
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone but for its exit status.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def test_ctrl_c_right_after_the_server_started_stops_it_and_removes_its_folder(
    monkeypatch: pytest.MonkeyPatch, servers: list[PostgresServer]
) -> None:
    # Given a Ctrl-C that arrives right after pg_ctl started the server
    pids = interrupt_after_pg_ctl_start(monkeypatch)

    # When a server is started
    with pytest.raises(KeyboardInterrupt):
        PostgresServer().start()

    # Then the interruption goes on, the server that was up is stopped and its folder is gone
    [server] = servers
    [pid] = pids
    assert not alive(pid)
    assert processes_using(server._root) == []
    assert not server._root.exists()


def test_ctrl_c_while_pg_ctl_starts_the_server_stops_it_once_it_is_up_and_removes_its_folder(
    monkeypatch: pytest.MonkeyPatch, servers: list[PostgresServer]
) -> None:
    # Given a Ctrl-C that arrives while `pg_ctl start` is still running (it launched the server, in a
    # session of its own, and waits for it to accept connections)
    real_communicate = subprocess.Popen.communicate
    interrupted: list[list[str]] = []

    def communicate(self: subprocess.Popen[str], *args: Any, **kwargs: Any) -> Any:
        if isinstance(self.args, list) and self.args[-1] == "start" and not interrupted:
            interrupted.append(list(self.args))
            raise KeyboardInterrupt
        return real_communicate(self, *args, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "communicate", communicate)

    # When a server is started
    with pytest.raises(KeyboardInterrupt):
        PostgresServer().start()

    # Then pg_ctl was interrupted, and yet no server is left and its folder is gone
    assert interrupted
    [server] = servers
    assert processes_using(server._root) == []
    assert not server._root.exists()


def test_a_failing_start_removes_its_folder(
    monkeypatch: pytest.MonkeyPatch, servers: list[PostgresServer]
) -> None:
    # Given initdb failing
    real_run = PostgresServer._run

    def run(self: PostgresServer, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if Path(args[0]).name == "initdb":
            raise postgres.PostgresUnavailable("initdb failed: no space left on device")
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(PostgresServer, "_run", run)

    # When a server is started
    with pytest.raises(postgres.PostgresUnavailable):
        PostgresServer().start()

    # Then its temporary folder is gone
    [server] = servers
    assert not server._root.exists()


def port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


@pytest.mark.parametrize("where", ["postgres", "invoke endpoint"])
def test_ctrl_c_during_runtime_start_up_stops_everything_it_started(
    monkeypatch: pytest.MonkeyPatch,
    servers: list[PostgresServer],
    where: str,
) -> None:
    # Given a Ctrl-C during the local runtime's start-up: right after PostgreSQL is up, or at the very end
    # (moto's server, PostgreSQL, the workers, reconciler and scheduler threads all running)
    before = {name: os.environ.get(name) for name in ("AWS_ENDPOINT_URL", "AURORA_RESTORE_PG_DSN")}
    pids: list[int] = []
    if where == "postgres":
        pids = interrupt_after_pg_ctl_start(monkeypatch)
    else:

        def interrupted(self: InvokeServer) -> InvokeServer:
            raise KeyboardInterrupt

        monkeypatch.setattr(InvokeServer, "start", interrupted)
    runtime = LocalRuntime(RuntimeOptions(log_path=None))

    # When the runtime starts
    with pytest.raises(KeyboardInterrupt):
        runtime.start()

    # Then the interruption goes on, and nothing it started is left: no server, no folder, no moto server,
    # no thread, none of its environment variables
    [server] = servers
    assert all(not alive(pid) for pid in pids)
    assert processes_using(server._root) == []
    assert not server._root.exists()
    assert not port_open(runtime.moto.url)
    assert [thread.name for thread in runtime._threads if thread.is_alive()] == []
    assert {name: os.environ.get(name) for name in before} == before
    if where == "invoke endpoint":
        assert len(runtime._threads) > 0  # the threads had started


def test_the_runtime_started_and_stopped_leaves_no_server(servers: list[PostgresServer]) -> None:
    # Given a runtime that started normally
    runtime = LocalRuntime(RuntimeOptions(log_path=None)).start()

    # When it is stopped
    runtime.stop()

    # Then its server and folder are gone
    [server] = servers
    assert processes_using(server._root) == []
    assert not server._root.exists()
