"""Fault injection on the local runtime: a small chaos batch passes, and each fault really happens."""

from __future__ import annotations

import io

import pytest

from aurora_restore.chaos import MUTATING_KINDS, PROFILES, run_chaos

pytestmark = pytest.mark.e2e


def test_one_operation_under_every_profile_completes_once_with_no_secret_anywhere() -> None:
    # Given the chaos run with one operation per profile (plus the conflicting request on its target)
    out = io.StringIO()

    # When it runs
    code = run_chaos(operations_per_profile=1, out=out)

    # Then every expectation holds and the table shows each profile, one of each mutating call, no secret
    text = out.getvalue()
    assert code == 0, text
    assert "chaos: PASS" in text
    table = text[text.index("profile ") :].splitlines()
    rows = {line.split()[0]: line.split() for line in table[2 : 2 + len(PROFILES)]}
    assert set(rows) == set(PROFILES)
    for name, row in rows.items():
        ops, completed, failed_as_expected = row[1:4]
        assert (ops, completed, failed_as_expected) == ("2", "1", "1"), name
        assert row[4 : 4 + len(MUTATING_KINDS)] == ["1"] * len(MUTATING_KINDS), name
        assert int(row[4 + len(MUTATING_KINDS)]) > 0, name  # faults injected: the profile really bit
        assert row[5 + len(MUTATING_KINDS)] == "0", name  # secrets found


def test_an_unknown_profile_is_refused() -> None:
    # Given a profile name that does not exist
    out = io.StringIO()
    # When chaos is asked for it, Then it refuses before starting anything
    assert run_chaos(1, ["no-such-profile"], out=out) == 2
    assert "unknown profile" in out.getvalue()
