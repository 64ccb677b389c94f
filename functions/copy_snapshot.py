"""Step 2, copy_snapshot: Copy the snapshot into the target region (tags, KMS key); an existing copy is reused."""

from functions.handler import make_handler
from functions.steps.snapshot import copy_snapshot
from schemas.common import Step

handler = make_handler(Step.COPY_SNAPSHOT, copy_snapshot)
