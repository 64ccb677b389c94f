"""The ten aurora-restore step functions (one module each, exposing `handler`) and their shared code."""
