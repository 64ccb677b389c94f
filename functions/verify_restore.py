"""Step 8, verify_restore: Verify schemas, tables and each user's login and privileges from the restored catalog."""

from functions.handler import make_handler
from functions.steps.db import verify_restore
from schemas.common import Step
from schemas.config import USER_MODELS

handler = make_handler(Step.VERIFY_RESTORE, verify_restore, models=USER_MODELS)  # its runs read the users
