"""Exceptions raised by `RedisServer`, and the scrubbing that keeps passwords out of them."""

from __future__ import annotations

__all__ = ["RedisConnectionError", "RedisServerError", "scrub"]


class RedisServerError(RuntimeError):
    """Redis refused a command (a response error); the message names the host, not the password."""


class RedisConnectionError(ConnectionError):
    """Redis could not be reached; the message names the host, not the password."""


def scrub(text: str, secret: str | None) -> str:
    """Return `text` with every occurrence of `secret` replaced by `***`.

    redis-py builds some of its messages from connection arguments; we never show them unless the
    password has been taken out.
    """
    if secret:
        return text.replace(secret, "***")
    return text
