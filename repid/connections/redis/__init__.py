"""Redis Streams server: `RedisServer` (install with `pip install repid[redis]`).

See `repid.connections.redis.server` for how channels, consumer groups, redelivery and dead
letters map onto Redis, and `repid.connections.redis.message` for the message outcomes.
"""

from repid.connections.redis._client import RedisMode
from repid.connections.redis._codec import encode_fields
from repid.connections.redis._errors import (
    RedisAuthenticationError,
    RedisConnectionError,
    RedisNotConnectedError,
    RedisReplicationError,
    RedisServerError,
)
from repid.connections.redis.message import RedisReceivedMessage
from repid.connections.redis.server import RedisDeadLetter, RedisServer
from repid.connections.redis.subscriber import RedisSubscriber

DeadLetter = RedisDeadLetter
"""The former name of `RedisDeadLetter`."""

__all__ = [
    "RedisAuthenticationError",
    "DeadLetter",
    "RedisConnectionError",
    "RedisNotConnectedError",
    "RedisDeadLetter",
    "RedisMode",
    "RedisReceivedMessage",
    "RedisReplicationError",
    "RedisServer",
    "RedisServerError",
    "RedisSubscriber",
    "encode_fields",
]
