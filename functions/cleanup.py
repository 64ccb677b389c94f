"""Step 10, cleanup: Delete the copied snapshot, release the lease, expire the state, keep or delete the step logs."""

from functions.handler import make_handler
from functions.steps.finish import cleanup
from schemas.common import Step

handler = make_handler(Step.CLEANUP, cleanup)
