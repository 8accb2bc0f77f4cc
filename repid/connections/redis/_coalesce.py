"""Settlements coalesced while a round trip is out: many acks (or nacks, rejects) per command.

The worker settles messages from many concurrent tasks. Sending one command per message would
cap throughput at one round trip per message; instead the first settlement starts a flush, the
ones arriving meanwhile queue up, and each flush sends everything queued in one pipelined round
trip (XACK/XDEL and the MOVE script take many ids at once). Every caller still waits for, and
gets the outcome of, the round trip that carried its message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

K = TypeVar("K", bound=Hashable)


class Coalescer(Generic[K]):
    """Queue entry ids under a key; `send({key: [ids]})` runs once per flush."""

    __slots__ = ("_queue", "_send", "_task")

    def __init__(self, send: Callable[[dict[K, list[bytes]]], Awaitable[None]]) -> None:
        self._send = send
        self._queue: dict[K, list[tuple[bytes, asyncio.Future[None]]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def add(self, key: K, entry_id: bytes) -> None:
        """Queue `entry_id` and wait until the round trip that carries it is done."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        queued = self._queue.get(key)
        if queued is None:
            self._queue[key] = [(entry_id, future)]
        else:
            queued.append((entry_id, future))
        if self._task is None:
            self._task = loop.create_task(self._flush())
        await future

    async def wait_idle(self) -> None:
        """Wait until everything queued so far has been sent."""
        if self._task is not None:
            await asyncio.wait([self._task])

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, {}
                error: BaseException | None = None
                try:
                    await self._send(
                        {key: [entry_id for entry_id, _ in items] for key, items in batch.items()}
                    )
                except BaseException as exc:  # tell every waiter, whatever it was
                    error = exc
                for items in batch.values():
                    for _, future in items:
                        if future.done():
                            continue
                        if error is None:
                            future.set_result(None)
                        elif isinstance(error, Exception):
                            future.set_exception(error)
                        else:
                            future.cancel()
                if error is not None and not isinstance(error, Exception):
                    raise error
        finally:
            self._task = None
