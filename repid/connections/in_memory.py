"""`InMemoryServer`: a broker inside the current process, for tests and local development.

Outcomes: `ack` removes the message; `reject` puts it back at the head of its channel (of its
priority level) for the next delivery; `nack` moves it to `server.dead_letters[channel]`, where
it can be inspected (and re-published with `requeue_dead_letters`). A subscription that closes
with messages delivered but never settled puts them back, as a real broker does when a consumer
goes away. Nothing survives the process: do not use it in production.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from repid.connections.abc import (
    ChannelStats,
    DeadLetter,
    DeliveryCapacity,
    MessageCallbackT,
    ServerCapabilities,
)
from repid.connections.base import BaseReceivedMessage, BaseServer
from repid.data import MessageData
from repid.errors import ServerNotConnectedError

__all__ = ["InMemoryServer", "StoredMessage"]


class StoredMessage:
    """A message as the in-memory broker keeps it."""

    __slots__ = (
        "channel",
        "content_type",
        "delivery_count",
        "headers",
        "message_id",
        "payload",
        "priority",
        "reply_to",
    )

    def __init__(
        self,
        channel: str,
        payload: bytes,
        headers: dict[str, str] | None,
        content_type: str | None,
        message_id: str,
        priority: int = 0,
        reply_to: str | None = None,
    ) -> None:
        self.channel = channel
        self.payload = payload
        self.headers = headers
        self.content_type = content_type
        self.message_id = message_id
        self.priority = priority
        self.reply_to = reply_to
        self.delivery_count = 0

    def __repr__(self) -> str:
        return f"StoredMessage(channel={self.channel!r}, message_id={self.message_id!r})"


class _Queue:
    __slots__ = ("dead", "messages", "waiter")

    def __init__(self) -> None:
        self.messages: deque[StoredMessage] = deque()
        self.dead: list[StoredMessage] = []
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def append(self, stored: StoredMessage) -> None:
        """Queue `stored` behind every message of its priority or higher (FIFO per level)."""
        messages = self.messages
        # The common case - every message at the same level - is a plain append.
        if not messages or messages[-1].priority >= stored.priority:
            messages.append(stored)
            return
        index = len(messages) - 1
        while index > 0 and messages[index - 1].priority < stored.priority:
            index -= 1
        messages.insert(index, stored)

    def push_front(self, stored: StoredMessage) -> None:
        """Put `stored` first among the messages of its priority level (redelivered next)."""
        messages = self.messages
        if not messages or messages[0].priority <= stored.priority:
            messages.appendleft(stored)
            return
        index = 1
        while index < len(messages) and messages[index].priority > stored.priority:
            index += 1
        messages.insert(index, stored)


class InMemoryReceivedMessage(BaseReceivedMessage):
    """A delivery from `InMemoryServer`."""

    __slots__ = ("_server", "_stored", "_subscriber")

    def __init__(
        self, stored: StoredMessage, server: InMemoryServer, subscriber: _Subscriber | None
    ) -> None:
        super().__init__(
            payload=stored.payload,
            headers=stored.headers,
            content_type=stored.content_type,
            channel=stored.channel,
        )
        self._stored = stored
        self._server = server
        self._subscriber = subscriber

    @property
    def message_id(self) -> str | None:
        return self._stored.message_id

    @property
    def reply_to(self) -> str | None:
        reply_to = self._stored.reply_to
        return reply_to if reply_to is not None else super().reply_to

    @property
    def delivery_count(self) -> int | None:
        return self._stored.delivery_count - 1

    def _settled(self) -> None:
        if self._subscriber is not None:
            self._subscriber.unsettled.pop(id(self._stored), None)

    async def _ack(self) -> None:
        self._settled()

    async def _nack(self) -> None:
        self._settled()
        self._server._queue(self._stored.channel).dead.append(self._stored)

    async def _reject(self) -> None:
        self._settled()
        self._server._requeue(self._stored)

    async def _reply(
        self,
        *,
        channel: str,
        payload: bytes,
        headers: dict[str, str] | None,
        content_type: str | None,
        server_specific_parameters: dict[str, Any] | None,
    ) -> None:
        # Publishing and acking happen without an await in between: atomic in one event loop.
        message_id, priority = _parse_parameters(server_specific_parameters)
        self._server._put(
            channel, MessageData(payload, headers, content_type), message_id, priority
        )
        self._settled()


class _Subscriber:
    __slots__ = ("_paused", "_resumed", "_server", "_tasks", "callbacks", "capacity", "unsettled")

    def __init__(
        self,
        server: InMemoryServer,
        callbacks: Mapping[str, MessageCallbackT],
        capacity: DeliveryCapacity,
    ) -> None:
        self._server = server
        self.callbacks = dict(callbacks)
        self.capacity = capacity
        self.unsettled: dict[int, StoredMessage] = {}
        self._paused = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._tasks = [
            asyncio.create_task(self._consume(channel, callback), name=f"repid-inmemory-{channel}")
            for channel, callback in self.callbacks.items()
        ]

    @property
    def is_active(self) -> bool:
        return not self._paused and any(not t.done() for t in self._tasks)

    async def _consume(self, channel: str, callback: MessageCallbackT) -> None:
        queue = self._server._queue(channel)
        capacity = self.capacity
        loop = asyncio.get_running_loop()
        while True:
            if self._paused:
                await self._resumed.wait()
                continue
            if capacity.free <= 0:
                await capacity.wait_for_free()
                continue
            messages = queue.messages
            if not messages:
                queue.waiter = loop.create_future()
                try:
                    await queue.waiter
                finally:
                    queue.waiter = None
                continue
            # Deliver as many as the worker has room for without yielding in between: the
            # callback takes its slot synchronously, so `free` stays exact.
            while messages and capacity.free > 0 and not self._paused:
                stored = messages.popleft()
                stored.delivery_count += 1
                self.unsettled[id(stored)] = stored
                await callback(InMemoryReceivedMessage(stored, self._server, self))
            if messages and queue.waiter is None:
                # Let other tasks run between large batches.
                await asyncio.sleep(0)

    async def pause(self) -> None:
        self._paused = True
        self._resumed.clear()

    async def resume(self) -> None:
        self._paused = False
        self._resumed.set()

    async def close(self) -> None:
        self._paused = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._server._subscribers.discard(self)
        # Delivered but never settled: back to the queue, like a consumer going away.
        # In reverse, since each goes to the head: the queue keeps delivery order.
        for stored in reversed(list(self.unsettled.values())):
            self._server._requeue(stored)
        self.unsettled.clear()


class InMemoryServer(BaseServer):
    """A broker in this process's memory. See the module docstring for its outcomes.

    Server-specific parameters for `publish`: `message_id` (str), otherwise a random UUID;
    `priority` (int, default 0): higher priorities are delivered first, messages of one
    priority in publishing order.
    """

    protocol = "in-memory"
    protocol_version = None
    capabilities = ServerCapabilities(atomic_reply=True, dead_letter=True, priorities=True)

    def __init__(
        self,
        *,
        title: str | None = None,
        summary: str | None = None,
        description: str | None = None,
        tags: list[Any] | None = None,
        external_docs: Any | None = None,
    ) -> None:
        super().__init__(
            host="localhost",
            title=title,
            summary=summary,
            description=description,
            tags=tags,
            external_docs=external_docs,
        )
        self._queues: dict[str, _Queue] = {}
        self._connected = False
        self._subscribers: set[_Subscriber] = set()

    @property
    def is_connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        self._connected = True

    async def disconnect(self) -> None:
        for subscriber in list(self._subscribers):
            await subscriber.close()
        self._connected = False

    def _queue(self, channel: str) -> _Queue:
        queue = self._queues.get(channel)
        if queue is None:
            queue = self._queues[channel] = _Queue()
        return queue

    def _put(
        self, channel: str, message: MessageData, message_id: str | None, priority: int = 0
    ) -> StoredMessage:
        stored = StoredMessage(
            channel,
            message.payload,
            dict(message.headers) if message.headers is not None else None,
            message.content_type,
            message_id or uuid.uuid4().hex,
            priority,
            message.reply_to,
        )
        queue = self._queue(channel)
        queue.append(stored)
        queue.wake()
        return stored

    def _requeue(self, stored: StoredMessage) -> None:
        queue = self._queue(stored.channel)
        queue.push_front(stored)
        queue.wake()

    async def publish(
        self,
        *,
        channel: str,
        message: MessageData,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None:
        if not self._connected:
            raise ServerNotConnectedError(
                "InMemoryServer is not connected: publish inside "
                "`async with server.connection():` (or after `await server.connect()`)"
            )
        message_id, priority = _parse_parameters(server_specific_parameters)
        self._put(channel, message, message_id, priority)

    async def publish_batch(
        self,
        *,
        channel: str,
        messages: Sequence[MessageData],
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> list[str]:
        """Queue many messages on `channel` in order; return their ids (`BatchPublisherT`).

        `priority` applies to every message; `message_id` is refused (each needs its own).
        """
        if not self._connected:
            raise ServerNotConnectedError(
                "InMemoryServer is not connected: publish inside "
                "`async with server.connection():` (or after `await server.connect()`)"
            )
        message_id, priority = _parse_parameters(server_specific_parameters)
        if message_id is not None:
            raise ValueError(
                "publish_batch does not take 'message_id': every message needs its own"
            )
        put = self._put
        return [put(channel, message, None, priority).message_id for message in messages]

    async def subscribe(
        self,
        *,
        channels_to_callbacks: Mapping[str, MessageCallbackT],
        capacity: DeliveryCapacity,
    ) -> _Subscriber:
        if not self._connected:
            raise ServerNotConnectedError(
                "InMemoryServer is not connected: call `await server.connect()` first"
            )
        subscriber = _Subscriber(self, channels_to_callbacks, capacity)
        self._subscribers.add(subscriber)
        return subscriber

    # Inspection helpers -------------------------------------------------------------------

    def queued(self, channel: str) -> list[StoredMessage]:
        """Messages waiting on `channel`, next to be delivered first."""
        return list(self._queue(channel).messages)

    def withdraw(self, channel: str, message_id: str) -> bool:
        """Remove the queued, not yet delivered message `message_id` from `channel`; True if
        it was there."""
        messages = self._queue(channel).messages
        for stored in messages:
            if stored.message_id == message_id:
                messages.remove(stored)
                return True
        return False

    @property
    def dead_letters(self) -> dict[str, list[StoredMessage]]:
        """Nacked messages by channel."""
        return {name: list(q.dead) for name, q in self._queues.items() if q.dead}

    def requeue_dead_letters(self, channel: str, limit: int | None = None) -> int:
        """Move `channel`'s dead letters (oldest first; all, or `limit`) back to its queue;
        returns how many."""
        queue = self._queue(channel)
        count = len(queue.dead) if limit is None else min(limit, len(queue.dead))
        moved, queue.dead = queue.dead[:count], queue.dead[count:]
        for stored in moved:
            queue.append(stored)
        queue.wake()
        return len(moved)

    # Admin protocols (DeadLetterStoreT, ChannelStatsT) --------------------------------------

    async def read_dead_letters(
        self, channel: str, *, limit: int = 100, dead_letter_queue: str | None = None
    ) -> list[DeadLetter]:
        """Up to `limit` of `channel`'s dead letters, oldest first."""
        return [
            DeadLetter(
                message_id=stored.message_id,
                payload=stored.payload,
                headers=stored.headers,
                content_type=stored.content_type,
                reason="nack",
                channel=channel,
            )
            for stored in self._queue(channel).dead[:limit]
        ]

    async def replay_dead_letters(
        self, channel: str, *, limit: int | None = None, dead_letter_queue: str | None = None
    ) -> int:
        """Like `requeue_dead_letters`."""
        return self.requeue_dead_letters(channel, limit)

    async def purge_dead_letters(
        self, channel: str, *, dead_letter_queue: str | None = None
    ) -> int:
        queue = self._queue(channel)
        count, queue.dead = len(queue.dead), []
        return count

    async def channel_stats(self, channel: str) -> ChannelStats:
        queue = self._queue(channel)
        subscribers = [s for s in self._subscribers if channel in s.callbacks]
        in_flight = sum(
            1 for s in subscribers for stored in s.unsettled.values() if stored.channel == channel
        )
        return ChannelStats(
            channel=channel,
            depth=len(queue.messages),
            in_flight=in_flight,
            dead_letters=len(queue.dead),
            consumers=len(subscribers),
        )


def _parse_parameters(parameters: dict[str, Any] | None) -> tuple[str | None, int]:
    """(message_id, priority) from `server_specific_parameters`, checked."""
    if not parameters:
        return None, 0
    message_id = parameters.get("message_id")
    if message_id is not None and not isinstance(message_id, str):
        raise TypeError("server_specific_parameters['message_id'] must be a str")
    priority = parameters.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError("server_specific_parameters['priority'] must be an int")
    return message_id, priority
