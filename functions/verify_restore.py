"""Step 8, verify_restore: Verify schemas, tables and each user's login and privileges from the restored catalog."""

from functions.handler import make_handler
from functions.steps.db import verify_restore
from schemas.common import Step

handler = make_handler(Step.VERIFY_RESTORE, verify_restore)
