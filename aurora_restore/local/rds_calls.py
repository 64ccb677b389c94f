"""The server's record of each mutating RDS call: its kind, the resource it names, and how it was answered.

moto's server (motoserver.CountingApp) notes every RDS request that is not a read, whoever made it and
whatever the answer: accepted, refused by RDS (with RDS's error code), or answered by an injected fault
before RDS saw it. The chaos run counts from this record, not from what the simulator carried out, so a
call RDS refused is counted too.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs

# RDS's read-only actions; every other RDS action changes something.
READ_PREFIXES = ("Describe", "List", "Download")
# The request parameter naming the resource a mutating call changes, most specific first: CreateDBInstance
# names its instance and its cluster, CopyDBClusterSnapshot its source and its target.
RESOURCE_PARAMETERS = (
    "DBInstanceIdentifier",
    "TargetDBClusterSnapshotIdentifier",
    "DBClusterIdentifier",
    "DBClusterSnapshotIdentifier",
    "ResourceName",
)
PASSWORD_KIND = "ModifyDBCluster:MasterUserPassword"
RENAME_KIND = "ModifyDBCluster:NewDBClusterIdentifier"  # a cluster's rename (the swap strategy's switch)
ACCEPTED = "accepted"
INJECTED = "injected"  # answered by a fault profile's error before RDS saw the call

_CODE = re.compile(r"<Code>([^<]+)</Code>")
_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
# RDS's answers meaning "already done or under way": the call repeats one RDS accepted before (a deletion
# asked again of what is gone already among them).
_DUPLICATE_CODES = re.compile(r"AlreadyExists")
_GONE_CODES = re.compile(r"NotFound")
_DUPLICATE_MESSAGES = re.compile(r"already being deleted|is already", re.IGNORECASE)


@dataclass(frozen=True)
class RdsCall:
    """One mutating RDS call as the server answered it. `outcome`: ACCEPTED, INJECTED or RDS's error code."""

    kind: str
    resource: str
    outcome: str
    message: str
    access_key: str

    @property
    def verdict(self) -> str:
        """accepted, duplicate (RDS refused it as done or under way already), refused (RDS refused it for
        now: the resource busy) or injected (a fault profile answered it; RDS never saw it)."""
        if self.outcome in (ACCEPTED, INJECTED):
            return self.outcome
        if _DUPLICATE_CODES.search(self.outcome) or _DUPLICATE_MESSAGES.search(self.message):
            return "duplicate"
        if self.kind.startswith("Delete") and _GONE_CODES.search(self.outcome):
            return "duplicate"
        return "refused"


def mutating_call(form: bytes, action: str) -> tuple[str, str] | None:
    """(kind, resource) of an RDS request, from its form body; None for a read. Never a parameter's value
    other than the resource's name (a password is only noted as present)."""
    if action.startswith(READ_PREFIXES) or " " in action:
        return None
    params = parse_qs(form.decode("utf-8", "replace"))
    resource = next((params[name][0] for name in RESOURCE_PARAMETERS if params.get(name)), "")
    if resource.startswith("arn:"):
        resource = resource.rsplit(":", 1)[-1]
    kind = action
    if action == "ModifyDBCluster" and "MasterUserPassword" in params:
        kind = PASSWORD_KIND
    elif action == "ModifyDBCluster" and "NewDBClusterIdentifier" in params:
        kind = RENAME_KIND
    return kind, resource


def refusal(status: str, body: bytes) -> tuple[str, str]:
    """(outcome, message) of an answer: ACCEPTED for a 2xx, else RDS's error code and message."""
    if status[:1] == "2":
        return ACCEPTED, ""
    text = body.decode("utf-8", "replace")
    code, message = _CODE.search(text), _MESSAGE.search(text)
    return (code.group(1) if code else f"HTTP {status[:3]}"), (message.group(1) if message else "")


class RdsCallLog:
    """Every mutating RDS call the server answered, in order; thread-safe."""

    def __init__(self) -> None:
        self._calls: list[RdsCall] = []
        self._lock = threading.Lock()

    def add(self, call: RdsCall) -> None:
        with self._lock:
            self._calls.append(call)

    def calls(self) -> list[RdsCall]:
        with self._lock:
            return list(self._calls)

    def tally(
        self, resources: Iterable[str] | None = None, exclude_key: str | None = None
    ) -> Counter[tuple[str, str]]:
        """(kind, verdict) -> count, for calls on `resources` (all when None), leaving out one signer's."""
        wanted = None if resources is None else set(resources)
        counted: Counter[tuple[str, str]] = Counter()
        for call in self.calls():
            if (wanted is None or call.resource in wanted) and call.access_key != exclude_key:
                counted[(call.kind, call.verdict)] += 1
        return counted
