"""The order of an operation's steps for its configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.common import Step

if TYPE_CHECKING:
    from schemas.config import RestoreConfig

# The runbook's ten steps, in the order an operation without masking takes them (the replace strategy).
RUNBOOK: tuple[Step, ...] = tuple(step for step in Step if step not in (Step.MASK_DATA, Step.SWAP_CLUSTERS))
# Under the swap strategy the old target is deleted only once the new cluster holds its name.
_SWAP_ORDER: tuple[Step, ...] = (
    Step.SNAPSHOT_CHECK,
    Step.COPY_SNAPSHOT,
    Step.CHECK_COPY_STATUS,
    Step.RESTORE_SNAPSHOT,
    Step.CHECK_RESTORE_STATUS,
    Step.MASK_DATA,
    Step.SETUP_DB_USERS,
    Step.VERIFY_RESTORE,
    Step.SWAP_CLUSTERS,
    Step.DELETE_RDS,
    Step.NOTIFY_COMPLETION,
    Step.CLEANUP,
)


def masks(config: RestoreConfig) -> bool:
    """Whether the operation takes mask_data: it has masking rules or post-restore SQL to run."""
    return bool(config.masking_rules or config.post_restore_sql)


def swaps(config: RestoreConfig | None) -> bool:
    """Whether the operation restores beside the target and switches by rename (the swap strategy)."""
    return config is not None and config.strategy == "swap"


def steps(config: RestoreConfig) -> tuple[Step, ...]:
    """Every step the operation takes, in order: the runbook's ten (replace), or under swap the restore
    beside the target, swap_clusters after verify_restore and delete_rds after that; and mask_data between
    check_restore_status and setup_db_users when `masks(config)` (so no application user can log in
    before the data is masked)."""
    order = _SWAP_ORDER if swaps(config) else tuple(step for step in Step if step is not Step.SWAP_CLUSTERS)
    return tuple(step for step in order if step is not Step.MASK_DATA or masks(config))


def following(step: Step, config: RestoreConfig) -> Step | None:
    """The step after `step` for this configuration (None after the last)."""
    order = steps(config)
    if step not in order:
        raise ValueError(f"{step.value} is not a step of this operation")
    index = order.index(step)
    return order[index + 1] if index + 1 < len(order) else None


def preceding(step: Step, config: RestoreConfig | None) -> Step | None:
    """The step before `step` for this configuration (None: the first); no configuration: the runbook's."""
    order = steps(config) if config is not None else RUNBOOK
    if step not in order:
        order = tuple(Step)
    index = order.index(step)
    return order[index - 1] if index > 0 else None


def position(step: Step, config: RestoreConfig | None) -> int:
    """The step's number in the operation's order, from 1 (its step record's file name)."""
    order = steps(config) if config is not None else RUNBOOK
    return (order if step in order else tuple(Step)).index(step) + 1


def after(step: Step, config: RestoreConfig) -> Step:
    """The step after `step`, which is not the last: what its Done names as next_step."""
    found = following(step, config)
    if found is None:
        raise ValueError(f"{step.value} is the last step")
    return found
