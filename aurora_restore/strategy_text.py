"""How the CLI words an operation's strategy (replace or swap) and, under swap, the target's time out of use.

Under replace the target is out of use from its deletion to the users set up on the restored cluster
(aurora_restore.render says it as it always has). Under swap the old target serves until the switch, so
the downtime is the switch alone: from the swap_clusters run that renamed the old target away to the
restored cluster answering under the target's name (functions.notify.out_of_use reckons both spans).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, get_args

from functions.notify import out_of_use, restored_beside
from schemas.common import spoken_duration
from schemas.config import RestoreConfig
from schemas.state import TERMINAL_STATUSES

if TYPE_CHECKING:
    from schemas.state import OperationState

# RestoreConfig's: the choices `--strategy` offers, and what an operation whose config names none took.
STRATEGIES: tuple[str, ...] = get_args(RestoreConfig.model_fields["strategy"].annotation)
DEFAULT_STRATEGY = str(RestoreConfig.model_fields["strategy"].default)


def strategy_of(state: OperationState) -> str:
    """The operation's strategy, from its resolved configuration ("replace" when it records none)."""
    return state.strategy or DEFAULT_STRATEGY


def swaps(state: OperationState) -> bool:
    return strategy_of(state) == "swap"


def strategy_line(state: OperationState) -> str:
    """`status`'s strategy line; under swap, under it, the names the operation gives clusters, once known."""
    lines = [f"strategy    {strategy_of(state)}"]
    if swaps(state):
        restored = restored_beside(state)
        if restored:
            lines.append(f"            restored beside the target as {restored}")
        old = state.outputs.get("old_cluster_id")
        if old:
            lines.append(f"            the old target renamed {old}, to be deleted after the switch")
    return "\n".join(lines)


def _utc(moment: datetime) -> str:
    moment = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def switch_downtime_text(state: OperationState) -> str:
    """Under swap: the target's time out of use, the switch alone; or that it has not been out of use."""
    span = out_of_use(state) if state.outputs.get("switch_started") else None
    if span is None:
        if state.status in TERMINAL_STATUSES:
            return "none: the switch never began, the target kept serving"
        return "none so far: the target serves until the switch"
    since, until = span
    began = _utc(since)
    if rolled_back(state):
        back = f" after {spoken_duration(until - since)}" if until is not None else ""
        return (
            f"since {began} (the switch), rolled back: the old target was renamed back under its name{back}"
        )
    if until is not None:
        return (
            f"{spoken_duration(until - since)}, the switch: from {began} (the old target renamed away) to the"
            " restored cluster answering under the target's name"
        )
    return f"since {began} (the switch): the restored cluster does not answer under the target's name yet"


def rolled_back(state: OperationState) -> bool:
    """Whether the last switch failed and renamed the old target back (its run that failed found it serving
    under its name again). A resumed switch that runs again is no longer rolled back."""
    runs = [entry for entry in state.history if entry.step == "swap_clusters"]
    return bool(state.outputs.get("switch_rolled_back")) and bool(runs) and runs[-1].outcome == "failed"


def downtime_seconds(state: OperationState) -> float | None:
    """The target's time out of use in seconds once it is back (None: never out of use, or not back yet)."""
    span = out_of_use(state)
    if span is None or span[1] is None:
        return None
    return (span[1] - span[0]).total_seconds()


def out_of_use_json(state: OperationState) -> dict[str, Any] | None:
    """`status --json`'s `out_of_use`: since and until when the target was out of use, and for how long."""
    span = out_of_use(state)
    if span is None:
        return None
    seconds = downtime_seconds(state)
    return {
        "since": span[0].isoformat(),
        "until": span[1].isoformat() if span[1] else None,
        "seconds": round(seconds, 1) if seconds is not None else None,
        "what": "the switch" if swaps(state) else "the deletion to the users set up on the restored cluster",
    }
