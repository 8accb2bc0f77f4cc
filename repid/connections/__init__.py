"""Servers: the adapters between Repid and message brokers (see `repid.connections.abc`)."""
