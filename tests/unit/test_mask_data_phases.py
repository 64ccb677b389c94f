"""mask_data's invocations, decided from what the state holds (the database library stubbed: no PostgreSQL)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from functions.database import masking
from functions.database.masking import TableProgress
from functions.engine.contract import Waiting
from functions.steps import masking as step
from schemas.config import RestoreConfig
from unit.fakes import RUNBOOK_CONFIG

RULES = [{"table": "public.users", "column": "email", "strategy": "email"}]


def context(outputs: dict[str, Any]) -> Any:
    config = RestoreConfig.model_validate(
        {**RUNBOOK_CONFIG, "masking_rules": RULES, "masking_key_secret_id": "dev/masking-key"}
    )
    return SimpleNamespace(
        config=config, outputs=outputs, operation_id="op", settings=SimpleNamespace(claim_seconds=900.0)
    )


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(step, "_key", lambda ctx: b"k" * 32)


def test_a_table_not_done_by_the_deadline_goes_on_in_the_next_invocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an operation sampled, and a table half masked when the invocation's time is up
    seen: dict[str, Any] = {}

    def mask(conn: Any, operation_id: str, rules: Any, key: bytes, **options: Any) -> list[TableProgress]:
        seen.update(options)
        return [TableProgress(table="public.users", rows_done=40, rows_total=100, done=False)]

    monkeypatch.setattr(masking, "mask", mask)
    ctx = context({"masking_samples": {"public.users.email": ["h"]}, "masking_progress": []})

    # When the invocation masks
    outcome = step._mask_and_run(ctx, conn=None)

    # Then it waits a second for its next invocation, saying how far it is, with a deadline of half its time
    assert isinstance(outcome, Waiting)
    assert outcome.wait.recheck_after_seconds == step.NEXT_INVOCATION_SECONDS
    assert outcome.message == "masking public.users 40% (40 of 100 rows)"
    assert outcome.fields["masking_status"] == "masking"
    assert outcome.outputs.recorded()["masking_progress"] == [
        {"table": "public.users", "rows_done": 40, "rows_total": 100, "done": False}
    ]
    assert seen["batch_rows"] == 1_000_000 and seen["deadline"] is not None


def test_masking_is_over_only_when_every_table_is_done_and_every_script_ran() -> None:
    done = [{"table": "public.users", "rows_done": 2, "rows_total": 2, "done": True}]
    assert step._masking_ended(context({"masking_progress": done, "post_restore_sql_done": []}))
    assert not step._masking_ended(context({"masking_progress": done}))
    assert not step._masking_ended(
        context({"masking_progress": [{**done[0], "done": False}], "post_restore_sql_done": []})
    )
    assert not step._masking_ended(context({"masking_progress": [], "post_restore_sql_done": []}))
