"""Coalescing of concurrent publishes into shared PublishRequests.

A publish that finds no request in flight for its topic is sent at once, from the caller's task
(no added latency). Publishes that arrive while a request is in flight wait for it and then go
out together, up to Pub/Sub's limits of 1,000 messages and 10 MB per request (see
`repid.connections.coalesce`). Under concurrency this turns N round trips into a few, which is
what the batch publisher of Google's client libraries does with a timer; here the in-flight
request is the timer.

Publishes are grouped by (topic, timeout): messages in one request share its deadline. Order is
kept within a group, so messages with one ordering key keep their publish order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from repid.connections.coalesce import Coalescer

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_MESSAGES", "PublishCoalescer"]

# Pub/Sub limits: 1,000 messages and 10 MB per PublishRequest (leave room for the envelope).
MAX_BATCH_MESSAGES = 1000
MAX_BATCH_BYTES = 9 * 1024 * 1024

_MAX_GROUPS = 1024  # (topic, timeout) groups kept; idle ones are dropped beyond this

SendT = Callable[[str, list[bytes], float], Awaitable[list[str]]]


class PublishCoalescer:
    """Sends encoded PubsubMessages through `send(topic, messages, timeout) -> message ids`."""

    __slots__ = ("_groups", "_send")

    def __init__(self, send: SendT) -> None:
        self._send = send
        self._groups: dict[tuple[str, float], Coalescer[bytes, str]] = {}

    async def publish(self, topic: str, encoded: bytes, timeout: float) -> str:
        """Publish one encoded message and return its message id."""
        key = (topic, timeout)
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= _MAX_GROUPS:  # topics may be generated (reply topics)
                self._groups = {k: g for k, g in self._groups.items() if not g.idle}
            group = self._groups[key] = self._group(topic, timeout)
        return await group.submit(encoded)

    def _group(self, topic: str, timeout: float) -> Coalescer[bytes, str]:
        send = self._send

        async def send_batch(batch: list[bytes]) -> list[str | Exception]:
            return list(await send(topic, batch, timeout))

        return Coalescer(send_batch, take=_batch_size, inline=True)


def _batch_size(pending: list[tuple[bytes, asyncio.Future[str]]]) -> int:
    """How many of `pending` fit in one PublishRequest."""
    size = 0
    count = 0
    for encoded, _ in pending:
        if count >= MAX_BATCH_MESSAGES or (count and size + len(encoded) > MAX_BATCH_BYTES):
            break
        size += len(encoded) + 8  # tag + length prefix
        count += 1
    return count
