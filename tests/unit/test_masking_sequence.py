"""Which steps an operation takes for its configuration, and the masking fields' checks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from aurora_restore.render import masking_lines
from functions import sequence
from schemas.common import Step
from schemas.config import RestoreConfig, environment_only_problem
from schemas.state import OperationState
from unit.fakes import RUNBOOK_CONFIG

RULES = [{"table": "public.users", "column": "email", "strategy": "email"}]
KEY = {"masking_key_secret_id": "dev/masking-key"}
SCRIPT = {"uri": "s3://dev-sql/after.sql", "sha256": "AB" * 32}


def config(**fields: Any) -> RestoreConfig:
    return RestoreConfig.model_validate({**RUNBOOK_CONFIG, **fields})


def test_without_masking_an_operation_takes_the_runbooks_ten_steps() -> None:
    plain = config()
    assert sequence.steps(plain) == sequence.RUNBOOK
    assert len(sequence.RUNBOOK) == 10 and Step.MASK_DATA not in sequence.RUNBOOK
    assert sequence.following(Step.CHECK_RESTORE_STATUS, plain) is Step.SETUP_DB_USERS
    assert sequence.preceding(Step.SETUP_DB_USERS, plain) is Step.CHECK_RESTORE_STATUS
    assert sequence.position(Step.SETUP_DB_USERS, plain) == 7
    assert sequence.following(Step.CLEANUP, plain) is None
    with pytest.raises(ValueError, match="not a step of this operation"):
        sequence.following(Step.MASK_DATA, plain)


@pytest.mark.parametrize("fields", [{"masking_rules": RULES, **KEY}, {"post_restore_sql": [SCRIPT]}])
def test_rules_or_scripts_put_mask_data_between_the_restore_and_the_users(fields: dict[str, Any]) -> None:
    masked = config(**fields)
    assert sequence.masks(masked)
    assert sequence.following(Step.CHECK_RESTORE_STATUS, masked) is Step.MASK_DATA
    assert sequence.after(Step.MASK_DATA, masked) is Step.SETUP_DB_USERS
    assert sequence.preceding(Step.SETUP_DB_USERS, masked) is Step.MASK_DATA
    assert sequence.position(Step.MASK_DATA, masked) == 7
    assert sequence.steps(masked) == (*sequence.RUNBOOK[:6], Step.MASK_DATA, *sequence.RUNBOOK[6:])


def test_rules_need_the_key_secret_and_a_script_its_sha256() -> None:
    with pytest.raises(ValidationError, match="masking_rules need masking_key_secret_id"):
        config(masking_rules=RULES)
    with pytest.raises(ValidationError, match="sha256"):
        config(post_restore_sql=[{"uri": SCRIPT["uri"], "sha256": "not-hex"}])
    with pytest.raises(ValidationError, match="uri"):
        config(post_restore_sql=[{"uri": "https://example.com/x.sql", "sha256": "ab" * 32}])
    script = config(post_restore_sql=[SCRIPT]).post_restore_sql[0]
    assert (script.bucket, script.key, script.sha256) == ("dev-sql", "after.sql", "ab" * 32)


@pytest.mark.parametrize(
    "requested",
    [
        {"masking_rules": []},
        {"masking_key_secret_id": "other"},
        {"post_restore_sql": []},
        {"masking_rules": RULES},
    ],
)
def test_a_request_naming_a_masking_field_is_refused_whatever_its_value(requested: dict[str, Any]) -> None:
    problem = environment_only_problem({"target_cluster_id": "x", **requested})
    assert problem is not None and next(iter(requested)) in problem
    assert "environment's configuration only" in problem


def test_other_overrides_are_not_refused_for_masking() -> None:
    assert environment_only_problem({"target_cluster_id": "x"}) is None
    assert environment_only_problem("not a mapping") is None


def test_status_shows_each_masked_tables_progress_and_the_scripts_run() -> None:
    now = datetime(2026, 12, 7, tzinfo=UTC)
    state = OperationState(
        operation_id="op",
        target_date=date(2026, 12, 7),
        created_at=now,
        updated_at=now,
        outputs={
            "masking_progress": [
                {"table": "public.users", "rows_done": 400, "rows_total": 1000, "done": False},
                {"table": "app_schema.orders", "rows_done": 5, "rows_total": 5, "done": True},
            ],
            "post_restore_sql_done": [
                {"uri": SCRIPT["uri"], "sha256": "ab" * 32, "status": "UPDATE 2", "seconds": 0.1}
            ],
        },
    )
    assert masking_lines(state) == [
        "masking     public.users 40% (400 of 1,000 rows)",
        "            app_schema.orders done (5 of 5 rows)",
        "sql         s3://dev-sql/after.sql: UPDATE 2",
    ]
