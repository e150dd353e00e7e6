"""``python -m runner`` runs the CLI (what launchers such as ``torchrun -m runner`` need)."""

import sys

from runner._cli.main import main

if __name__ == "__main__":
    # As the console script does: a command's status (``ctx.exit(1)``) is main's return value.
    sys.exit(main())
