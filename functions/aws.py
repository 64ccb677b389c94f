"""AWS clients, created lazily (after moto or the local runtime is up) with one retry policy.

botocore only: boto3 adds nothing our functions use (resources, S3 transfer methods), its import adds about
20 ms to every cold start (boto3.compat pulls in s3transfer and multiprocessing), and a boto3 Session per
client re-read botocore's shared data files (endpoints, retry rules) for each one. Endpoints, credentials and
region come from the environment exactly as with boto3 (AWS_ENDPOINT_URL[_<SERVICE>], AWS_ACCESS_KEY_ID...,
AWS_DEFAULT_REGION): boto3 handed all of that to the same botocore session code.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

# Standard mode: exponential backoff with jitter on throttling and transient errors, 5 attempts. Adaptive
# mode would add client-side rate limiting, which only helps a long-lived client hammering one API; our
# functions make a handful of calls each.
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)

# One session for every client: it reads botocore's data files and resolves credentials once. A botocore
# session is not thread-safe while creating clients, so it is only used under the lock; the clients it
# creates are thread-safe.
_lock = threading.Lock()
_session: botocore.session.Session | None = None
_clients: dict[tuple[str, str | None], Any] = {}


# Clients signed with other credentials (the source account's assumed role, functions/source_account.py):
# a few kept, by access key, as credentials expire and each assumption brings new ones.
_credentialed: dict[tuple[str, str | None, str], Any] = {}
CREDENTIALED_KEPT = 16


def client(service: str, region: str | None = None, credentials: Mapping[str, str] | None = None) -> Any:
    """The client for `service` in `region`: the environment's credentials, or `credentials` (STS's
    AccessKeyId, SecretAccessKey, SessionToken) when given."""
    if credentials is not None:
        return _credentialed_client(service, region, credentials)
    global _session
    key = (service, region)
    with _lock:
        found = _clients.get(key)
        if found is None:
            if _session is None:
                _session = botocore.session.get_session()
            found = _session.create_client(service, region_name=region, config=RETRY_CONFIG)
            _clients[key] = found
        return found


def _credentialed_client(service: str, region: str | None, credentials: Mapping[str, str]) -> Any:
    global _session
    key = (service, region, credentials["AccessKeyId"])
    with _lock:
        found = _credentialed.get(key)
        if found is None:
            if _session is None:
                _session = botocore.session.get_session()
            if len(_credentialed) >= CREDENTIALED_KEPT:
                _credentialed.clear()
            found = _session.create_client(
                service,
                region_name=region,
                config=RETRY_CONFIG,
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
            )
            _credentialed[key] = found
        return found


# Values got through these clients and kept (functions/source_account.py's assumed credentials): forgotten
# with the clients, as they belong to the same endpoint and credentials.
_dependent_caches: list[dict[Any, Any]] = []


def dependent_cache() -> dict[Any, Any]:
    """A dict that reset_clients empties too."""
    cache: dict[Any, Any] = {}
    _dependent_caches.append(cache)
    return cache


def reset_clients() -> None:
    """Forget every client and the session (tests and the local runtime call this when endpoints or
    credentials change: the session keeps the credentials it resolved first)."""
    global _session
    with _lock:
        _clients.clear()
        _credentialed.clear()
        for cache in _dependent_caches:
            cache.clear()
        _session = None


# AWS error codes that pass when tried again: throttling, and AWS's own faults.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "TransactionConflictException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalServerError",
        # Other services' names for the same (S3, Secrets Manager, SNS, Scheduler, ...).
        "SlowDown",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "PriorRequestNotComplete",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_transient(exc: ClientError) -> bool:
    """Throttling (429 included) or AWS's own fault (a 5xx): the same call may pass later."""
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return error_code(exc) in TRANSIENT_CODES or status >= 500 or status == 429
