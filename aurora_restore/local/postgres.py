"""The one way we start a PostgreSQL server: from the machine's binaries, on 127.0.0.1, in a temporary folder.

PostgreSQL refuses to run as root, so as root initdb and pg_ctl run through `runuser -u postgres --`.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

SUPERUSER = "postgres"


# How long initdb or pg_ctl may take.
TOOL_TIMEOUT = 120


class PostgresUnavailable(RuntimeError):
    pass


def _wait_out(process: subprocess.Popen[str], timeout: float = TOOL_TIMEOUT) -> None:
    """Wait for `process` to end (reading its pipes), through further Ctrl-Cs; kill it if it takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            process.communicate(timeout=max(0.1, deadline - time.monotonic()))
            return
        except subprocess.TimeoutExpired:
            process.kill()
        except KeyboardInterrupt:
            continue


def find_bindir() -> Path:
    """Where initdb and pg_ctl are: `pg_config --bindir`, else Debian's versioned folders."""
    candidates: list[str] = []
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            candidates.append(out.stdout.strip())
        except (subprocess.SubprocessError, OSError):
            pass
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them, for example "
        "`apt-get update && apt-get install -y postgresql`, then run this again."
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A throwaway server. Superuser `postgres` with a random password; host logins use SCRAM-SHA-256."""

    def __init__(self, port: int | None = None) -> None:
        self.bindir = find_bindir()
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.password = SecretStr(secrets.token_urlsafe(24))
        self._root = Path(tempfile.mkdtemp(prefix="aurora-restore-pg-"))
        self.datadir = self._root / "data"
        self.logfile = self._root / "server.log"
        self._as_root = os.geteuid() == 0
        self.started = False

    def _run(self, *args: str, finish_if_interrupted: bool = False) -> subprocess.CompletedProcess[str]:
        """Run one of PostgreSQL's tools (through runuser as root); PostgresUnavailable when it fails.

        It runs in a session of its own, so a Ctrl-C at the terminal reaches only us. Interrupted, we kill it,
        or, with `finish_if_interrupted` (pg_ctl start: killing it would orphan the server it launched),
        let it finish so that the server it started has its pid file and can be stopped; then re-raise."""
        command = list(args)
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=TOOL_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.communicate()
            raise PostgresUnavailable(f"{Path(args[0]).name} did not finish in {TOOL_TIMEOUT} s") from exc
        except BaseException:
            if finish_if_interrupted:
                _wait_out(process)
            else:
                process.kill()
                _wait_out(process)
            raise
        if process.returncode != 0:
            raise PostgresUnavailable(f"{Path(args[0]).name} failed: {stderr.strip() or stdout.strip()}")
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    def start(self) -> PostgresServer:
        """initdb and start the server. Interrupted or failed part way (Ctrl-C included), whatever was
        started is stopped and the folder removed before the exception goes on."""
        try:
            self._start()
        except BaseException:
            self._discard()
            raise
        return self

    def _start(self) -> None:
        pwfile = self._root / "pwfile"
        pwfile.write_text(self.password.get_secret_value() + "\n")
        pwfile.chmod(0o600)
        if self._as_root:
            shutil.chown(self._root, user="postgres")
            shutil.chown(pwfile, user="postgres")
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--no-sync",
        )
        pwfile.unlink()
        options = (
            f"-p {self.port} -c listen_addresses={self.host} -c unix_socket_directories={self._root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 "
            "-c password_encryption=scram-sha-256"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-o",
            options,
            "-w",
            "start",
            finish_if_interrupted=True,
        )
        self.started = True

    def stop(self) -> None:
        if self.started or (self.datadir / "postmaster.pid").exists():
            try:
                self._run(
                    str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"
                )
            except PostgresUnavailable:
                pass
            self.started = False
        shutil.rmtree(self._root, ignore_errors=True)

    def _discard(self) -> None:
        """After a start that did not complete: stop the server if it got as far as running, remove the folder.
        A second Ctrl-C meanwhile does not cut this short."""
        while True:
            try:
                self.stop()
                return
            except KeyboardInterrupt:
                continue

    def dsn(self, dbname: str = "postgres") -> str:
        """Host and port only: the password never travels in a DSN."""
        return f"host={self.host} port={self.port} dbname={dbname}"

    def connect(self, dbname: str = "postgres", *, autocommit: bool = True):  # type: ignore[no-untyped-def]
        import psycopg2

        conn = psycopg2.connect(
            host=self.host,
            port=self.port,
            dbname=dbname,
            user=SUPERUSER,
            password=self.password.get_secret_value(),
        )
        conn.autocommit = autocommit
        return conn

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    # `python -m aurora_restore.local.postgres`: say where the binaries are, or exactly what is missing.
    import sys

    try:
        print(f"PostgreSQL server binaries: {find_bindir()}")
    except PostgresUnavailable as missing:
        sys.exit(str(missing))
