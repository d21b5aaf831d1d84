"""The redis backend: the same swarm on a shared Redis 7.0 / Valkey server."""
