"""Post-restore SQL: each script fetched from S3, checked against its SHA-256, run once in its own transaction.

A script runs as the cluster's master in one transaction with a row in a ledger table of the restored
database (`aurora_restore_sql.ran`): a crash between its commit and the step's record cannot run it twice.
What a script returns or prints is never read or kept: only PostgreSQL's command tag of its last statement.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import psycopg2
from botocore.exceptions import ClientError

from functions import aws
from functions.errors import AwsError, ConfigError, DatabaseError
from schemas.outputs import ScriptRun
from schemas.post_restore import PostRestoreScript

LEDGER_SCHEMA = "aurora_restore_sql"
# A script is SQL someone reviewed, not a dump: a larger object is refused rather than held in memory.
MAX_SCRIPT_BYTES = 10 * 1024 * 1024


def fetch(script: PostRestoreScript, region: str) -> str:
    """The script's text, once its SHA-256 is the configured one (else nothing of it runs)."""
    try:
        answer = aws.client("s3", region).get_object(Bucket=script.bucket, Key=script.key)
        body: bytes = answer["Body"].read(MAX_SCRIPT_BYTES + 1)
    except ClientError as exc:
        code = aws.error_code(exc)
        if aws.is_transient(exc):
            raise AwsError(f"post_restore_sql {script.uri}: S3 GetObject {code}", retryable=True) from exc
        raise ConfigError(f"post_restore_sql {script.uri}: S3 GetObject {code}") from exc
    if len(body) > MAX_SCRIPT_BYTES:
        raise ConfigError(f"post_restore_sql {script.uri} is over {MAX_SCRIPT_BYTES // 1024 // 1024} MB")
    digest = hashlib.sha256(body).hexdigest()
    if digest != script.sha256:
        raise ConfigError(
            f"post_restore_sql {script.uri}: its SHA-256 is {digest}, not the configured {script.sha256}:"
            " it was not run"
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"post_restore_sql {script.uri} is not UTF-8 text") from None


def _ledger(conn: Any) -> None:
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {LEDGER_SCHEMA}")
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {LEDGER_SCHEMA}.ran (operation_id text, uri text, sha256 text,"
            " status text, seconds double precision, PRIMARY KEY (operation_id, uri, sha256))"
        )
    conn.commit()


def already_run(conn: Any, operation_id: str) -> list[ScriptRun]:
    """The scripts this operation ran, as the ledger holds them."""
    _ledger(conn)
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT uri, sha256, status, seconds FROM aurora_restore_sql.ran WHERE operation_id = %s",
            (operation_id,),
        )
        rows = cursor.fetchall()
    conn.commit()
    return [ScriptRun(uri=u, sha256=h, status=s, seconds=t) for u, h, s, t in rows]


def run(conn: Any, operation_id: str, script: PostRestoreScript, text: str) -> ScriptRun:
    """Run `text` (any number of statements) and record it in the ledger, in one transaction."""
    started = time.monotonic()
    try:
        with conn.cursor() as cursor:
            cursor.execute(text)
            status = str(cursor.statusmessage or "")
            seconds = round(time.monotonic() - started, 3)
            cursor.execute(
                "INSERT INTO aurora_restore_sql.ran VALUES (%s, %s, %s, %s, %s)",
                (operation_id, script.uri, script.sha256, status, seconds),
            )
        conn.commit()
    except psycopg2.Error as exc:
        conn.rollback()
        raise _failure(script, exc) from None
    return ScriptRun(uri=script.uri, sha256=script.sha256, status=status, seconds=seconds)


def _failure(script: PostRestoreScript, exc: psycopg2.Error) -> DatabaseError:
    """What failed, by PostgreSQL's error class: never the server's message, which may quote data."""
    from psycopg2 import errorcodes

    code = exc.pgcode
    name = errorcodes.lookup(code) if code else type(exc).__name__
    return DatabaseError(f"post_restore_sql {script.uri} failed: PostgreSQL {code or '-'} {name}")


def forget(conn: Any) -> None:
    """The ledger goes with the operation's last use of it: nothing of ours stays in the database."""
    with conn.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {LEDGER_SCHEMA} CASCADE")
    conn.commit()
