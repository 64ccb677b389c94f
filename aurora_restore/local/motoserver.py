"""moto's server on 127.0.0.1, with a thin WSGI layer that counts API calls and can inject AWS faults."""

from __future__ import annotations

import io
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from aurora_restore.local.postgres import free_port
from aurora_restore.local.rds_calls import INJECTED, RdsCall, RdsCallLog, mutating_call, refusal

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_ACCESS_KEY = re.compile(r"Credential=([^/]+)/")
_request = threading.local()


def request_access_key() -> str:
    """The access key that signed the request being answered on this thread (for fault hooks)."""
    return str(getattr(_request, "access_key", ""))


# (service, action) -> an error to answer with instead of calling moto, or None to go ahead.
FaultHook = Callable[[str, str], "Fault | None"]


class Fault:
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        self.code = code
        self.message = message
        self.status = status


def describe_request(environ: dict[str, Any], body: bytes) -> tuple[str, str, str]:
    """(service, region, action) of a signed AWS request."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    region, service = (match.group(1), match.group(2)) if match else ("", "")
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, region, target.rsplit(".", 1)[-1]
    if body and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
        if action:
            return service, region, action
    return service, region, f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')}"


# DynamoDB's writes, which DynamoDB performs atomically with their condition.
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


class CountingApp:
    """Counts every call by (service, action); answers with an injected fault when the hook says so; keeps
    each mutating RDS call with its answer (`rds_calls`).

    moto's server answers requests on several threads and checks a write's condition, then writes, with
    nothing in between held: two conditional writes on one item could both pass their check, which
    DynamoDB never allows (a failure notification's write went through an operator's abort written a
    moment before). DynamoDB's writes are answered one at a time here, as they take effect in DynamoDB.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: Counter[tuple[str, str]] = Counter()
        self.faults_injected: Counter[tuple[str, str]] = Counter()
        self.fault_hook: FaultHook | None = None
        self.rds_calls = RdsCallLog()
        self._lock = threading.Lock()
        self._dynamodb_writes = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        service, _region, action = describe_request(environ, body)
        key = _ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
        _request.access_key = key.group(1) if key else ""
        with self._lock:
            self.calls[(service, action)] += 1
        mutation = mutating_call(body, action) if service == "rds" else None
        hook = self.fault_hook
        fault = hook(service, action) if hook and service else None
        if fault is not None:
            with self._lock:
                self.faults_injected[(service, action)] += 1
            if mutation is not None:
                self.rds_calls.add(RdsCall(*mutation, INJECTED, fault.code, _request.access_key))
            return self._error(environ, fault, start_response)
        if mutation is not None:
            return self._noted(mutation, environ, start_response)
        if service == "dynamodb" and action in DYNAMODB_WRITES:
            with self._dynamodb_writes:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    def _noted(
        self, mutation: tuple[str, str], environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Answer a mutating RDS call and note it with the answer, before the caller has the answer."""
        answered: list[str] = []

        def noting_start_response(status: str, headers: Any, *args: Any) -> Any:
            answered.append(status)
            return start_response(status, headers, *args)

        body = list(self.app(environ, noting_start_response))
        outcome, message = refusal(answered[0] if answered else "500", b"".join(body))
        self.rds_calls.add(RdsCall(*mutation, outcome, message, _request.access_key))
        return body

    @staticmethod
    def _error(environ: dict[str, Any], fault: Fault, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET") or "json" in environ.get("CONTENT_TYPE", ""):
            payload = json.dumps({"__type": fault.code, "message": fault.message}).encode()
            content_type = "application/x-amz-json-1.1"
        else:
            payload = (
                "<ErrorResponse><Error><Type>Sender</Type>"
                f"<Code>{fault.code}</Code><Message>{fault.message}</Message></Error>"
                "<RequestId>injected-fault</RequestId></ErrorResponse>"
            ).encode()
            content_type = "text/xml"
        start_response(
            f"{fault.status} Error", [("Content-Type", content_type), ("Content-Length", str(len(payload)))]
        )
        return [payload]

    def count(self, service: str, actions: Iterable[str] | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (svc, action), n in self.calls.items()
                if svc == service and (actions is None or action in actions)
            )

    def snapshot(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self.calls)


class _QuietHandler(MotoRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class LocalMotoServer(ThreadedMotoServer):
    def __init__(self, port: int | None = None) -> None:
        super().__init__(ip_address="127.0.0.1", port=port or free_port(), verbose=False)
        self.app = CountingApp(DomainDispatcherApplication(create_backend_app))

    def _server_entry(self) -> None:
        self._server = make_server(
            self._ip_address, self._port, self.app, True, request_handler=_QuietHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(
            urllib.request.Request(self.url + "/moto-api/reset", method="POST"), timeout=10
        ).close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"
