"""Step 9, notify_completion: Send the outcome to SNS and SQS (success, or the failure routed here by StepFailed)."""

from functions.handler import make_handler
from functions.steps.finish import notify_completion, notify_rejection
from schemas.common import Step

handler = make_handler(Step.NOTIFY_COMPLETION, notify_completion, on_rejected=notify_rejection)
