"""``python -m claudeswarm`` runs the CLI (used by tests to run the working tree)."""

from claudeswarm.cli import main

main()
