"""The chaos run's table and progress lines: per profile, what happened and whether it held."""

from __future__ import annotations

from dataclasses import dataclass, field

from aurora_restore.chaos_checks import MUTATING_KINDS, SWAP_KINDS


@dataclass
class ProfileResult:
    profile: str
    strategy: str = "replace"  # or swap: the profile's swap operations, run in the same pool
    operations: int = 0
    completed: int = 0
    failed_as_expected: int = 0
    # kind -> the calls that reached moto's server for each completed operation, whatever the answer
    per_kind: dict[str, list[int]] = field(default_factory=dict)
    # accepted, duplicate, refused, injected -> calls so answered, over the profile's completed operations
    verdicts: dict[str, int] = field(default_factory=dict)
    topic: list[int] = field(default_factory=list)  # outcome notices on the topic, per operation
    queue: list[int] = field(default_factory=list)  # and on the queue
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what is allowed and worth saying (a notice sent twice)
    seconds: float = 0.0
    faults: int = 0  # how many faults the profile injected (crashes, AWS errors, dropped events, ...)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def label(self) -> str:
        """The profile, and the strategy when it is not the default."""
        return self.profile if self.strategy == "replace" else f"{self.profile}, {self.strategy}"


def _counts(values: list[int]) -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


def headings(kinds: dict[str, str]) -> list[str]:
    return [
        "profile",
        "ops",
        "completed",
        "failed as expected",
        *kinds.values(),
        *AFTER_KINDS,
    ]


AFTER_KINDS = [
    "dup",
    "busy",
    "faulted",
    "topic",
    "queue",
    "faults",
    "secrets",
    "time",
    "result",
]
HEADINGS = headings(MUTATING_KINDS)
NOTE = (
    "mutating RDS calls per completed operation by kind, counted at moto's server whatever the answer: each"
    " accepted exactly once; dup: refused by RDS as done already (allowed once per kind after the crash of"
    " the step making it), busy: refused by RDS for now (asked again), faulted: answered by an injected"
    " fault (never reached RDS); topic, queue: outcome notices per operation (queue: 2 only after"
    " notify_completion's crash between the send and its record); faults: injected by the profile;"
    " secrets: secret values found in logs, state, events, S3, notifications and this output"
)
SWAP_NOTE = (
    "under the swap strategy, in the same pool as each profile's batch above (faults and time: the"
    " profile's): rename: the switch's renames, each accepted twice (the old target away, the restored"
    " cluster in); failed as expected: a swap whose verification fails, leaving the target as it was"
)


def _row(result: ProfileResult, secrets_found: int, kinds: dict[str, str]) -> list[str]:
    return [
        result.profile,
        str(result.operations),
        str(result.completed),
        str(result.failed_as_expected),
        *[_counts(result.per_kind.get(kind, [])) for kind in kinds],
        str(result.verdicts.get("duplicate", 0)),
        str(result.verdicts.get("refused", 0)),
        str(result.verdicts.get("injected", 0)),
        _counts(result.topic),
        _counts(result.queue),
        str(result.faults),
        str(secrets_found),
        f"{result.seconds:.0f}s",
        "PASS" if result.ok and not secrets_found else "FAIL",
    ]


def render_table(results: list[ProfileResult], secrets_found: int) -> str:
    """The replace strategy's rows, then (when any ran) the swap strategy's in a table of their own."""
    replace = [result for result in results if result.strategy == "replace"]
    swap = [result for result in results if result.strategy != "replace"]
    text = _table(replace, secrets_found, MUTATING_KINDS, NOTE)
    return text + ("\n" + _table(swap, secrets_found, SWAP_KINDS, SWAP_NOTE) if swap else "")


def _table(results: list[ProfileResult], secrets_found: int, kinds: dict[str, str], note: str) -> str:
    heads = headings(kinds)
    rows = [_row(result, secrets_found, kinds) for result in results]
    widths = [max(len(row[i]) for row in [heads, *rows]) for i in range(len(heads))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [heads, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join([*lines, note]) + "\n"


def progress(result: ProfileResult) -> str:
    verdict = "ok" if result.ok else f"{len(result.problems)} problem(s)"
    return (
        f"[{result.label}] {result.completed}/{result.operations - result.failed_as_expected} completed, "
        f"{result.failed_as_expected} failed as expected, {result.seconds:.0f}s: {verdict}"
    )
