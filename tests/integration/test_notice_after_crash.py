"""notify_completion dying after it sent the outcome notice, before its run is recorded: run again, it
publishes nothing more to the topic; the queue may hold the notice twice, and no more."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from functions.engine import writer
from integration.test_idempotency import bus_event
from integration.world import OPERATION_ID, STATE_TABLE, TARGET_REGION, World
from schemas.common import Step, utcnow

pytestmark = pytest.mark.integration


class Crashed(RuntimeError):
    """The function died: nothing after this point of the run happened."""


def crash_once_at(step: Step) -> Callable[..., bool]:
    """A writer hook that kills the first run of `step` at its commit, after its AWS calls."""
    crashed: list[Step] = []

    def hook(at: Step | None, state: Any, events: list[Any], commit: Callable[[], bool]) -> bool:
        if at is step and not crashed:
            crashed.append(step)
            raise Crashed(f"{step.value} died before writing its transition")
        return commit()

    return hook


def topic_messages(world: World) -> list[str]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    topic = sns_backends[DEFAULT_ACCOUNT_ID][TARGET_REGION].topics[world.topic_arn]
    return [sent[1] for sent in topic.sent_notifications]


def expire_claim() -> None:
    """The crashed run's claim runs out (claim_seconds later, in AWS)."""
    from functions.state import DynamoStateStore

    store = DynamoStateStore(STATE_TABLE, TARGET_REGION)
    state = store.get(OPERATION_ID)
    assert state is not None and state.claim is not None
    state.claim.until = utcnow() - timedelta(seconds=1)
    store.save(state)


def test_a_notice_sent_by_a_run_that_died_is_not_published_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operation at notify_completion whose first run dies after sending, before its commit
    world.advance("notify_completion")
    monkeypatch.setattr(writer, "_interceptor", crash_once_at(Step.NOTIFY_COMPLETION))
    trigger = bus_event(
        "StepCompleted",
        {
            "operation_id": OPERATION_ID,
            "step": "verify_restore",
            "next_step": "notify_completion",
            "message": "ok",
        },
    )
    with pytest.raises(Crashed):
        world.invoke("notify_completion", trigger)
    assert len(topic_messages(world)) == 1 and len(world.notifications()) == 1

    # When the trigger comes again once the dead run's claim has run out
    expire_claim()
    response = world.invoke("notify_completion", trigger)

    # Then the step completes; the topic got the notice once, the queue once more (the one duplicate a
    # crash between the send and its record allows), and the recorded SNS message id is the first one's
    assert response["status"] == "success", response
    assert len(topic_messages(world)) == 1
    assert len(world.notifications()) == 2
    state = world.state()
    assert state is not None and (state["status"], state["next_step"]) == ("running", "cleanup")
    assert response["sns_message_id"] == state["outputs"]["sns:completed"]
