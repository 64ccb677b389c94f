"""The checks a refresh passes before anything changes: run to the first failure, or each one recorded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from functions.errors import StepError

if TYPE_CHECKING:
    from schemas.config import DbUsers
    from schemas.target_settings import TargetSettings

T = TypeVar("T")
Outcome = Literal["passed", "failed", "skipped", "unknown"]


@dataclass(frozen=True)
class Check:
    """One check's outcome: `passed`, `failed` (the message says why), `skipped` (it needs the answer of one
    that failed) or `unknown` (it could not be made: said, never counted as a failure)."""

    name: str
    outcome: Outcome
    message: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "outcome": self.outcome, "message": self.message}


@dataclass
class Preflight:
    """What the checks found. Strict (snapshot_check): the first failing check raises its error. Collecting
    (`aurora-restore plan`): each failure is recorded and the next check runs."""

    collect: bool = False
    checks: list[Check] = field(default_factory=list)
    snapshot: dict[str, Any] | None = None
    version: str | None = None  # the engine version the restore asks for
    users: DbUsers | None = None
    settings: TargetSettings | None = None  # the target's own, None when there is no target cluster

    def run(self, name: str, check: Callable[[], T], passed: str = "") -> T | None:
        """`check()`'s answer, the check recorded as passed; None when it failed and failures are collected."""
        try:
            answer = check()
        except StepError as exc:
            if not self.collect:
                raise
            self.checks.append(Check(name, "failed", exc.message))
            return None
        self.checks.append(Check(name, "passed", passed))
        return answer

    def add(self, name: str, outcome: Outcome, message: str = "") -> None:
        self.checks.append(Check(name, outcome, message))

    def skip(self, names: tuple[str, ...], why: str) -> None:
        for name in names:
            self.add(name, "skipped", why)

    @property
    def reasons(self) -> list[str]:
        """Why a refresh would not start: each failed check's message, in the checks' order."""
        return [f"{check.name}: {check.message}" for check in self.checks if check.outcome == "failed"]
