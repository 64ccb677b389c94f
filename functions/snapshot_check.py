"""Step 1, snapshot_check: Find the source cluster's snapshot for the target date and take the lease on the target."""

from functions.handler import make_handler
from functions.steps.snapshot import snapshot_check
from schemas.common import Step
from schemas.config import USER_MODELS
from schemas.events import RestoreRequested

# Its runs read the users, and an operation starts with a RestoreRequested: models deferred for the rest.
handler = make_handler(Step.SNAPSHOT_CHECK, snapshot_check, models=(RestoreRequested, *USER_MODELS))
