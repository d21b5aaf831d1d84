"""Agent hooks: events at turn and tool boundaries, and their installers."""
