"""Step 7, setup_db_users: Create or update each application role, its password and privileges, in one transaction."""

from functions.handler import make_handler
from functions.steps.db import setup_db_users
from schemas.common import Step
from schemas.config import USER_MODELS

handler = make_handler(Step.SETUP_DB_USERS, setup_db_users, models=USER_MODELS)  # its runs read the users
