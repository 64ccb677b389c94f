"""Event delivery in the local runtime: rules targeting SQS queues, and the workers handing events on.

Each rule of the route table targets its function's queue, as Lambda's event queue sits between
EventBridge and a function; a worker per queue (several for a parallel function) hands each event to the
handler, and one that failed comes again after the retry delay, as EventBridge and Lambda retry. The
reconciler's hourly schedule is a loop of its own here, at the runtime's reconcile interval.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aurora_restore.local.world import ACCOUNT
from functions.routes import FUNCTIONS, RECONCILE, build_routes
from functions.settings import function_name

if TYPE_CHECKING:
    from aurora_restore.local.runtime import LocalRuntime

Spawn = Callable[..., None]  # (thread name, target, *args): start a daemon thread the runtime stops


@dataclass
class Delivery:
    at: float
    function: str
    detail_type: str
    operation_id: str | None
    outcome: str


class LambdaContext:
    """The parts of the Lambda context object the handlers and Powertools read."""

    def __init__(self, name: str, region: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


class EventDelivery:
    """The bus, its rules and queues, and the threads that deliver: one runtime's event plumbing."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime
        self.queues: dict[str, str] = {}
        self.deliveries: list[Delivery] = []
        self.event_bodies: list[str] = []  # every event a worker received, raw (for scans of what travelled)
        self._lock = threading.Lock()

    # -- wiring -----------------------------------------------------------------------------------------
    def wire(self) -> None:
        """The environment's bus, a queue per function, and each route's rule targeting its queue."""
        options = self.runtime.options
        env, region = options.environment, options.target_region
        events, sqs = self.runtime.client("events", region), self.runtime.client("sqs", region)
        bus = f"aurora-restore-{env}"
        events.create_event_bus(Name=bus)
        for function in FUNCTIONS:
            self.queues[function] = sqs.create_queue(
                QueueName=f"{function_name(function, env)}-local",
                Attributes={"VisibilityTimeout": str(options.visibility_timeout_seconds)},
            )["QueueUrl"]
        for route in build_routes(region):
            rule = f"aurora-restore-{route.name}-{env}"
            bus_name = bus if route.bus == "environment" else "default"
            events.put_rule(
                Name=rule, EventBusName=bus_name, EventPattern=json.dumps(route.pattern), State="ENABLED"
            )
            arn = sqs.get_queue_attributes(QueueUrl=self.queues[route.function], AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            events.put_targets(Rule=rule, EventBusName=bus_name, Targets=[_queue_target(route.function, arn)])

    def start(self, spawn: Spawn) -> None:
        """The workers of every queue (one for a serial function), then the reconciler's schedule (unless
        the runtime runs without it)."""
        options = self.runtime.options
        for function in FUNCTIONS:
            # The reconciler's queue carries the watchdogs' StallCheckDue; its hourly scan is _reconciler.
            serial = function in options.serial_functions or function == RECONCILE
            for index in range(1 if serial else options.workers_per_function):
                spawn(f"worker-{function}-{index}", self._worker, function)
        if options.reconciler:
            spawn("reconciler", self._reconciler)

    # -- the workers --------------------------------------------------------------------------------------
    def _worker(self, function: str) -> None:
        sqs = self.runtime.client("sqs")
        url = self.queues[function]
        stop = self.runtime.stop_event
        while not stop.is_set():
            for message in self._receive(sqs, url, function):
                self._handle(sqs, url, function, message)

    def _receive(self, sqs: Any, url: str, function: str) -> list[dict[str, Any]]:
        """The next message, if any; none when the poll failed (the worker outlives it, as Lambda's does)."""
        stop = self.runtime.stop_event
        try:
            return list(
                sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=1,
                    WaitTimeSeconds=1,
                    AttributeNames=["ApproximateReceiveCount"],
                ).get("Messages", [])
            )
        except Exception as exc:  # noqa: BLE001 - the worker outlives a failed poll, as Lambda's poller does
            if not stop.is_set():
                self.runtime.errors.append(f"{function} poll: {exc}")
                stop.wait(0.2)
            return []

    def _handle(self, sqs: Any, url: str, function: str, message: dict[str, Any]) -> None:
        """Deliver one message; delete it when handled (or out of retries), else let it come again."""
        options = self.runtime.options
        with self._lock:
            self.event_bodies.append(message["Body"])
        event = json.loads(message["Body"])
        delay = self.runtime.fault_draws.delivery_delay()
        if delay:
            self.runtime.stop_event.wait(delay)
        if options.faults.duplicate_deliveries:
            delivered = self._deliver_twice_at_once(function, event)
        else:
            delivered = self._deliver(function, event)
        receives = int(message["Attributes"].get("ApproximateReceiveCount", "1"))
        if delivered or receives >= options.max_receives:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        else:
            sqs.change_message_visibility(
                QueueUrl=url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=options.retry_delay_seconds,
            )

    def _deliver_twice_at_once(self, function: str, event: dict[str, Any]) -> bool:
        """The duplicate profile: two invocations with the same event, running at the same time."""
        results: list[bool] = []
        twin = threading.Thread(
            target=lambda: results.append(self._deliver(function, event)),
            name=f"{threading.current_thread().name}-twin",
            daemon=True,
        )
        twin.start()
        first = self._deliver(function, event)
        twin.join()
        return first and all(results)

    def _deliver(self, function: str, event: dict[str, Any]) -> bool:
        """Invoke the function with the event and record the outcome; whether it was handled."""
        detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
        operation_id = detail.get("operation_id") if detail else None
        try:
            response = self.runtime.invoke(function, event)
            outcome = str(response.get("status"))
            ok = True
        except Exception as exc:  # noqa: BLE001 - like Lambda: an error means the event comes again
            outcome = f"error: {type(exc).__name__}: {exc}"
            ok = False
        at = time.monotonic() - self.runtime.started_at
        with self._lock:
            self.deliveries.append(
                Delivery(at, function, str(event.get("detail-type")), operation_id, outcome)
            )
        return ok

    # -- the reconciler's schedule --------------------------------------------------------------------------
    def _reconciler(self) -> None:
        options = self.runtime.options
        context = LambdaContext(function_name(RECONCILE, options.environment), options.target_region)
        while not self.runtime.stop_event.wait(options.reconcile_interval_seconds):
            try:
                self.runtime.handlers[RECONCILE](
                    {"source": "aws.events", "detail-type": "Scheduled Event"}, context
                )
            except Exception as exc:  # noqa: BLE001 - the schedule fires again
                self.runtime.errors.append(f"reconcile: {exc}")


def _queue_target(function: str, queue_arn: str) -> dict[str, Any]:
    """A rule's target: the function's queue, given the whole event (`account` included) as Lambda gets it."""
    return {
        "Id": function,
        "Arn": queue_arn,
        "InputTransformer": {"InputPathsMap": {}, "InputTemplate": "<aws.events.event.json>"},
    }
