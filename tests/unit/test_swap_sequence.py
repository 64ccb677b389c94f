"""The swap strategy's order of steps, its names beside the target, and the strategy field's checks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from functions import sequence
from functions.identifiers import IDENTIFIER_MAX, identifier_problem, swap_names, writer_id
from schemas.common import Step
from schemas.config import MAX_SWAP_TARGET_CLUSTER_ID, RestoreConfig
from unit.fakes import RUNBOOK_CONFIG


def config(**fields: Any) -> RestoreConfig:
    return RestoreConfig.model_validate({**RUNBOOK_CONFIG, **fields})


def test_replace_is_the_default_and_keeps_the_runbooks_order() -> None:
    plain = config()
    assert plain.strategy == "replace" and not sequence.swaps(plain)
    assert sequence.steps(plain) == sequence.RUNBOOK
    assert Step.SWAP_CLUSTERS not in sequence.RUNBOOK
    assert sequence.following(Step.CHECK_COPY_STATUS, plain) is Step.DELETE_RDS


def test_swap_restores_beside_switches_after_verifying_and_deletes_the_old_target_last() -> None:
    swap = config(strategy="swap")
    assert sequence.steps(swap) == (
        Step.SNAPSHOT_CHECK,
        Step.COPY_SNAPSHOT,
        Step.CHECK_COPY_STATUS,
        Step.RESTORE_SNAPSHOT,
        Step.CHECK_RESTORE_STATUS,
        Step.SETUP_DB_USERS,
        Step.VERIFY_RESTORE,
        Step.SWAP_CLUSTERS,
        Step.DELETE_RDS,
        Step.NOTIFY_COMPLETION,
        Step.CLEANUP,
    )
    assert sequence.after(Step.CHECK_COPY_STATUS, swap) is Step.RESTORE_SNAPSHOT
    assert sequence.after(Step.VERIFY_RESTORE, swap) is Step.SWAP_CLUSTERS
    assert sequence.after(Step.DELETE_RDS, swap) is Step.NOTIFY_COMPLETION


def test_swap_with_masking_masks_before_the_users() -> None:
    masked = config(
        strategy="swap",
        masking_rules=[{"table": "public.users", "column": "email", "strategy": "email"}],
        masking_key_secret_id="dev/masking-key",
    )
    order = sequence.steps(masked)
    assert order.index(Step.MASK_DATA) == order.index(Step.SETUP_DB_USERS) - 1
    assert order.index(Step.SWAP_CLUSTERS) == order.index(Step.VERIFY_RESTORE) + 1


@pytest.mark.parametrize("value", ["", "blue-green", "SWAP", None])
def test_an_unknown_or_empty_strategy_is_refused(value: Any) -> None:
    with pytest.raises(ValidationError, match="strategy"):
        config(strategy=value)


def test_the_names_beside_the_target_are_per_operation_and_fit_rds() -> None:
    target = "t" * MAX_SWAP_TARGET_CLUSTER_ID
    new, old = swap_names(target, "op-1")
    assert swap_names(target, "op-1") == (new, old)  # the same on every retry
    assert swap_names(target, "op-2")[0] != new  # and another operation's differ
    assert new.startswith(f"{target}-new-") and old.startswith(f"{target}-old-")
    for name in (new, old, writer_id(new)):
        assert identifier_problem(name) is None and len(name) <= IDENTIFIER_MAX


def test_a_target_too_long_for_swap_is_refused_up_front_naming_the_limit() -> None:
    long_target = "t" * (MAX_SWAP_TARGET_CLUSTER_ID + 1)
    assert config(target_cluster_id=long_target).strategy == "replace"  # replace still takes it
    with pytest.raises(ValidationError, match=f"at most {MAX_SWAP_TARGET_CLUSTER_ID} under swap"):
        config(target_cluster_id=long_target, strategy="swap")
