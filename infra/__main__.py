"""Pulumi's entry point (Pulumi.yaml: `main: infra/`): runs the program in infra.program."""

import sys
from pathlib import Path

# Pulumi runs this file as a script from infra/; the program imports the project's packages by name.
PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
if PROJECT_ROOT not in sys.path:
    sys.path.insert(0, PROJECT_ROOT)

from infra.program import main  # noqa: E402

main()
