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
from pathlib import Path

from pydantic import SecretStr

SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    pass


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

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"{Path(args[0]).name} failed: {result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def start(self) -> PostgresServer:
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
        )
        self.started = True
        return self

    def stop(self) -> None:
        if self.started:
            try:
                self._run(
                    str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"
                )
            except PostgresUnavailable:
                pass
            self.started = False
        shutil.rmtree(self._root, ignore_errors=True)

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
