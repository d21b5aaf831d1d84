"""The task board: its model, claims, the reaper and artifacts."""
