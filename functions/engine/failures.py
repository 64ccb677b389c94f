"""What an exception raised by a step's logic is recorded as: our own error, retryable or not."""

from __future__ import annotations

import traceback

from functions import aws
from functions.errors import AwsError, InternalError, StepError
from functions.observability import logger
from schemas.common import Step


def as_step_error(raised: Exception, step: Step) -> StepError:
    """Our own errors as they are; botocore's connection errors and timeouts (its retries exhausted) as
    retryable; anything else, a fault no input check caught, as a non-retryable InternalError named by its
    type only: its text could hold a value from the input, and the state, the events and the notification
    must not. The log gets the type and the traceback's frames, not the message."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(raised, StepError):
        return raised
    kind = type(raised).__name__
    if isinstance(raised, ConnectionError | HTTPClientError):
        return AwsError(f"AWS could not be reached ({kind})", retryable=True)
    if isinstance(raised, ClientError):
        # An AWS answer no adapter turned into our own error: throttling and AWS's own faults pass.
        return AwsError(
            f"{raised.operation_name} was refused: {aws.error_code(raised)}",
            retryable=aws.is_transient(raised),
        )
    logger.error(
        "unexpected error",
        extra={"error_type": kind, "where": "".join(traceback.format_tb(raised.__traceback__))},
    )
    return InternalError(f"{step.value} failed on an unexpected {kind}; the function's log has where")
