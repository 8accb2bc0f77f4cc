"""AMQP 1.0 for Repid: `AmqpServer` over our own sans-IO protocol layer and asyncio transport.

`repid.connections.amqp.protocol` is the pure protocol (types, frames, performatives, messages,
connection state machine); `transport` runs it on asyncio streams; `server` is the Repid server.
"""

from repid.connections.amqp.addressing import (
    default_address_strategy,
    default_exchange_address_strategy,
)
from repid.connections.amqp.protocol.message import (
    AmqpHeader,
    AmqpMessageHeader,
    AmqpMessageProperties,
    AmqpProperties,
)
from repid.connections.amqp.server import AmqpPublishError, AmqpQueueNotFoundError, AmqpServer
from repid.connections.amqp.subscriber import AmqpReceivedMessage, AmqpSubscriber

__all__ = [
    "AmqpHeader",
    "AmqpMessageHeader",
    "AmqpMessageProperties",
    "AmqpProperties",
    "AmqpPublishError",
    "AmqpQueueNotFoundError",
    "AmqpReceivedMessage",
    "AmqpServer",
    "AmqpSubscriber",
    "default_address_strategy",
    "default_exchange_address_strategy",
]
