"""Step 4, delete_rds: Delete the old target cluster (instances first) behind the deletion guard; wait until it is gone."""

from functions.handler import make_handler
from functions.steps.cluster import delete_rds
from schemas.common import Step

handler = make_handler(Step.DELETE_RDS, delete_rds)
