"""Step 1, snapshot_check: Find the source cluster's snapshot for the target date and take the lease on the target."""

from functions.handler import make_handler
from functions.steps.snapshot import snapshot_check
from schemas.common import Step

handler = make_handler(Step.SNAPSHOT_CHECK, snapshot_check)
