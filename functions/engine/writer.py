"""The one writer of transitions: a conditional write with the events in the item's outbox, then the bus.

The runner, the reconciler and the operator's `abort` write through it; the local runtime's fault profiles
hook in through `intercept`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from botocore.exceptions import BotoCoreError

from functions.bus import Publisher
from functions.errors import PublishError, StaleWrite, StepError
from functions.observability import logger
from functions.store import StateStore
from schemas.common import Step, utcnow
from schemas.events import BUS_EVENT_BY_TYPE, BusEvent
from schemas.state import HistoryEntry, OperationState

# A transition's events normally leave the outbox within milliseconds; older ones were left by a crash.
OUTBOX_GRACE = timedelta(seconds=5)

# (step, state, events, commit) -> published: wraps every commit; the local runtime's crash profile.
Interceptor = Callable[[Step | None, OperationState, list[BusEvent], Callable[[], bool]], bool]
_interceptor: Interceptor | None = None


def intercept(interceptor: Interceptor | None) -> None:
    """Put a hook around every commit of this process (None removes it): fault injection only."""
    global _interceptor
    _interceptor = interceptor


class Writer:
    """Writes an operation's transitions; `claim_token` is the writing invocation's claim, dropped with it."""

    def __init__(self, store: StateStore, publisher: Publisher, claim_token: str | None = None) -> None:
        self.store = store
        self.publisher = publisher
        self.claim_token = claim_token

    def commit(self, state: OperationState, events: list[BusEvent], step: Step | None = None) -> bool:
        """Write the transition with its events in the outbox, put them on the bus, then clear the outbox.
        False when the events could not be put: they wait in the outbox, for the operation's next trigger
        or the reconciler to put (after OUTBOX_GRACE); the transition stands."""
        if _interceptor is not None:
            return _interceptor(step, state, events, lambda: self._commit(state, events))
        return self._commit(state, events)

    def create(self, state: OperationState, events: list[BusEvent], step: Step | None = None) -> bool:
        """An operation's first write with its events in the outbox, then the bus, as `commit`: for an
        operation that begins ended (a request refused before its step ran). StaleWrite when an item with
        its id is there already (it is left as it is)."""

        def create() -> bool:
            state.outbox, last = _outbox(events), (state.history[-1] if state.history else None)
            try:
                self.store.create(state)
            except StaleWrite:
                self._carry_on_if_written(state, 1, last)  # else raised again: the id is taken
            return self._publish(state, events)

        if _interceptor is not None:
            return _interceptor(step, state, events, create)
        return create()

    def _commit(self, state: OperationState, events: list[BusEvent]) -> bool:
        if state.claim is not None and state.claim.token == self.claim_token:
            state.claim = None
        state.outbox = _outbox(events)
        self._write(state)
        return self._publish(state, events)

    def _publish(self, state: OperationState, events: list[BusEvent]) -> bool:
        """The written transition's events onto the bus, then the outbox cleared (False: they wait in it)."""
        if not events:
            return True
        try:
            self.publisher.publish(events)
        except (PublishError, BotoCoreError) as exc:
            logger.warning(
                "events not put on the bus; they wait in the outbox",
                extra={"error_type": type(exc).__name__, "events": [e.detail_type for e in events]},
            )
            return False
        state.outbox = []
        try:
            self.store.save(state)
        except StaleWrite:
            logger.info("outbox already cleared by a newer writer")
        except StepError:
            logger.warning("outbox not cleared: its events may be put on the bus again (harmless)")
        return True

    def _write(self, state: OperationState) -> None:
        """The transition's one conditional write, with two of DynamoDB's answers handled here:
        - "condition failed" for a write it applied (a 500 or a timeout, then botocore's retry meeting its
          own write): the item holds this very transition, so the writer carries on from it;
        - refused for now (throttled): the writer's claim is dropped before the error goes up, or every retry
          of the trigger would find the step held until the claim expired."""
        expected, last = state.version, (state.history[-1] if state.history else None)
        try:
            self.store.save(state)
        except StaleWrite:
            self._carry_on_if_written(state, expected + 1, last)
        except StepError:
            self._drop_claim(state.operation_id)
            raise

    def _carry_on_if_written(self, state: OperationState, version: int, last: HistoryEntry | None) -> None:
        """After "condition failed": carry on when the item holds this very transition at `version`, else
        raise StaleWrite (another writer came first)."""
        written = self.store.get(state.operation_id)
        if written is None or not _holds(written, version, last, state.outbox):
            raise StaleWrite(state.operation_id)
        logger.info("the transition was written; its answer was lost")
        state.version, state.updated_at = written.version, written.updated_at

    def _drop_claim(self, operation_id: str) -> None:
        try:
            held = self.store.get(operation_id)
            if held is not None and held.claim is not None and held.claim.token == self.claim_token:
                held.claim = None
                self.store.save(held)
        except (StaleWrite, StepError):
            logger.info("claim not released; it expires by itself")

    def flush_outbox(self, state: OperationState) -> OperationState | None:
        """Events a crashed run wrote but may not have put on the bus: put them now (duplicates are harmless)."""
        if not state.outbox:
            return None
        events = [
            BUS_EVENT_BY_TYPE[item["detail_type"]].model_validate(item["detail"]) for item in state.outbox
        ]
        self.publisher.publish(events)
        state.outbox = []
        saved = self.store.save(state)
        self.purge_if_due(saved)
        return saved

    def flush_if_stale(self, state: OperationState) -> OperationState:
        """The outbox, if a crash left it there longer than OUTBOX_GRACE, put on the bus."""
        if state.outbox and utcnow() - state.updated_at > OUTBOX_GRACE:
            return self.flush_outbox(state) or state
        return state

    def purge_if_due(self, state: OperationState) -> None:
        """`delete_state`: a completed operation keeps only its results, once its events are on the bus."""
        if state.status != "completed" or not state.config or state.outbox:
            return
        if not state.config.get("delete_state"):
            return
        try:
            self.store.keep_results_only(state)
        except StaleWrite:
            logger.info("state moved before it was reduced to its results; the reconciler's scan does it")
        except StepError as exc:
            logger.warning("state not reduced to its results", extra={"error": exc.message})


def _outbox(events: list[BusEvent]) -> list[dict[str, object]]:
    return [{"detail_type": e.detail_type, "detail": e.model_dump(mode="json")} for e in events]


def _holds(
    written: OperationState | None, version: int, last: object, outbox: list[dict[str, object]]
) -> bool:
    """Whether the item as read holds the very transition whose write was answered "condition failed"."""
    if written is None or written.version != version or not written.history:
        return False
    return written.history[-1] == last and written.outbox == outbox
