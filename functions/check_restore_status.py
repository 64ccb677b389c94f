"""Step 6, check_restore_status: Wait for the restored cluster, set the target's master password, create and wait for the writer."""

from functions.handler import make_handler
from functions.steps.cluster import check_restore_status
from schemas.common import Step

handler = make_handler(Step.CHECK_RESTORE_STATUS, check_restore_status)
