"""What an operator does to an operation: start it, read it, watch it, draw it, resume it, abort it; and to an
environment: show its configuration, invoke one step's function.

Uses the functions' own state store and event publisher, so the CLI and the functions share one of each.
Says nothing itself: what it finds goes back to the caller, and render words it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from botocore.exceptions import BotoCoreError
from pydantic import TypeAdapter, ValidationError

from functions import aws, notify, wakeup
from functions.bus import EventPublisher
from functions.engine.restart import restart_event
from functions.engine.writer import Writer
from functions.errors import AwsError, StaleWrite, shown
from functions.notify import left_in_place
from functions.state import DynamoStateStore, expiry
from schemas.common import OperationId, Step, utcnow
from schemas.config import CONFIG_FIELDS, RestoreConfig
from schemas.events import BusEvent, OperationFinished, RestoreRequested
from schemas.state import TERMINAL_STATUSES, HistoryEntry, OperationState, Waiting

# `watch`: how long an operation may take to appear in the state table before the watch gives up; and how
# long before it says it is waiting for it (its first step writes it a moment after the put-events).
APPEAR_TIMEOUT = 60.0
ANNOUNCE_AFTER = 2.0


class OperatorError(Exception):
    """Something the operator asked for cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    environment: str
    region: str

    @property
    def bus(self) -> str:
        return f"aurora-restore-{self.environment}"

    @property
    def table(self) -> str:
        return f"aurora-restore-state-{self.environment}"

    @property
    def config_parameter(self) -> str:
        return f"/aurora-restore/{self.environment}/config"

    def store(self) -> DynamoStateStore:
        return DynamoStateStore(self.table, self.region)

    def publisher(self) -> EventPublisher:
        return EventPublisher(self.bus, self.region)


def default_operation_id(environment: str, target_date: date | str) -> str:
    """`<env>-restore-<date>-<HHMMSS>`; `<date>` is `latest` for the newest snapshot."""
    return f"{environment}-restore-{target_date}-{utcnow().strftime('%H%M%S')}"


# What an operation id may hold (schemas.common.OperationId), said to the operator.
OPERATION_ID_RULE = (
    "an operation id holds 1-128 letters, digits, '.', '_', ':' and '-', and starts with a letter or digit"
)


def check_operation_id(operation_id: str) -> str:
    """`operation_id` if it is a valid one; else an OperatorError saying what an operation id may hold."""
    try:
        return str(TypeAdapter(OperationId).validate_python(operation_id))
    except ValidationError as exc:
        raise OperatorError(f"operation id {shown(operation_id)} is not valid: {OPERATION_ID_RULE}") from exc


@cache
def _field_adapter(name: str) -> TypeAdapter[Any]:
    """A validator of one RestoreConfig field alone: its type with its constraints."""
    field = RestoreConfig.model_fields[name]
    annotation: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return TypeAdapter(annotation)


def _problem(name: str, value: Any) -> str | None:
    """Why `value` cannot be the field `name` (None: it can), as `name[...]: what is wrong`. Quotes no input."""
    try:
        _field_adapter(name).validate_python(value)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            where = "".join(f"[{part}]" for part in error["loc"])
            message = str(error["msg"])
            problems.append(f"{name}{where}: {message[:1].lower()}{message[1:]}")
        return "; ".join(problems)
    return None


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs, each checked against its configuration field (type and constraints).

    A value that parses as JSON is taken as JSON (lists, numbers, booleans, null); else, or when only the
    text fits the field (`engine_version=15.4`), as the text itself."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise OperatorError(f"override {shown(pair)} is not key=value")
        if key not in CONFIG_FIELDS:
            raise OperatorError(
                f"unknown configuration field {shown(key)} (see `aurora-restore config show`)"
            )
        try:
            candidates: list[Any] = [json.loads(raw)]
        except json.JSONDecodeError:
            candidates = []
        structured = bool(candidates) and isinstance(candidates[0], list | dict)
        if not structured:
            candidates.append(raw)
        problems = [_problem(key, candidate) for candidate in candidates]
        for candidate, problem in zip(candidates, problems, strict=True):
            if problem is None:
                overrides[key] = candidate
                break
        else:
            hint = ""
            if str(RestoreConfig.model_fields[key].annotation).startswith("list[") and not structured:
                hint = f' (a list is written in JSON: {key}=\'["a", "b"]\')'
            raise OperatorError(f"override {key}={shown(raw)} is refused: {problems[-1]}{hint}")
    return overrides


def with_strategy(overrides: dict[str, Any], strategy: str | None) -> dict[str, Any]:
    """`overrides` with `--strategy`'s {"strategy": ...} (None: as they are); one that says otherwise is refused."""
    if strategy is None:
        return overrides
    if overrides.get("strategy", strategy) != strategy:
        raise OperatorError(
            f"--strategy {strategy} and --override strategy={overrides['strategy']} disagree: give one"
        )
    return overrides | {"strategy": strategy}


# The calls the CLI makes on the state table.
DYNAMODB_OPERATIONS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "DescribeTable", "TransactWriteItems"}
)


def missing_resource(exc: BaseException, target: Target) -> OperatorError | None:
    """The operator's sentence for AWS saying that the environment's state table or bus does not exist."""
    from botocore.exceptions import ClientError

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ClientError):
            if aws.error_code(cause) == "ResourceNotFoundException":
                if cause.operation_name == "PutEvents":
                    kind, name = "event bus", target.bus
                elif cause.operation_name in DYNAMODB_OPERATIONS:
                    kind, name = "state table", target.table
                else:
                    return None
                return OperatorError(
                    f"the {kind} {name} does not exist in {target.region}: is the stack for "
                    f"{target.environment} deployed there, and are --env and --region right?"
                )
        cause = cause.__cause__ or cause.__context__
    return None


def start(
    target: Target, operation_id: str, target_date: date | str, overrides: dict[str, Any] | None = None
) -> RestoreRequested:
    """One put-events of RestoreRequested: everything else is the choreography."""
    check_operation_id(operation_id)
    event = RestoreRequested.model_validate(
        {"operation_id": operation_id, "target_date": target_date, "overrides": overrides or None}
    )
    store = target.store()
    existing = store.get(operation_id)
    if existing is not None:
        raise OperatorError(f"operation {operation_id} exists already ({existing.status}); choose another id")
    # The first step would refuse it at once (LeaseHeld), seen only under watch: said here instead, with
    # the holder and what to do, and nothing is put on the bus.
    cluster = _target_cluster(target, overrides or {})
    holder = store.lease_holder(cluster) if cluster else None
    refusal = store.lease_refusal(cluster, holder) if cluster and holder else None
    if refusal is not None:
        raise OperatorError(refusal)
    target.publisher().publish([event])
    return event


def _target_cluster(target: Target, overrides: dict[str, Any]) -> str | None:
    """The cluster an operation started now would refresh: its override, else the environment's SSM
    configuration. None when that cannot be read (the first step reads and checks it anyway)."""
    from functions.config import ssm_values
    from functions.errors import StepError

    cluster = overrides.get("target_cluster_id")
    if cluster is None:
        try:
            cluster = ssm_values(target.config_parameter, target.region).get("target_cluster_id")
        except StepError:  # refused (access) or throttled
            return None
    try:  # as the operation will take it (RDS's lower case)
        return str(_field_adapter("target_cluster_id").validate_python(cluster)) if cluster else None
    except ValidationError:
        return None  # snapshot_check refuses it, naming the field


def list_operations(target: Target, status: str | None = None) -> list[OperationState]:
    """The environment's operations, newest first: one Scan of the state table, whose operation items stay
    `state_retention_days` after they end."""
    return sorted(target.store().scan_operations(status), key=lambda state: state.created_at, reverse=True)


def load(target: Target, operation_id: str) -> OperationState:
    state = target.store().get(check_operation_id(operation_id))
    if state is None:
        raise OperatorError(f"no operation {operation_id} in {target.table} ({target.region})")
    return state


def write_timeline(target: Target, operation_id: str, out: Path) -> Path:
    """The operation's timeline (aurora_restore.timeline) written to `out`, read as `status` reads it."""
    from aurora_restore import timeline

    drawing = timeline.svg(load(target, operation_id), utcnow())
    try:
        out.write_text(drawing, encoding="utf-8")
    except OSError as exc:
        raise OperatorError(f"cannot write the timeline to {out}: {exc.strerror or exc}") from exc
    return out


def watch(
    target: Target,
    operation_id: str,
    *,
    on_entry: Callable[[HistoryEntry, OperationState], None],
    on_slow_to_appear: Callable[[], None],
    timeout: float | None = None,
    poll: float = 0.5,
    appear_timeout: float | None = APPEAR_TIMEOUT,
    announce_after: float = ANNOUNCE_AFTER,
) -> OperationState | None:
    """Follow an operation until it ends; returns the final state.

    Calls `on_entry` with each new step entry as it lands (and the state it was read in), and
    `on_slow_to_appear` once when the operation is not in the state table `announce_after` seconds on.
    Returns the state as it is when `timeout` runs out first (not ended), and None when the operation did not
    appear within `appear_timeout` (or `timeout`)."""
    store = target.store()
    seen = 0
    started = time.monotonic()
    announced = False
    while True:
        state = store.get(operation_id)
        elapsed = time.monotonic() - started
        if state is None:
            if not announced and elapsed >= announce_after:
                on_slow_to_appear()
                announced = True
            if appear_timeout is not None and elapsed > appear_timeout:
                return None
        else:
            for entry in state.history[seen:]:
                on_entry(entry, state)
            seen = len(state.history)
            if state.status in TERMINAL_STATUSES and not state.outbox:
                return state
        if timeout is not None and elapsed > timeout:
            return state
        time.sleep(poll)


def resume(target: Target, operation_id: str) -> tuple[OperationState, str]:
    """Continue a failed operation from the step that failed, once its cause is fixed."""
    store = target.store()
    state = load(target, operation_id)
    if state.status != "failed" or state.failed_step is None:
        raise OperatorError(
            f"operation {operation_id} is {state.status}: only a failed operation can be resumed"
        )
    if state.request_refused:
        raise OperatorError(
            f"operation {operation_id} failed on its request itself: a resume would not run what was asked"
            " for; start a new operation with a valid request"
        )
    step = Step(state.failed_step)
    state.status = "running"
    state.next_step = step
    state.error = None
    state.expires_at = None
    event = restart_event(state, step, f"resumed by the operator at {step.value}")
    try:
        Writer(store, target.publisher()).commit(state, [event])
    except StaleWrite as exc:
        raise OperatorError(f"operation {operation_id} changed while resuming; try again") from exc
    return state, step.value


def _update(
    target: Target,
    operation_id: str,
    change: Callable[[OperationState], list[BusEvent]],
    doing: str,
    attempts: int = 10,
) -> OperationState:
    """Apply `change` and commit it with the events it returns through the functions' writer (a conditional
    write with an outbox), re-reading when a running operation moved meanwhile."""
    writer = Writer(target.store(), target.publisher())
    for _ in range(attempts):
        state = load(target, operation_id)
        events = change(state)
        try:
            writer.commit(state, events)
            return state
        except StaleWrite:
            continue
    raise OperatorError(f"operation {operation_id} kept changing while {doing}; try again")


@dataclass(frozen=True)
class Aborted:
    state: OperationState
    # The target cluster whose lease the operation held and gave up now; None when it held none (it failed
    # before taking it, another operation holds it, or its configuration names no target).
    lease_released: str | None
    # The snapshot copy it made or shared, left in the target region (cleanup never runs for it), and how
    # many other operations still use it (0: nobody will delete it but the operator).
    copy_left: str | None = None
    copy_still_used: int = 0
    # The abort notice to the environment's topic and queue, as notify_completion sends the outcome: the SNS
    # message id, or why it could not be sent (the abort stands either way).
    notified: str | None = None
    notice_error: str | None = None


def abort(target: Target, operation_id: str) -> OperationState:
    """Stop an operation: release the lease, drop its pending wake-ups, leave the target cluster as it is."""
    return abort_operation(target, operation_id).state


def abort_operation(target: Target, operation_id: str) -> Aborted:
    """`abort`, saying whether there was a lease to release."""
    waited: Waiting | None = None
    stopped_at: str | None = None

    def change(state: OperationState) -> list[BusEvent]:
        nonlocal waited, stopped_at
        if state.status in TERMINAL_STATUSES and state.status != "failed":
            raise OperatorError(f"operation {operation_id} is {state.status} already")
        waited = state.waiting  # as of the read that is written: its wake-up's name comes from it
        stopped_at = state.failed_step or state.next_step or state.current_step
        state.status = "aborted"
        state.waiting = None
        state.next_step = None
        # Kept as long as any ended operation (a resumed one had no expiry: it would have stayed for ever).
        days = (
            state.config.get("state_retention_days")
            or RestoreConfig.model_fields["state_retention_days"].default
        )
        state.expires_at = expiry(int(days))
        return [OperationFinished(operation_id=operation_id, outcome="aborted")]

    state = _update(target, operation_id, change, "aborting")
    cluster = state.config.get("target_cluster_id")
    released: str | None = None
    if cluster and target.store().release_lease(str(cluster), operation_id):
        released = str(cluster)
    # It no longer counts among the copy's users, so the last other operation's cleanup deletes the copy.
    copy = state.outputs.get("target_snapshot") if not state.outputs.get("copy_released") else None
    still_used = target.store().leave_copy(str(copy), operation_id) if copy else 0
    wakeup.drop_all(target.environment, target.region, operation_id, waited)
    aborted = Aborted(state, released, str(copy) if copy else None, still_used)
    return _notify_aborted(aborted, stopped_at, target.region)


def _notify_aborted(aborted: Aborted, stopped_at: str | None, region: str) -> Aborted:
    """Tell the subscribers, who were told of the start's failure or expect a completion: nothing else will
    (no function runs for an aborted operation). Sent once: a second abort is refused before this."""
    state = aborted.state
    topic, queue = state.config.get("notification_topic_arn"), state.config.get("notification_queue_url")
    if not topic or not queue:
        return replace(aborted, notice_error="its configuration names no notification topic and queue")
    cluster = state.config.get("target_cluster_id")
    notice = notify.outcome_notice(
        state,
        "aborted",
        str(cluster) if cluster else None,
        stopped_at=stopped_at,
        left_in_place=left_in_place(state),
    )
    try:
        sns_id, _ = notify.send(
            str(topic), str(queue), notice, str(state.config.get("target_region") or region)
        )
    except AwsError as exc:
        return replace(aborted, notice_error=exc.message)
    except BotoCoreError as exc:  # no credentials, no endpoint: said by its kind
        return replace(aborted, notice_error=f"AWS could not be reached ({type(exc).__name__})")
    return replace(aborted, notified=sns_id)


def invoke(target: Target, step: Step, payload: Any) -> tuple[Any, bool]:
    """Invoke one step's function with `payload`: its response, and whether the step succeeded."""
    from functions.settings import function_name

    name = function_name(step.value, target.environment)
    answer = aws.client("lambda", target.region).invoke(
        FunctionName=name, Payload=json.dumps(payload).encode()
    )
    body = json.loads(answer["Payload"].read() or b"null")
    failed = answer.get("FunctionError") or not isinstance(body, dict) or body.get("status") != "success"
    return body, not failed


def configuration(target: Target) -> dict[str, Any]:
    """The environment's configuration as its functions resolve it, each value with its source, and its
    database users (a password named by where it comes from, never shown); with the resolver's warnings.

    The environment layer is the functions' own environment (their Lambda configuration, or the shell
    `local serve` runs in), never this process's: shown as set here, it was not what an operation used."""
    from functions import config as resolver
    from functions.settings import get_settings

    os.environ["AURORA_RESTORE_ENV"] = target.environment
    os.environ.setdefault("AWS_REGION", target.region)
    get_settings.cache_clear()
    settings = get_settings()
    resolved = resolver.resolve(settings, environ={})
    users, warnings = resolver.load_db_users(settings)
    here = list(resolver.environment_variables().values())
    if here:
        warnings.append(
            f"ignored: {', '.join(here)} set in this shell; the environment layer is the functions' own"
            " environment (their Lambda configuration, or `local serve`'s shell)"
        )
    return {
        "environment": settings.environment,
        "parameters": {"config": settings.config_parameter, "db_users": settings.db_users_parameter},
        "config": {
            name: {"value": value, "source": resolved.sources.get(name, "default")}
            for name, value in resolved.config.model_dump(mode="json").items()
        },
        "db_users": [
            {
                "username": user.username,
                "privileges": list(user.privileges),
                "password": f"secret {user.password_secret_id}"
                if user.password_secret_id
                else "literal (hidden)",
            }
            for user in users.users
        ],
        "warnings": resolved.warnings + warnings,
    }
