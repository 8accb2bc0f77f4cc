"""Names from the OpenTelemetry semantic conventions for messaging, and Repid's own.

Written out here rather than imported from `opentelemetry-semantic-conventions`, so that the
extra needs nothing but `opentelemetry-api`.
"""

from __future__ import annotations

from typing import Any

from repid.connections.abc import ServerT

MESSAGING_SYSTEM = "messaging.system"
DESTINATION_NAME = "messaging.destination.name"
OPERATION_TYPE = "messaging.operation.type"
OPERATION_NAME = "messaging.operation.name"
MESSAGE_ID = "messaging.message.id"
BODY_SIZE = "messaging.message.body.size"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

# Repid's own attributes (no semantic-convention name exists for them).
ACTOR_NAME = "repid.actor.name"
OUTCOME = "repid.message.outcome"
"""`ack`, `nack`, `reject`, `reply` or `no_action` (see `repid.observers`)."""
JOB_ATTEMPT = "repid.job.attempt"

SENT_MESSAGES = "messaging.client.sent.messages"
CONSUMED_MESSAGES = "messaging.client.consumed.messages"
PROCESS_DURATION = "messaging.process.duration"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
"""The explicit bucket boundaries the conventions recommend for messaging durations."""

# `messaging.system` by the server's AsyncAPI protocol: the conventions' well-known values
# where one applies (AmqpServer is a RabbitMQ 4 client), else a stable value of our own.
_SYSTEMS = {
    "redis": "redis",
    "rediss": "redis",
    "amqp": "rabbitmq",
    "amqps": "rabbitmq",
    "googlepubsub": "gcp_pubsub",
    "in-memory": "repid_in_memory",
}

UNROUTED = "repid.unrouted"
POISON = "repid.poison"
"""`error.type` of a message no actor takes (rejected), and of one nacked as poison."""


def error_type(exc: BaseException) -> str:
    """The exception's class name: predictable and low in cardinality."""
    return type(exc).__qualname__


def server_attributes(server: ServerT | None) -> dict[str, Any]:
    """`messaging.system`, `server.address` and `server.port` for `server` (no credentials:
    `ServerT.host` never carries any)."""
    if server is None:
        return {MESSAGING_SYSTEM: "repid"}
    protocol = str(getattr(server, "protocol", "") or "")
    attributes: dict[str, Any] = {MESSAGING_SYSTEM: _SYSTEMS.get(protocol, protocol or "repid")}
    host = str(getattr(server, "host", "") or "")
    if not host or protocol == "in-memory":
        return attributes
    address, port = host, None
    if host.startswith("["):  # [v6]:port
        address, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif host.count(":") == 1:
        address, port = host.split(":")
    attributes[SERVER_ADDRESS] = address
    if port and port.isdigit():
        attributes[SERVER_PORT] = int(port)
    return attributes
