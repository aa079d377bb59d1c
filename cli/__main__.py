"""``python -m cli`` runs the ``salon`` command (used by tests without the console script)."""

from cli.main import main

main()
