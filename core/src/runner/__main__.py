"""``python -m runner`` runs the CLI (what launchers such as ``torchrun -m runner`` need)."""

from runner._cli.main import main

if __name__ == "__main__":
    main()
