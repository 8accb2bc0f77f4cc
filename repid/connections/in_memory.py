"""`InMemoryServer`: a broker inside the current process, for tests and local development.

Outcomes: `ack` removes the message; `reject` puts it back at the head of its channel (of its
priority level) for the next delivery; `nack` moves it to `server.dead_letters[channel]`, where
it can be inspected (with the reason it was nacked, `StoredMessage.dead_reason`) and
re-published with `requeue_dead_letters`. A subscription that closes with messages delivered but
never settled puts them back, as a real broker does when a consumer goes away, and so does a
message held unsettled for longer than `max_lease` seconds. Several subscriptions on one channel
share its messages: each message goes to one of them. Nothing survives the process: do not use
it in production.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from repid.connections.abc import (
    ChannelStats,
    DeadLetter,
    DeliveryCapacity,
    MessageCallbackT,
    MessageData,
    ServerCapabilities,
)
from repid.connections.base import (
    DEFAULT_MAX_LEASE,
    BaseReceivedMessage,
    BaseServer,
    BaseSubscriber,
)
from repid.connections.delivery import DeliveryLoop, Leases, OpenedT
from repid.errors import ServerNotConnectedError

if TYPE_CHECKING:
    from repid.connections.base import Reply

__all__ = ["InMemoryReceivedMessage", "InMemoryServer", "StoredMessage"]


class StoredMessage:
    """A message as the in-memory broker keeps it."""

    __slots__ = (
        "channel",
        "content_type",
        "dead_reason",
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
        self.dead_reason: str | None = None
        """Why it was nacked (None: no reason given), once it is a dead letter."""

    def __repr__(self) -> str:
        return f"StoredMessage(channel={self.channel!r}, message_id={self.message_id!r})"


class _Queue:
    """One channel: its messages and the delivery loops of the subscriptions reading it."""

    __slots__ = ("dead", "messages", "readers")

    def __init__(self) -> None:
        self.messages: deque[StoredMessage] = deque()
        self.dead: list[StoredMessage] = []
        self.readers: list[DeliveryLoop[StoredMessage]] = []

    def wake(self) -> None:
        # Every reader of the channel looks: one slot per queue would let a second
        # subscription's wait overwrite the first's, and a message would wait while it listens.
        for reader in self.readers:
            reader.wake()

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

    __slots__ = ("_leases", "_server", "_stored")

    def __init__(
        self,
        stored: StoredMessage,
        server: InMemoryServer,
        leases: Leases[int, InMemoryReceivedMessage] | None,
    ) -> None:
        super().__init__(
            payload=stored.payload,
            headers=stored.headers,
            content_type=stored.content_type,
            channel=stored.channel,
        )
        self._stored = stored
        self._server = server
        self._leases = leases

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
        if self._leases is not None:
            self._leases.discard(id(self._stored))

    async def _ack(self) -> None:
        self._settled()

    async def _nack(self, reason: str | None) -> None:
        self._settled()
        self._server.dead_letter(self._stored, reason)

    async def _reject(self) -> None:
        self._settled()
        self._server.requeue(self._stored)

    async def _reply(self, reply: Reply) -> None:
        # Publishing and acking happen without an await in between: atomic in one event loop.
        message_id, priority = _parse_parameters(reply.server_specific_parameters)
        self._server.put(
            reply.channel,
            MessageData(reply.payload, reply.headers, reply.content_type),
            message_id=message_id,
            priority=priority,
        )
        self._settled()


class _Subscriber(BaseSubscriber):
    """One delivery loop per channel over the channel's own queue."""

    def __init__(
        self,
        server: InMemoryServer,
        callbacks: Mapping[str, MessageCallbackT],
        capacity: DeliveryCapacity,
        max_lease: float | None,
    ) -> None:
        super().__init__(
            capacity=capacity, channels=callbacks, max_lease=max_lease, log_name="in-memory"
        )
        self._server = server
        self.leases: Leases[int, InMemoryReceivedMessage] = Leases()
        self._loops: list[tuple[_Queue, DeliveryLoop[StoredMessage]]] = []
        for channel, callback in callbacks.items():
            queue = server._channel_queue(channel)
            loop = DeliveryLoop(
                capacity,
                self._opener(callback),
                buffer=queue.messages,
                source="in-memory",
            )
            queue.readers.append(loop)
            self._loops.append((queue, loop))
            self._spawn(loop.run(), f"repid-inmemory-{channel}")
        self._start_lease_watch()

    def _opener(self, callback: MessageCallbackT) -> Any:
        server = self._server
        leases = self.leases

        def open_item(stored: StoredMessage) -> OpenedT:
            stored.delivery_count += 1
            message = InMemoryReceivedMessage(stored, server, leases)
            leases.add(id(stored), message)
            return message, callback

        return open_item

    async def _on_pause(self) -> None:
        for _, loop in self._loops:
            loop.pause()

    async def _on_resume(self) -> None:
        for _, loop in self._loops:
            loop.resume()

    async def _on_close(self) -> None:
        for queue, loop in self._loops:
            loop.close()
            if loop in queue.readers:
                queue.readers.remove(loop)
        # Delivered but never settled: back to the queue, like a consumer going away.
        # In reverse, since each goes to the head: the queue keeps delivery order.
        for message in reversed(self.leases.messages()):
            self._server.requeue(message._stored)
        self.leases.clear()

    def _lease_tables(self) -> Iterable[Leases[int, InMemoryReceivedMessage]]:
        return (self.leases,)


class InMemoryServer(BaseServer):
    """A broker in this process's memory. See the module docstring for its outcomes.

    Server-specific parameters for `publish`: `message_id` (str), otherwise a random UUID;
    `priority` (int, default 0): higher priorities are delivered first, messages of one
    priority in publishing order. `max_lease`: seconds a delivered message may stay unsettled
    before it goes back to its queue (default one hour; None: forever).
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
        max_lease: float | None = DEFAULT_MAX_LEASE,
    ) -> None:
        super().__init__(
            host="localhost",
            title=title,
            summary=summary,
            description=description,
            tags=tags,
            external_docs=external_docs,
        )
        self.max_lease = max_lease
        self._queues: dict[str, _Queue] = {}
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        self._connected = True

    async def disconnect(self) -> None:
        await self._stop_subscriptions()
        self._connected = False

    def _channel_queue(self, channel: str) -> _Queue:
        queue = self._queues.get(channel)
        if queue is None:
            queue = self._queues[channel] = _Queue()
        return queue

    def put(
        self,
        channel: str,
        message: MessageData,
        *,
        message_id: str | None = None,
        priority: int = 0,
    ) -> StoredMessage:
        """Queue a copy of `message` on `channel` (connected or not) and return it."""
        stored = StoredMessage(
            channel,
            message.payload,
            dict(message.headers) if message.headers is not None else None,
            message.content_type,
            message_id or uuid.uuid4().hex,
            priority,
            message.reply_to,
        )
        queue = self._channel_queue(channel)
        queue.append(stored)
        queue.wake()
        return stored

    def requeue(self, stored: StoredMessage) -> None:
        """Put a delivered message back at the head of its channel (of its priority level)."""
        queue = self._channel_queue(stored.channel)
        queue.push_front(stored)
        queue.wake()

    def dead_letter(self, stored: StoredMessage, reason: str | None = None) -> None:
        """Move a delivered message to its channel's dead letters."""
        stored.dead_reason = reason
        self._channel_queue(stored.channel).dead.append(stored)

    def take(self, stored: StoredMessage) -> InMemoryReceivedMessage:
        """Remove `stored` from its queue and deliver it to the caller (`TestClient` does)."""
        self._channel_queue(stored.channel).messages.remove(stored)
        stored.delivery_count += 1
        return InMemoryReceivedMessage(stored, self, None)

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
        self.put(channel, message, message_id=message_id, priority=priority)

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
        put = self.put
        return [put(channel, message, priority=priority).message_id for message in messages]

    async def _open_subscription(
        self, callbacks: dict[str, MessageCallbackT], capacity: DeliveryCapacity
    ) -> _Subscriber:
        if not self._connected:
            raise ServerNotConnectedError(
                "InMemoryServer is not connected: call `await server.connect()` first"
            )
        return _Subscriber(self, callbacks, capacity, self.max_lease)

    # Inspection helpers -------------------------------------------------------------------

    def queued(self, channel: str) -> list[StoredMessage]:
        """Messages waiting on `channel`, next to be delivered first."""
        return list(self._channel_queue(channel).messages)

    def withdraw(self, channel: str, message_id: str) -> bool:
        """Remove the queued, not yet delivered message `message_id` from `channel`; True if
        it was there."""
        messages = self._channel_queue(channel).messages
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
        queue = self._channel_queue(channel)
        count = len(queue.dead) if limit is None else min(limit, len(queue.dead))
        moved, queue.dead = queue.dead[:count], queue.dead[count:]
        for stored in moved:
            stored.dead_reason = None
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
                reason=stored.dead_reason or "nack",
                channel=channel,
            )
            for stored in self._channel_queue(channel).dead[:limit]
        ]

    async def replay_dead_letters(
        self, channel: str, *, limit: int | None = None, dead_letter_queue: str | None = None
    ) -> int:
        """Like `requeue_dead_letters`."""
        return self.requeue_dead_letters(channel, limit)

    async def purge_dead_letters(
        self, channel: str, *, dead_letter_queue: str | None = None
    ) -> int:
        queue = self._channel_queue(channel)
        count, queue.dead = len(queue.dead), []
        return count

    async def channel_stats(self, channel: str) -> ChannelStats:
        queue = self._channel_queue(channel)
        subscribers = [
            s
            for s in self.subscriptions
            if isinstance(s, _Subscriber) and channel in s.channels and not s.finished
        ]
        in_flight = sum(
            1 for s in subscribers for message in s.leases.messages() if message.channel == channel
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
