"""Step 5, restore_snapshot: Restore the copy under the target cluster's name with subnet group, security groups and tags."""

from functions.handler import make_handler
from functions.steps.cluster import restore_snapshot
from schemas.common import Step

handler = make_handler(Step.RESTORE_SNAPSHOT, restore_snapshot)
