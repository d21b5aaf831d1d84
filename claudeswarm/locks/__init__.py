"""File leases: patterns, the pattern index, the manager and liveness."""
