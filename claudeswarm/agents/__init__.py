"""Agents: the registry, the process table, discovery and identity."""
