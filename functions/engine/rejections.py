"""A request the engine cannot take, never lost in silence: a failed operation when it names a usable, new
operation id; else a RequestRejected on the bus, whose notice notify_completion sends."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import TypeAdapter, ValidationError

from functions.engine.configuration import FIXED_FIELDS
from functions.engine.responses import Answer, error_response
from functions.engine.services import Services
from functions.engine.transitions import rejected
from functions.engine.triggers import Trigger, request_of
from functions.engine.writer import Writer
from functions.errors import InvalidRequest, StaleWrite, StepError
from functions.observability import logger
from schemas.common import ClusterId, Region, Step, utcnow
from schemas.events import RequestRejected

# What a rejection quotes back: enough to recognise the request, little enough for a notice's reader.
MAX_RECEIVED_CHARS = 500
MAX_REASON_CHARS = 500
# Values kept out of what is quoted back: keys that look like they hold a secret, and a URL's password.
SECRET_KEY = re.compile(r"pass|pwd|secret|token|credential|private|dsn|auth|api_?key|access_?key", re.I)
URL_PASSWORD = re.compile(r"(://[^/\s:@]*:)[^@\s]*@")
HIDDEN = "***"
MAX_DEPTH = 12
# The overrides a failed request's operation keeps: what it would have acted on, when each is one (so its
# notice and `status` name the target the request named). Nothing else of a request that did not validate
# is kept: it could hold anything, and the state item holds no secret.
_KEPT: dict[str, TypeAdapter[str]] = {
    name: TypeAdapter(ClusterId if name.endswith("cluster_id") else Region) for name in FIXED_FIELDS
}


def reject(step: Step, event: Any, exc: InvalidRequest, services: Services) -> Answer:
    """snapshot_check's answer to a request parse_trigger refused: the operation it names recorded failed
    (new ids only), or RequestRejected put on the bus when its operation_id is not usable. A direct payload
    without a usable operation_id, and any other step's bad input, are answered and change nothing."""
    request = request_of(event) if step is Step.SNAPSHOT_CHECK else None
    if request is None or (request.is_direct and request.operation_id is None):
        return Answer(error_response(None, exc), "error")
    exc = InvalidRequest(cut(exc.message, MAX_REASON_CHARS))
    if request.operation_id is None:
        return _announce(step, request, event, exc, services)
    return _record(step, request, exc, services)


def _record(step: Step, request: Trigger, exc: InvalidRequest, services: Services) -> Answer:
    operation_id = request.operation_id
    kept = Trigger(request.kind, request.label, operation_id, kept_fields(request.payload))
    transition = rejected(step, kept, exc, services.settings, utcnow())
    writer = Writer(services.store, services.publisher)
    try:
        published = writer.create(transition.state, transition.events, step)
    except StaleWrite:
        # Most often this very request delivered again; else a bad request reusing a live id. Either way
        # the operation is left as it is (but for events a crash left in its outbox).
        existing = services.store.get(str(operation_id))
        if existing is not None:
            writer.flush_if_stale(existing)
        logger.warning("bad request for an existing operation: left as it is", extra={"error": exc.message})
        return Answer(error_response(operation_id, exc), "refused")
    logger.error("request refused: the operation is recorded failed", extra={"error": exc.message})
    if not published and not request.is_direct:  # tried again: the retry finds the outbox and puts it
        raise StepError("the refused request is recorded; its events wait in the outbox", retryable=True)
    return Answer(transition.response, "failed")


def _announce(step: Step, request: Trigger, event: Any, exc: InvalidRequest, services: Services) -> Answer:
    detail = event.get("detail") if isinstance(event, dict) else event
    text, chars = received(detail)
    announced = RequestRejected(
        operation_id=None,
        step=step,
        request=request.label,
        reason=exc.message,
        received=text,
        received_chars=chars,
        rejected_at=utcnow(),
    )
    # Raised when the bus refuses it: the request is delivered again (and lands in the DLQ at the last try).
    services.publisher.publish([announced])
    logger.error(
        "request refused: no usable operation_id; RequestRejected put on the bus",
        extra={"error": exc.message},
    )
    return Answer(error_response(None, exc), "rejected")


def kept_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """What a failed request's operation keeps of its payload: the requested day as given (a bad one is
    replaced by today, as for any start) and the overrides of FIXED_FIELDS that are valid."""
    overrides = payload.get("overrides")
    overrides = overrides if isinstance(overrides, dict) else {}
    kept: dict[str, Any] = {}
    for name, adapter in _KEPT.items():
        try:
            kept[name] = adapter.validate_python(overrides.get(name), strict=True)
        except ValidationError:
            continue
    day = payload.get("target_date")
    return {"target_date": day if isinstance(day, str) and len(day) <= 10 else None, "overrides": kept}


def received(detail: Any) -> tuple[str, int]:
    """A request's detail as quoted back: JSON with secrets hidden, cut to MAX_RECEIVED_CHARS; and the
    length of that JSON before it was cut."""
    text = json.dumps(_hidden(detail, 0), default=str, ensure_ascii=False)
    return cut(text, MAX_RECEIVED_CHARS), len(text)


def _hidden(value: Any, depth: int) -> Any:
    """`value` with the values of keys that look like secrets, and passwords in URLs, replaced."""
    if depth > MAX_DEPTH:
        return HIDDEN
    if isinstance(value, dict):
        return {
            str(key): HIDDEN if SECRET_KEY.search(str(key)) else _hidden(inner, depth + 1)
            for key, inner in value.items()
        }
    if isinstance(value, list):
        return [_hidden(inner, depth + 1) for inner in value]
    if isinstance(value, str):
        return URL_PASSWORD.sub(rf"\1{HIDDEN}@", value)
    return value


def cut(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters (the last one an ellipsis) when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
