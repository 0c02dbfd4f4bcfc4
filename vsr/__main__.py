"""``python -m vsr`` runs the command-line interface."""

from vsr.cli import main

if __name__ == "__main__":
    main()
