"""Connections to the restored cluster: where they go, how they open, what the server said on failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg2
from pydantic import SecretStr

from functions.errors import DatabaseError


@dataclass(frozen=True)
class Endpoint:
    """Where a connection goes: host, port and database."""

    host: str
    port: int
    dbname: str


@dataclass(frozen=True)
class EndpointOverride:
    """A stand-in database that answers for the cluster's endpoint: the seam the local runtime plugs into.

    Production never has one. The local runtime runs no Aurora cluster; it names its own PostgreSQL in a
    libpq keyword/value string, host and port only, never a password (Settings.pg_dsn, from
    AURORA_RESTORE_PG_DSN). Connections then go there, to the restore's database name all the same.
    """

    host: str = "127.0.0.1"
    port: int = 5432

    @classmethod
    def parse(cls, dsn: str) -> EndpointOverride:
        """`host=... port=...` (other keywords ignored); a keyword left out keeps its default."""
        parts = dict(item.split("=", 1) for item in dsn.split() if "=" in item)
        return cls(host=parts.get("host", cls.host), port=int(parts.get("port", str(cls.port))))

    def endpoint(self, dbname: str) -> Endpoint:
        return Endpoint(host=self.host, port=self.port, dbname=dbname)


def stand_in_database(cluster_id: str) -> str:
    """The stand-in's database for a cluster that does not hold the target's name (the cluster a swap
    restores beside it): its identifier with `_` for `-`. The local runtime names them so
    (aurora_restore.local.runtime.LocalRuntime.database_for); the target's is the configured database."""
    return cluster_id.replace("-", "_")


def target_endpoint(
    host: str, port: int, dbname: str, *, stand_in: str | None = None, beside: str | None = None
) -> Endpoint:
    """Where the steps connect: the cluster's endpoint, or the stand-in `stand_in` names (EndpointOverride).
    `beside`: the cluster connected to does not hold the target's name, and on the stand-in answers in a
    database of its own, as a cluster endpoint reaches its own cluster on AWS."""
    if stand_in:
        return EndpointOverride.parse(stand_in).endpoint(stand_in_database(beside) if beside else dbname)
    return Endpoint(host=host, port=port, dbname=dbname)


def connect(endpoint: Endpoint, user: str, password: SecretStr, *, timeout: int = 10) -> Any:
    try:
        return psycopg2.connect(
            host=endpoint.host,
            port=endpoint.port,
            dbname=endpoint.dbname,
            user=user,
            password=password.get_secret_value(),
            connect_timeout=timeout,
            application_name="aurora-restore",
        )
    except psycopg2.OperationalError as exc:
        # psycopg2 never echoes the password; keep only the first line of the server's answer.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseError(
            f"cannot connect to {endpoint.host}:{endpoint.port}/{endpoint.dbname} as {user}: {first_line}",
            retryable=True,
        ) from exc


def server_message(exc: Exception) -> str:
    """The server's primary message only: never the statement text, which may carry a password verifier."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    return str(primary or type(exc).__name__)
