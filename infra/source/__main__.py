"""Pulumi's entry point for the source account's program (infra/source/Pulumi.yaml): infra.source_account."""

import sys
from pathlib import Path

# Pulumi runs this file as a script from infra/source/; the program imports the project's packages by name.
PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
if PROJECT_ROOT not in sys.path:
    sys.path.insert(0, PROJECT_ROOT)

from infra.source_account import main  # noqa: E402

main()
