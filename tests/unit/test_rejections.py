"""A request the engine cannot take, without AWS: what a refused payload still says, what is kept and quoted
back of it, the failed operation it begins, and the runner's path over an in-memory store."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fakes.engine import Bus
from fakes.memory_store import MemoryStateStore

from functions.engine.rejections import MAX_RECEIVED_CHARS, kept_fields, received
from functions.engine.runner import StepRunner
from functions.engine.services import Services
from functions.engine.transitions import new_operation, rejected
from functions.engine.triggers import Trigger, TriggerKind, parse_trigger, request_of, usable_operation_id
from functions.engine.writer import Writer
from functions.errors import InvalidRequest, StaleWrite, StepError
from functions.routes import build_routes
from schemas.common import Step, utcnow
from schemas.events import RequestRejected
from schemas.state import OperationState
from unit.fakes import SETTINGS


def restore_requested(detail: Any, source: str = "aurora-restore") -> dict[str, Any]:
    return {"source": source, "detail-type": "RestoreRequested", "detail": detail}


# -- what a refused payload still says ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "usable"),
    [
        ("op-1", True),
        ("dev-restore-2023-06-01", True),
        ("", False),
        ("a b", False),
        (42, False),
        (None, False),
    ],
)
def test_an_operation_id_is_usable_only_when_it_can_name_an_operation(value: Any, usable: bool) -> None:
    assert usable_operation_id(value) == (value if usable else None)


def test_a_refused_restore_requested_says_its_operation_id_when_usable() -> None:
    # Given RestoreRequested events whose details do not validate
    usable = request_of(restore_requested({"operation_id": "op-1", "target_date": "2023-13-45"}))
    unusable = request_of(restore_requested({"operation_id": "no spaces", "target_date": "2023-06-01"}))
    not_an_object = request_of(restore_requested("op-1"))

    # Then each is a RestoreRequested, with the operation id only when it can name one
    assert usable is not None and (usable.kind, usable.label, usable.operation_id) == (
        TriggerKind.RESTORE_REQUESTED,
        "RestoreRequested",
        "op-1",
    )
    assert unusable is not None and unusable.operation_id is None
    assert not_an_object is not None and (not_an_object.operation_id, not_an_object.payload) == (None, {})


@pytest.mark.parametrize(
    "event",
    [
        restore_requested({"operation_id": "op-1"}, source="elsewhere"),
        {"source": "aurora-restore", "detail-type": "StepCompleted", "detail": {"operation_id": "op-1"}},
        {"source": "aws.rds", "detail-type": "RDS DB Cluster Event", "detail": {}},
        ["op-1"],
        "op-1",
    ],
    ids=["another-source", "another-event", "rds", "a-list", "a-string"],
)
def test_anything_but_a_request_says_nothing(event: Any) -> None:
    assert request_of(event) is None


def test_a_direct_payload_is_a_direct_request() -> None:
    request = request_of({"operation_id": "op-1", "log_prefix": "x" * 70_000})
    assert request is not None and (request.kind, request.operation_id) == (TriggerKind.DIRECT, "op-1")


@pytest.mark.parametrize(
    ("target_date", "shown"),
    [
        ("2023-13-45", "'2023-13-45'"),
        ("yesterday; rm -rf /", "'yesterday; rm -rf /'"),
        (20230601, "20230601"),
        (0, "0"),  # pydantic alone took 0 as 1970-01-01
        ("2023-06-01T00:00:00", "'2023-06-01T00:00:00'"),
    ],
)
def test_a_requested_day_is_a_date_written_yyyy_mm_dd(target_date: Any, shown: str) -> None:
    # Given a RestoreRequested whose day is not a date written YYYY-MM-DD
    event = restore_requested({"operation_id": "op-1", "target_date": target_date})

    # When it is parsed, Then it is refused in the words a direct snapshot_check uses
    with pytest.raises(InvalidRequest) as refused:
        parse_trigger(event)
    assert refused.value.message == (
        f"invalid RestoreRequested event: target_date {shown} is not a date (YYYY-MM-DD)"
    )
    assert parse_trigger(restore_requested({"operation_id": "op-1", "target_date": "2023-06-01"}))


# -- what is kept and quoted back ----------------------------------------------------------------------------
def test_a_refused_requests_operation_keeps_only_the_valid_clusters_and_regions_it_named() -> None:
    payload = {
        "target_date": "2023-13-45",
        "overrides": {
            "target_cluster_id": "Other-Target",
            "source_cluster_id": 42,
            "target_region": "us-west-2",
            "source_region": "mars",
            "master_credentials_secret_id": "pasted-password",
            "log_prefix": "x" * 1_000,
        },
    }
    assert kept_fields(payload) == {
        "target_date": "2023-13-45",
        "overrides": {"target_cluster_id": "other-target", "target_region": "us-west-2"},
    }
    assert kept_fields({"target_date": 0, "overrides": "x"}) == {"target_date": None, "overrides": {}}
    assert kept_fields({"target_date": "9" * 5_000})["target_date"] is None


def test_what_was_received_hides_secrets_and_is_cut_short() -> None:
    detail = {
        "operation_id": "a b",
        "overrides": {
            "master_password": "pw-1",
            "nested": [{"api_key": "key-2", "Secret": {"value": "s-3"}}],
            "url": "postgresql://admin:pw-4@db:5432/app",
            "log_prefix": "kept",
        },
    }
    text, chars = received(detail)
    assert chars == len(text)
    assert json.loads(text)["overrides"] == {
        "master_password": "***",
        "nested": [{"api_key": "***", "Secret": "***"}],
        "url": "postgresql://admin:***@db:5432/app",
        "log_prefix": "kept",
    }
    for secret in ("pw-1", "key-2", "s-3", "pw-4"):
        assert secret not in text

    long_text, long_chars = received({"operation_id": "a b", "x": "y" * 2_000})
    assert len(long_text) == MAX_RECEIVED_CHARS and long_text.endswith("…") and long_chars > 2_000
    assert received(42) == ("42", 2)


# -- the failed operation it begins ---------------------------------------------------------------------------
def test_a_refused_request_begins_its_operation_failed_at_the_step_and_announces_it() -> None:
    # Given what is kept of a RestoreRequested refused for its date
    trigger = Trigger(
        TriggerKind.RESTORE_REQUESTED,
        "RestoreRequested",
        "op-1",
        kept_fields({"target_date": "2023-13-45", "overrides": {"target_cluster_id": "other"}}),
    )
    now = utcnow()

    # When the rejection is decided
    refused = InvalidRequest("invalid RestoreRequested event: target_date '2023-13-45' is not a date")
    transition = rejected(Step.SNAPSHOT_CHECK, trigger, refused, SETTINGS, now)

    # Then the operation is failed at snapshot_check with the reason, today's date, the valid override
    state = transition.state
    assert (state.status, state.failed_step, state.claim) == ("failed", "snapshot_check", None)
    assert state.error is not None and state.error.message == refused.message
    assert (state.target_date, state.overrides) == (now.date(), {"target_cluster_id": "other"})
    assert [(e.step, e.outcome, e.trigger) for e in state.history] == [
        ("snapshot_check", "failed", "RestoreRequested")
    ]
    assert state.request_refused
    # And StepFailed (to notify_completion) and OperationFinished(failed) are its events
    assert [e.detail_type for e in transition.events] == ["StepFailed", "OperationFinished"]
    assert transition.response["status"] == "error" and transition.response["operation_id"] == "op-1"


def test_only_a_failure_on_the_request_at_snapshot_check_is_a_refused_request() -> None:
    state = new_operation(Trigger.internal(TriggerKind.OPERATOR, "op-1"), "op-1", SETTINGS, utcnow())
    refused = rejected(
        Step.SNAPSHOT_CHECK,
        Trigger(TriggerKind.DIRECT, "direct", "op-1", {}),
        InvalidRequest("x"),
        SETTINGS,
        utcnow(),
    )
    assert refused.state.request_refused and not state.request_refused
    elsewhere = refused.state.model_copy(update={"failed_step": Step.COPY_SNAPSHOT})
    assert not elsewhere.request_refused
    assert refused.state.error is not None
    config_error = refused.state.model_copy(
        update={"error": refused.state.error.model_copy(update={"type": "ConfigError"})}
    )
    assert not config_error.request_refused


def test_request_rejected_routes_to_notify_completion_and_carries_no_operation_id() -> None:
    (route,) = [route for route in build_routes() if route.pattern.get("detail-type") == ["RequestRejected"]]
    assert route.function == "notify_completion" and route.bus == "environment"
    with pytest.raises(ValueError):
        RequestRejected.model_validate(
            {
                "operation_id": "op-1",
                "step": "snapshot_check",
                "request": "RestoreRequested",
                "reason": "r",
                "received": "{}",
                "received_chars": 2,
                "rejected_at": "2023-06-01T00:00:00Z",
            }
        )


# -- the runner's path, over an in-memory store ---------------------------------------------------------------
def snapshot_check(store: MemoryStateStore, bus: Bus, step: Step = Step.SNAPSHOT_CHECK) -> StepRunner:
    def must_not_run(ctx: Any) -> Any:
        raise AssertionError("the step's logic ran for a refused request")

    return StepRunner(step, must_not_run, Services(SETTINGS, publisher=bus, store=store))


BAD_DATE = restore_requested({"operation_id": "op-1", "target_date": "2023-13-45"})


def test_a_refused_request_with_a_usable_id_is_recorded_failed_once(
    store: MemoryStateStore, bus: Bus
) -> None:
    # When snapshot_check gets a RestoreRequested with a bad date, twice (EventBridge delivers at least once)
    first = snapshot_check(store, bus)(BAD_DATE)
    recorded = store.get("op-1")
    again = snapshot_check(store, bus)(BAD_DATE)

    # Then the operation was recorded failed once, its events put once, its outbox cleared
    assert first["status"] == again["status"] == "error"
    assert recorded is not None and recorded.status == "failed" and recorded.outbox == []
    assert store.get("op-1") == recorded
    assert [e.detail_type for e in bus.events] == ["StepFailed", "OperationFinished"]


def test_a_refused_request_never_changes_an_existing_operation(store: MemoryStateStore, bus: Bus) -> None:
    running = store.create(
        new_operation(Trigger.internal(TriggerKind.OPERATOR, "op-1"), "op-1", SETTINGS, utcnow())
    )
    answer = snapshot_check(store, bus)(BAD_DATE)
    assert answer["status"] == "error" and "is not a date" in answer["message"]
    assert store.get("op-1") == running and bus.events == []


def test_a_refused_request_whose_events_the_bus_refused_is_tried_again_and_put_then(
    store: MemoryStateStore, bus: Bus
) -> None:
    # Given the bus refuses the failure's events
    bus.down = True
    with pytest.raises(StepError) as raised:
        snapshot_check(store, bus)(BAD_DATE)
    assert raised.value.retryable
    waiting = store.get("op-1")
    assert waiting is not None and [item["detail_type"] for item in waiting.outbox] == [
        "StepFailed",
        "OperationFinished",
    ]

    # When the request is delivered again, once the outbox is older than its grace, and the bus is back
    waiting.updated_at -= timedelta(seconds=10)
    store._put(waiting)
    bus.down = False
    snapshot_check(store, bus)(BAD_DATE)

    # Then the events are put, and the operation is still the failure first recorded
    assert [e.detail_type for e in bus.events] == ["StepFailed", "OperationFinished"]
    state = store.get("op-1")
    assert state is not None and state.outbox == [] and state.history == waiting.history


def test_a_request_without_a_usable_id_is_announced_and_records_nothing(
    store: MemoryStateStore, bus: Bus
) -> None:
    event = restore_requested(
        {"operation_id": "a b", "target_date": "2023-06-01", "overrides": {"password": "p-1"}}
    )
    answer = snapshot_check(store, bus)(event)
    assert answer["status"] == "error" and answer["operation_id"] is None
    assert store.items == {}
    (announced,) = bus.events
    assert isinstance(announced, RequestRejected)
    assert (announced.operation_id, announced.step, announced.request) == (
        None,
        "snapshot_check",
        "RestoreRequested",
    )
    assert "operation_id" in announced.reason and "p-1" not in announced.received


@pytest.mark.parametrize(
    ("step", "event"),
    [
        (Step.SNAPSHOT_CHECK, {"target_date": "2023-06-01"}),  # direct, no operation_id: the caller is told
        (Step.SNAPSHOT_CHECK, ["op-1"]),
        (Step.COPY_SNAPSHOT, {"operation_id": "op-1", "snapshot_name": "x" * 70_000}),
        (Step.COPY_SNAPSHOT, BAD_DATE),
    ],
    ids=["direct-without-id", "not-an-object", "later-step-direct", "later-step-event"],
)
def test_other_bad_input_is_answered_and_changes_nothing(
    store: MemoryStateStore, bus: Bus, step: Step, event: Any
) -> None:
    answer = snapshot_check(store, bus, step)(event)
    assert answer["status"] == "error"
    assert store.items == {} and bus.events == []


def test_the_writer_carries_on_when_its_own_create_was_answered_condition_failed(
    store: MemoryStateStore,
) -> None:
    # Given DynamoDB applied the create but answered "condition failed" (botocore's retry met its own write)
    bus = Bus()
    trigger = Trigger(TriggerKind.RESTORE_REQUESTED, "RestoreRequested", "op-1", {})
    transition = rejected(Step.SNAPSHOT_CHECK, trigger, InvalidRequest("bad"), SETTINGS, utcnow())
    original = store.create

    def applied_then_refused(state: OperationState) -> OperationState:
        original(state.model_copy(deep=True))
        raise StaleWrite(state.operation_id)

    store.create = applied_then_refused  # type: ignore[method-assign]

    # When the writer creates the failed operation
    published = Writer(store, bus).create(transition.state, transition.events)

    # Then it carries on: the events are put and the outbox cleared
    assert published and [e.detail_type for e in bus.events] == ["StepFailed", "OperationFinished"]
    assert store.get("op-1").outbox == []  # type: ignore[union-attr]

    # And a create meeting another operation's item is refused
    other = rejected(Step.SNAPSHOT_CHECK, trigger, InvalidRequest("other"), SETTINGS, utcnow())
    store.create = original  # type: ignore[method-assign]
    with pytest.raises(StaleWrite):
        Writer(store, bus).create(other.state, other.events)
