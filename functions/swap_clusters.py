"""Step swap_clusters (swap strategy): rename the old target away and the restored cluster into its name."""

from functions.handler import make_handler
from functions.steps.swap import swap_clusters
from schemas.common import Step

handler = make_handler(Step.SWAP_CLUSTERS, swap_clusters)
