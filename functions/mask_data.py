"""Step mask_data: mask the restored data and run the post-restore SQL, before any user can log in."""

from functions.handler import make_handler
from functions.steps.masking import mask_data
from schemas.common import Step

handler = make_handler(Step.MASK_DATA, mask_data)
