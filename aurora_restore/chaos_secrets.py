"""The chaos run's scan for secret values in everything the run wrote: logs, state, events, S3, notices."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from aurora_restore.local import notices
from aurora_restore.local.world import RUNBOOK_USERS, SEED_EMAILS

if TYPE_CHECKING:
    from aurora_restore.local.runtime import LocalRuntime


def known_secrets(runtime: LocalRuntime) -> list[str]:
    """The secret values the run knows: the clusters' master password, the server's, the users', the masking
    key, and the data values masking replaces."""
    assert runtime.postgres is not None
    values = [runtime.master_password, runtime.postgres.password.get_secret_value()]
    values += [str(user["password"]) for user in RUNBOOK_USERS if user.get("password")]
    # The masking key, and the original values masking replaces (the seed's addresses).
    key = runtime.client("secretsmanager").get_secret_value(SecretId=runtime.names.masking_key_secret_id)
    values += [str(key["SecretString"]), *SEED_EMAILS]
    return [value for value in values if value]


def scan_for_secrets(runtime: LocalRuntime, known: list[str], extra_text: Iterable[str] = ()) -> list[str]:
    """Where any known secret value appears: logs, state items, events, S3 objects, notifications, output."""
    found: list[str] = []
    for where, text in _written_texts(runtime, extra_text):
        for value in known:
            if value in text:
                found.append(f"{where} (a value of {len(value)} characters)")
    return found


def _written_texts(runtime: LocalRuntime, extra_text: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Every text the run wrote, with where it is, in the order scan_for_secrets reports them."""
    yield from _numbered("log line", list(runtime.log_lines))
    yield from _state_item_texts(runtime)
    yield from _numbered("event", list(runtime.event_bodies))
    yield from _s3_texts(runtime)
    yield from _numbered("notification", notifications(runtime))
    yield from _numbered("CLI output", extra_text)


def _numbered(label: str, texts: Iterable[str]) -> Iterator[tuple[str, str]]:
    for number, text in enumerate(texts):
        yield f"{label} {number}", text


def _state_item_texts(runtime: LocalRuntime) -> Iterator[tuple[str, str]]:
    """Every item of the state table, as its DynamoDB JSON."""
    dynamodb = runtime.client("dynamodb")
    table = f"aurora-restore-state-{runtime.options.environment}"
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page.get("Items", []):
            yield f"state item {item.get('operation_id', {}).get('S')}", json.dumps(item)


def _s3_texts(runtime: LocalRuntime) -> Iterator[tuple[str, str]]:
    """Every object of the logs bucket, as text."""
    s3 = runtime.client("s3")
    bucket = f"{runtime.options.environment}-aurora-restore-logs"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read().decode("utf-8", "replace")
            yield f"s3://{bucket}/{entry['Key']}", body


def notifications(runtime: LocalRuntime) -> list[str]:
    """Every notification body: what SNS published and what the SQS queue holds (left in the queue)."""
    region, name = runtime.options.target_region, runtime.names.notifications
    return notices.topic_entries(region, name) + notices.queue_messages(region, name)


def queue_messages(runtime: LocalRuntime, queue_name: str) -> list[str]:
    """Read every message of a queue without consuming it (moto's backend, in this process)."""
    return notices.queue_messages(runtime.options.target_region, queue_name)
