"""Step 3, check_copy_status: Wait for the snapshot copy: advanced by RecheckDue (Aurora sends no copy event) or a direct call."""

from functions.handler import make_handler
from functions.steps.snapshot import check_copy_status
from schemas.common import Step

handler = make_handler(Step.CHECK_COPY_STATUS, check_copy_status)
