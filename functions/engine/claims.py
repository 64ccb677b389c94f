"""A step invocation's claim on its operation: taken before AWS calls, dropped after, deferred to when held."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from functions import wakeup
from functions.engine.timers import recheck_interval
from functions.errors import ClaimHeld, StaleWrite, StepError
from functions.observability import logger
from functions.settings import Settings
from functions.store import StateStore
from schemas.common import EVENT_WAITING_STEPS, Step, utcnow
from schemas.state import Claim, OperationState

MAX_ATTEMPTS = 4
# A duplicate at a step that does not wait arms the watchdog this long after the claim it met expires (the
# reconciler re-drives a claim strictly past its time).
CLAIM_EXPIRY_MARGIN = timedelta(seconds=1)


class Claims:
    """One invocation's claims: its own token, so a duplicate of its trigger never makes the same AWS calls."""

    def __init__(self, step: Step, store: StateStore, settings: Settings) -> None:
        self.step = step
        self.store = store
        self.settings = settings
        self.token = uuid.uuid4().hex

    def owns(self, state: OperationState) -> bool:
        return state.claim is not None and state.claim.token == self.token

    def take(self, state: OperationState) -> OperationState:
        """Claim the step (a conditional write); ClaimHeld when another invocation's claim is live. A claim
        left by a crashed invocation expires after `claim_seconds` (the function's timeout)."""
        now = utcnow()
        claim = state.claim
        if claim is not None and claim.token != self.token and claim.until > now:
            raise ClaimHeld(f"{claim.step} is being run by another invocation until {claim.until:%H:%M:%S}")
        until = now + timedelta(seconds=self.settings.claim_seconds)
        state.claim = Claim(step=self.step, token=self.token, until=until)
        return self.store.save(state)

    def release(self, state: OperationState, retry_error: str | None = None) -> None:
        """Drop this invocation's claim, re-reading when the state moved meanwhile: a claim left behind holds
        every next trigger off until it expires. With the retryable failure that ends this try, for the
        reconciler to name if the step never completes."""
        for _ in range(MAX_ATTEMPTS):
            if not self.owns(state):
                return
            state.claim = None
            if retry_error is not None:
                state.retry_error = retry_error
            try:
                self.store.save(state)
                return
            except StaleWrite:
                fresh = self.store.get(state.operation_id)
                if fresh is None:
                    return
                state = fresh
            except StepError:
                break
        logger.info("claim not released; it expires by itself")

    def defer(self, state: OperationState, held: ClaimHeld) -> dict[str, Any] | None:
        """Stand aside from a step another invocation is running, without raising (None: raise after all).

        A raised error counts against the function's errors alarm, and an async trigger that raised at its
        retries lands in the DLQ; meeting a live claim is routine, so the trigger is answered `deferred` once
        something is set to look again:
        - at a wait's step, where an RDS event races the wait's wake-up (and may be news the holder's check
          read too early): a RecheckDue `recheck_interval_seconds` from now;
        - elsewhere, where the trigger duplicates the one being run: the operation's watchdog, moved to just
          after the claim expires, re-drives the step should the holder die.
        With nothing scheduled (wake-ups not configured, or Scheduler refused) it raises ClaimHeld, and Lambda
        delivers the trigger again.
        """
        if self.step in EVENT_WAITING_STEPS:
            at = utcnow() + recheck_interval(state)
            scheduled = wakeup.schedule_recheck(self.settings, state.operation_id, self.step, at)
            then = f"looked at again at {at:%H:%M:%S}"
        else:
            assert state.claim is not None  # what ClaimHeld met
            at = state.claim.until + CLAIM_EXPIRY_MARGIN
            scheduled = wakeup.arm_watchdog(self.settings, state.operation_id, at)
            then = f"the watchdog looks at it at {at:%H:%M:%S}, should the holder die"
        if not scheduled:
            return None
        message = f"{held.message}; {then}"
        logger.info("step claimed by another invocation; deferred", extra={"reason": message})
        return {"operation_id": state.operation_id, "status": "deferred", "message": message}
