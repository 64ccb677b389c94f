"""The wake-ups a transition leaves behind: a wait's next check, and the operation's watchdog between waits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from functions import wakeup
from functions.settings import Settings
from schemas.common import Step
from schemas.config import RestoreConfig
from schemas.state import OperationState, Waiting


@dataclass(frozen=True)
class TimerPlan:
    """What a committed transition changes in the operation's wake-ups."""

    step: Step
    was: str  # the operation's status before the transition
    begins_stretch: bool  # a stretch of steps between two waits begins here (start, a resumed step)
    next_check: datetime | None = None  # the wait's next check, to schedule
    replaces: datetime | None = None  # the wait's wake-up that the next one replaces
    ended: Waiting | None = None  # the wait this transition ended: its pending wake-up is dropped


def recheck_interval(state: OperationState) -> timedelta:
    """The operation's `recheck_interval_seconds`: the shortest gap between two checks of a wait."""
    return timedelta(seconds=RestoreConfig.model_validate(state.config).recheck_interval_seconds)


def apply(settings: Settings, state: OperationState, plan: TimerPlan, now: datetime) -> None:
    """Schedule or drop the wait's wake-up, then arm or disarm the watchdog (after the commit)."""
    if plan.next_check is not None:
        wakeup.reschedule(settings, state.operation_id, plan.step, plan.next_check, plan.replaces, now)
    elif plan.ended is not None:
        wakeup.cancel(settings, state.operation_id, Step(plan.ended.step), plan.ended.next_check_at, now)
    watch(settings, state, plan, now)


def watch(settings: Settings, state: OperationState, plan: TimerPlan, now: datetime) -> None:
    """Arm the operation's watchdog when a stretch of steps between two waits begins (the operation starts,
    a wait ends, or a resumed step hands over: resume saved the operation as running, so `was` does not
    tell); disarm it when a wait begins (the wait has its own wake-up) or the operation ends."""
    begins = plan.was != "running" or plan.begins_stretch
    if state.status == "running" and begins:
        wakeup.arm_watchdog(settings, state.operation_id, now + timedelta(seconds=settings.stall_seconds))
    elif plan.was == "running" and state.status != "running":
        wakeup.disarm_watchdog(settings, state.operation_id)
