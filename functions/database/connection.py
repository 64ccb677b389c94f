"""Connections to the restored cluster: where they go, how they open, what the server said on failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg2
from pydantic import SecretStr

from functions.errors import DatabaseError


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    dbname: str


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
