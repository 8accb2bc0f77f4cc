"""Handing messages to the worker: the deliver-while-capacity loop and the lease table.

Every built-in subscriber buffers what the broker sent (Redis reads, AMQP transfers, Pub/Sub
stream responses, the in-memory queue itself) and hands it to the worker's callback through a
`DeliveryLoop`: in order, one at a time, and only while the worker has a free slot
(`capacity.free > 0`; the callback takes its slot synchronously, so `free` stays exact). The
callback returns as soon as the message is scheduled, so the loop awaits it per message.

Delivered messages that are not settled yet are kept in a `Leases` table, oldest first, so that
the subscriber can keep them alive at the broker and give them back once they were held longer
than the server's `max_lease` (see `BaseSubscriber`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar

from repid.connections.abc import DeliveryCapacity, MessageCallbackT, ReceivedMessageT

__all__ = ["DeliveryLoop", "LeasedMessageT", "Leases", "OpenedT"]

logger = logging.getLogger("repid.connections")

ItemT = TypeVar("ItemT")
K = TypeVar("K")
M = TypeVar("M", bound="LeasedMessageT")

OpenedT = tuple[ReceivedMessageT, MessageCallbackT]
"""A buffered item made ready for delivery: the message and the callback to hand it to."""


class DeliveryLoop(Generic[ItemT]):
    """Delivers buffered items to the worker while it has free slots; see the module docstring.

    `open_item(item)` turns a buffered item into `(message, callback)` just before delivery, or
    returns None to skip it (a deleted entry, a delivery of a connection that died, a message
    it dead-lettered itself...). `after_batch()` runs after each burst of deliveries (AMQP
    tops its link credit up there). Run it as a task with `run()`, or call
    `deliver_available()` from a loop of one's own (the Redis read loop does). `source` names
    the server kind in log records (`redis`, `amqp`...).
    """

    __slots__ = (
        "_after_batch",
        "_capacity",
        "_closed",
        "_delivering",
        "_open",
        "_paused",
        "_resumed",
        "_source",
        "_task",
        "_wakeup",
        "buffer",
    )

    def __init__(
        self,
        capacity: DeliveryCapacity,
        open_item: Callable[[ItemT], OpenedT | None],
        *,
        buffer: deque[ItemT] | None = None,
        after_batch: Callable[[], None] | None = None,
        source: str = "",
    ) -> None:
        self._capacity = capacity
        self._open = open_item
        self._after_batch = after_batch
        self._source = source
        self.buffer: deque[ItemT] = buffer if buffer is not None else deque()
        self._wakeup = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._paused = False
        self._closed = False
        self._delivering = False
        self._task: asyncio.Task[object] | None = None

    # -- control ---------------------------------------------------------------------------

    @property
    def delivering(self) -> bool:
        """True while a callback runs (cancelling then would drop a half-handed message)."""
        return self._delivering

    @property
    def paused(self) -> bool:
        return self._paused

    def push(self, item: ItemT) -> None:
        """Buffer one item and wake the loop."""
        self.buffer.append(item)
        self._wakeup.set()

    def wake(self) -> None:
        """Something changed (items were added to a shared buffer): look again."""
        self._wakeup.set()

    def pause(self) -> None:
        self._paused = True
        self._resumed.clear()

    def resume(self) -> None:
        self._paused = False
        self._resumed.set()
        self._wakeup.set()

    def close(self) -> None:
        """Stop delivering: `run()` ends (at once, or right after the callback it is in)."""
        self._closed = True
        self._paused = True
        self._resumed.set()
        self._wakeup.set()
        task = self._task
        if task is not None and not task.done() and not self._delivering:
            task.cancel()  # it may be waiting for a free slot

    # -- delivering ------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until `close()`: wait for items, for resume and for free slots."""
        capacity = self._capacity
        buffer = self.buffer
        self._task = asyncio.current_task()
        while not self._closed:
            if self._paused:
                await self._resumed.wait()
                continue
            if not buffer:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if capacity.free <= 0:
                await capacity.wait_for_free()
                continue
            await self.deliver_available()
            if buffer:
                await asyncio.sleep(0)  # let other tasks run between large batches

    async def deliver_available(self) -> int:
        """Deliver buffered items while slots are free and the loop is not paused."""
        capacity = self._capacity
        buffer = self.buffer
        open_item = self._open
        delivered = 0
        while buffer and not self._paused and capacity.free > 0:
            opened = open_item(buffer.popleft())
            if opened is None:
                continue
            message, callback = opened
            self._delivering = True
            try:
                await callback(message)
            except Exception:
                # A broken callback must not stop the loop; the message goes back.
                logger.exception(
                    "subscription.callback_failed: the %s callback for channel %r raised; the "
                    "message goes back to the broker",
                    self._source,
                    message.channel,
                    extra={
                        "channel": message.channel,
                        "message_id": message.message_id,
                        "server": self._source,
                    },
                )
                await _give_back(message)
            finally:
                self._delivering = False
            delivered += 1
        if self._after_batch is not None:
            self._after_batch()
        return delivered


async def _give_back(message: ReceivedMessageT) -> None:
    if message.is_acted_on:
        return
    try:
        await message.reject()
    except Exception:
        logger.exception(
            "subscription.give_back_failed: the broker will deliver the message again later",
            extra={"channel": message.channel, "message_id": message.message_id},
        )


class LeasedMessageT(ReceivedMessageT, Protocol):
    """A message that can be given back when held too long (`BaseReceivedMessage` can)."""

    async def release_expired(self, held_for: float) -> None: ...


class Leases(Generic[K, M]):
    """Messages delivered to the worker and not settled yet, by key, oldest delivery first."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[K, tuple[float, M]] = {}

    def add(self, key: K, message: M) -> None:
        held = self._held
        held.pop(key, None)  # a redelivery counts from now, at the end of the table
        held[key] = (time.monotonic(), message)

    def discard(self, key: K) -> None:
        self._held.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._held

    def __len__(self) -> int:
        return len(self._held)

    def __bool__(self) -> bool:
        return bool(self._held)

    def __iter__(self) -> Iterator[K]:
        return iter(self._held)

    def messages(self) -> list[M]:
        return [message for _, message in self._held.values()]

    def expired(self, max_lease: float) -> list[tuple[M, float]]:
        """Messages held longer than `max_lease` seconds, with how long they were held."""
        now = time.monotonic()
        cutoff = now - max_lease
        found: list[tuple[M, float]] = []
        for since, message in self._held.values():
            if since > cutoff:
                break  # oldest first: the rest are younger
            found.append((message, now - since))
        return found

    def clear(self) -> None:
        self._held.clear()
