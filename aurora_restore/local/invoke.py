"""A Lambda Invoke endpoint on 127.0.0.1 for the function names, so `aws lambda invoke` works locally."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from aurora_restore.local.postgres import free_port

_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]


class InvokeServer:
    def __init__(self, invoke: Invoke, port: int | None = None) -> None:
        self.invoke = invoke
        self.port = port or free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, name="lambda-invoke", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> InvokeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        invoke = self.invoke

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                return None

            def _answer(
                self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                payload = json.dumps(body, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("X-Amz-Executed-Version", "$LATEST")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                match = _PATH.match(self.path.split("?", 1)[0])
                if not match:
                    self._answer(404, {"Type": "User", "message": f"unknown path {self.path}"})
                    return
                name = unquote(match.group("name"))
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(raw or b"{}")
                except json.JSONDecodeError as exc:
                    self._answer(400, {"Type": "User", "message": f"payload is not JSON: {exc}"})
                    return
                try:
                    result = invoke(name, payload)
                except KeyError as exc:
                    self._answer(
                        404,
                        {"Type": "User", "message": f"Function not found: {name} ({exc})"},
                        {"x-amzn-ErrorType": "ResourceNotFoundException"},
                    )
                    return
                except Exception as exc:  # noqa: BLE001 - reported as Lambda reports an unhandled error
                    self._answer(
                        200,
                        {"errorMessage": str(exc), "errorType": type(exc).__name__},
                        {"X-Amz-Function-Error": "Unhandled"},
                    )
                    return
                self._answer(200, result)

        return Handler
