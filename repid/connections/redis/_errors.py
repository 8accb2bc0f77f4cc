"""Exceptions raised by `RedisServer`, and the scrubbing that keeps passwords out of them."""

from __future__ import annotations

from repid.errors import (
    BrokerAuthenticationError,
    BrokerConnectionError,
    RepidError,
    ServerNotConnectedError,
)

__all__ = [
    "RedisAuthenticationError",
    "RedisConnectionError",
    "RedisNotConnectedError",
    "RedisReplicationError",
    "RedisServerError",
    "scrub",
]


class RedisServerError(RepidError, RuntimeError):
    """Redis refused a command (a response error); the message names the host, not the password."""


class RedisReplicationError(RedisServerError):
    """Fewer replicas than `wait_replicas` confirmed a write within `wait_timeout`.

    The master has the message: it is delivered unless the master fails before a replica copies
    it. Sending it again is safe for at-least-once consumers (it may then be delivered twice).
    """


class RedisConnectionError(BrokerConnectionError):
    """Redis could not be reached; the message names the host, not the password."""


class RedisAuthenticationError(RedisConnectionError, BrokerAuthenticationError):
    """Redis refused the credentials (a password it wants was not given, or is wrong)."""


class RedisNotConnectedError(RedisConnectionError, ServerNotConnectedError):
    """The server was used before `connect()` (or after `disconnect()`)."""


def scrub(text: str, secret: str | None) -> str:
    """Return `text` with every occurrence of `secret` replaced by `***`.

    redis-py builds some of its messages from connection arguments; we never show them unless the
    password has been taken out.
    """
    if secret:
        return text.replace(secret, "***")
    return text
