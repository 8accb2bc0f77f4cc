"""Coalescing of concurrent publishes into shared PublishRequests.

A publish that finds no request in flight for its topic is sent at once (no added latency).
Publishes that arrive while a request is in flight wait for it and then go out together, up to
Pub/Sub's limits of 1,000 messages and 10 MB per request. Under concurrency this turns N round
trips into a few, which is what the batch publisher of Google's client libraries does with a
timer; here the in-flight request is the timer.

Publishes are grouped by (topic, timeout): messages in one request share its deadline. Order is
kept within a group, so messages with one ordering key keep their publish order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_MESSAGES", "PublishCoalescer"]

# Pub/Sub limits: 1,000 messages and 10 MB per PublishRequest (leave room for the envelope).
MAX_BATCH_MESSAGES = 1000
MAX_BATCH_BYTES = 9 * 1024 * 1024

SendT = Callable[[str, list[bytes], float], Awaitable[list[str]]]


class _Queue:
    __slots__ = ("pending", "sending", "task")

    def __init__(self) -> None:
        self.pending: list[tuple[bytes, asyncio.Future[str]]] = []
        self.task: asyncio.Task[None] | None = None
        # A lone publish's request is in flight from its caller's task.
        self.sending = False


class PublishCoalescer:
    """Sends encoded PubsubMessages through `send(topic, messages, timeout) -> message ids`."""

    __slots__ = ("_queues", "_send")

    def __init__(self, send: SendT) -> None:
        self._send = send
        self._queues: dict[tuple[str, float], _Queue] = {}

    async def publish(self, topic: str, encoded: bytes, timeout: float) -> str:
        """Publish one encoded message and return its message id.

        With nothing in flight for (topic, timeout) the request is sent from the caller's own
        task (no task or future to create for the common lone publish); publishes arriving
        meanwhile queue up and go out together once it is back.
        """
        key = (topic, timeout)
        queue = self._queues.get(key)
        if queue is not None:
            future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            queue.pending.append((encoded, future))
            if queue.task is None and not queue.sending:
                queue.task = asyncio.create_task(self._drain(key, queue))
            return await future
        queue = self._queues[key] = _Queue()
        queue.sending = True
        try:
            ids = await self._send(topic, [encoded], timeout)
        finally:
            queue.sending = False
            if queue.pending:
                # Hand what queued up behind this request to a drain task (this caller may be
                # cancelled, and it should not wait for others' requests).
                queue.task = asyncio.create_task(self._drain(key, queue))
            elif self._queues.get(key) is queue:
                del self._queues[key]
        if len(ids) != 1:
            raise RuntimeError(f"Pub/Sub returned {len(ids)} message ids for 1 message")
        return ids[0]

    async def _drain(self, key: tuple[str, float], queue: _Queue) -> None:
        topic, timeout = key
        try:
            while queue.pending:
                batch = _take_batch(queue.pending)
                try:
                    ids = await self._send(topic, [encoded for encoded, _ in batch], timeout)
                    if len(ids) != len(batch):
                        raise RuntimeError(
                            f"Pub/Sub returned {len(ids)} message ids for {len(batch)} messages"
                        )
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), message_id in zip(batch, ids, strict=True):
                    if not future.done():
                        future.set_result(message_id)
        except asyncio.CancelledError:
            for _, future in queue.pending:
                future.cancel()
            queue.pending.clear()
            raise
        finally:
            # No await since the loop saw `pending` empty: nothing was queued in between.
            queue.task = None
            if self._queues.get(key) is queue:
                del self._queues[key]


def _take_batch(
    pending: list[tuple[bytes, asyncio.Future[str]]],
) -> list[tuple[bytes, asyncio.Future[str]]]:
    """Remove and return the longest prefix of `pending` that fits in one PublishRequest."""
    size = 0
    count = 0
    for encoded, _ in pending:
        if count >= MAX_BATCH_MESSAGES or (count and size + len(encoded) > MAX_BATCH_BYTES):
            break
        size += len(encoded) + 8  # tag + length prefix
        count += 1
    batch = pending[:count]
    del pending[:count]
    return batch
