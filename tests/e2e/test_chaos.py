"""Fault injection on the local runtime: a small chaos batch passes, and each fault really happens."""

from __future__ import annotations

import io

import pytest

from aurora_restore.chaos import MUTATING_KINDS, PROFILES, run_chaos
from aurora_restore.chaos_checks import SWAP_KINDS

pytestmark = pytest.mark.e2e


def test_one_operation_under_every_profile_completes_once_with_no_secret_anywhere() -> None:
    # Given the chaos run with one operation per profile (plus the conflicting request on its target)
    out = io.StringIO()

    # When it runs
    code = run_chaos(operations_per_profile=1, out=out)

    # Then every expectation holds and the table shows each profile, no secret
    text = out.getvalue()
    assert code == 0, text
    assert "chaos: PASS" in text
    table = text[text.index("profile ") :].splitlines()
    rows = {line.split()[0]: line.split() for line in table[2 : 2 + len(PROFILES)]}
    assert set(rows) == set(PROFILES)
    kinds = len(MUTATING_KINDS)
    for name, row in rows.items():
        ops, completed, failed_as_expected = row[1:4]
        assert (ops, completed, failed_as_expected) == ("2", "1", "1"), name
        calls = [int(cell) for cell in row[4 : 4 + kinds]]
        dup, busy, faulted = (int(cell) for cell in row[4 + kinds : 7 + kinds])
        topic, queue, faults, secrets = row[7 + kinds : 11 + kinds]
        # every mutating call counted at the server: one accepted of each kind, and each repeat is one RDS
        # refused (as done already, or for now) or one an injected fault answered, in its own column
        assert all(count >= 1 for count in calls), name
        assert sum(calls) == kinds + dup + busy + faulted, (name, row)
        assert dup == 0 or name == "crash", name  # a duplicate only after a crash of the step making it
        assert faulted == 0 or name == "aws-failures", name
        assert int(faults) > 0, name  # faults injected: the profile really bit
        assert secrets == "0", name
        # one outcome notice per operation on the topic; on the queue one, and after notify_completion's
        # crash between the send and its record, two for that operation, said so
        assert topic == "1", name
        assert queue == ("1-2" if name == "crash" else "1"), name
    assert rows["crash"][4 + kinds] != "0"  # the crashed steps were run again and RDS refused the repeats
    assert "note [crash]" in text and "the queue got the outcome notice twice" in text
    _check_swap_table(text)


def _check_swap_table(text: str) -> None:
    """Every profile ran under swap too: one swap completed with each mutating call accepted once and its
    two renames, and one swap failing verification left its target serving and unchanged."""
    swap_table = text[text.index("profile ", text.index("profile ") + 1) :].splitlines()
    rows = {line.split()[0]: line.split() for line in swap_table[2 : 2 + len(PROFILES)]}
    assert set(rows) == set(PROFILES)
    kinds = len(SWAP_KINDS)
    rename = list(SWAP_KINDS.values()).index("rename")
    for name, row in rows.items():
        assert row[1:4] == ["2", "1", "1"], name  # the swap completed; the one failing verification kept
        calls = [int(cell) for cell in row[4 : 4 + kinds]]
        dup, busy, faulted = (int(cell) for cell in row[4 + kinds : 7 + kinds])
        assert calls[rename] >= 2 and all(count >= 1 for count in calls), (name, row)
        assert sum(calls) == kinds + 1 + dup + busy + faulted, (name, row)  # the second rename
        assert dup == 0 or name == "crash", name
        assert row[7 + kinds : 9 + kinds] == ["1", "1-2" if name == "crash" else "1"], name
        assert row[-1] == "PASS", name
        # the swap failing before the switch left the target as it was, said so
        assert f"note [{name}, swap]" in text, name
    assert "failed before the switch" in text and "kept; the restored" in text


def test_an_unknown_profile_is_refused() -> None:
    # Given a profile name that does not exist
    out = io.StringIO()
    # When chaos is asked for it, Then it refuses before starting anything
    assert run_chaos(1, ["no-such-profile"], out=out) == 2
    assert "unknown profile" in out.getvalue()
