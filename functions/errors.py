"""Our own exceptions: adapters turn AWS and database errors into these, and handlers record them."""

from __future__ import annotations


class StepError(Exception):
    """A step could not do its work. `retryable` says whether running it again may succeed."""

    error_type = "StepError"
    retryable = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable


class InvalidRequest(StepError):
    """Bad input or configuration: nothing was changed."""

    error_type = "InvalidRequest"


class ConfigError(InvalidRequest):
    error_type = "ConfigError"


class NotFound(StepError):
    error_type = "NotFound"


class UnknownOperation(InvalidRequest):
    error_type = "UnknownOperation"


class GuardRefused(StepError):
    """The deletion guard refused to touch a cluster."""

    error_type = "GuardRefused"


class LeaseHeld(StepError):
    error_type = "LeaseHeld"


class ClaimHeld(StepError):
    """Another invocation is running this step now; the trigger is delivered again later."""

    error_type = "ClaimHeld"
    retryable = True


class AwsError(StepError):
    error_type = "AwsError"


class DatabaseError(StepError):
    error_type = "DatabaseError"


class VerificationFailed(StepError):
    error_type = "VerificationFailed"


class WaitTimedOut(StepError):
    error_type = "WaitTimedOut"


class InternalError(StepError):
    """A fault in our code or an input no check caught: recorded by its type, never its text."""

    error_type = "InternalError"


class StaleWrite(Exception):
    """A conditional write lost against another writer: the caller re-reads state and decides again."""


class PublishError(Exception):
    """EventBridge refused some entries; carries them."""

    def __init__(self, failed: list[dict[str, object]]) -> None:
        super().__init__(f"{len(failed)} event(s) were not put on the bus: {failed}")
        self.failed = failed


SHOWN_VALUE_LIMIT = 100  # a value longer than this is not quoted back in a message


def shown(value: object) -> str:
    """`value` as quoted back in a message; a long one only by its length: it could be anything, and it
    would be copied into the response, the history, the error, the events and the log."""
    text = repr(value)
    return text if len(text) <= SHOWN_VALUE_LIMIT else f"<{len(str(value))} characters>"
