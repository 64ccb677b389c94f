"""Each invocation's log lines carry its own function, request and step, also when the local runtime runs
several handlers at once in one process."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from functions.observability import invocation_keys, logger


@dataclass
class Context:
    function_name: str
    aws_request_id: str
    invoked_function_arn: str = "arn:aws:lambda:us-west-2:123456789012:function:x"
    memory_limit_in_mb: int = 256


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_two_invocations_at_once_keep_their_own_keys() -> None:
    # Given two handlers running at the same moment in one process, each logging after the other set its keys
    both_started = threading.Barrier(2)

    @invocation_keys
    def handler(event: dict[str, Any], context: Any) -> None:
        logger.thread_safe_append_keys(step=event["step"], operation_id=event["operation_id"])
        both_started.wait()
        logger.info(f"{event['step']} done")

    lines = Lines()
    lines.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(lines)
    try:
        runs = [
            threading.Thread(
                target=handler,
                args=(
                    {"id": f"event-{step}", "step": step, "operation_id": op},
                    Context(f"fn-{step}", f"req-{step}"),
                ),
            )
            for step, op in (("copy_snapshot", "op-a"), ("reconcile", "op-b"))
        ]
        # When both run
        for run in runs:
            run.start()
        for run in runs:
            run.join(timeout=10)
    finally:
        logger._logger.removeHandler(lines)

    # Then each line names its own function, request, correlation id, step and operation
    by_message = {line["message"]: line for line in lines.lines}
    for step, op in (("copy_snapshot", "op-a"), ("reconcile", "op-b")):
        line = by_message[f"{step} done"]
        assert (line["function_name"], line["function_request_id"], line["correlation_id"]) == (
            f"fn-{step}",
            f"req-{step}",
            f"event-{step}",
        )
        assert (line["step"], line["operation_id"]) == (step, op)
