"""The one interface between Repid and a message broker.

The worker, `TestClient` and the job layer talk to brokers only through the protocols in this
module, so a server that implements them gets every feature above it.

A server (`ServerT`) does three things:

* `connect` / `disconnect` (and the `connection()` context manager built on them);
* `publish(channel=..., message=MessageData, server_specific_parameters=...)`;
* `subscribe(channels_to_callbacks=..., capacity=...)`, which starts delivering
  `ReceivedMessageT` objects to per-channel callbacks and returns a `SubscriberT` handle
  with `pause` / `resume` / `close`.

Flow control: the worker owns a `DeliveryCapacity` (its free task slots) and hands it to
`subscribe`. A subscriber must never deliver a message while `capacity.free == 0`; it asks the
broker for at most `capacity.free` messages (Redis `XREADGROUP COUNT`, AMQP link credit, Pub/Sub
flow control) and waits with `await capacity.wait_for_free()` when the worker is full. The
callback takes a slot synchronously and returns as soon as the message is scheduled (it does not
wait for the actor), so a subscriber simply awaits it for each message, in delivery order. The
slot comes back when the actor's task ends.

Outcomes, the same words on every broker:

* `ack` - processed; the broker forgets the message.
* `nack` - failed; the broker dead-letters it (or drops it, by the broker's own policy).
* `reject` - not processed now; the message goes back to its queue for another delivery.
* `reply` - publish a reply and ack, atomically where the broker can.

A message is acted on at most once: a second action is ignored (and logged at debug level).
Messages that are delivered but never acted on (a crashed worker) come back by the broker's own
redelivery mechanism; every server documents how and when.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "BaseMessageT",
    "DeliveryCapacity",
    "DescribedServerT",
    "MessageAction",
    "MessageCallbackT",
    "MessageData",
    "ReceivedMessageT",
    "ServerCapabilities",
    "ServerDescription",
    "ServerT",
    "SubscriberT",
    "SubscriptionState",
    "subscription_state",
]


@dataclass(slots=True)
class MessageData:
    """A message on its way to a broker: the payload bytes and their metadata.

    Producer middlewares receive and may replace it before it is published. `reply_to` names
    the channel a reply should go to (the broker's own reply-to field; repid 2.x's
    `MessageData.reply_to`); a `reply_to` header does the same on every broker. (Also
    importable as `repid.data.MessageData`.)
    """

    payload: bytes
    headers: dict[str, str] | None = None
    content_type: str | None = None
    reply_to: str | None = None


class MessageAction(str, enum.Enum):
    """What happened to a received message."""

    ACKED = "acked"
    NACKED = "nacked"
    REJECTED = "rejected"
    REPLIED = "replied"
    # repid 2.x's member names: aliases (`MessageAction.acked is MessageAction.ACKED`).
    acked = "acked"  # noqa: PIE796
    nacked = "nacked"  # noqa: PIE796
    rejected = "rejected"  # noqa: PIE796
    replied = "replied"  # noqa: PIE796


@runtime_checkable
class BaseMessageT(Protocol):
    """What a routing strategy sees of a message."""

    @property
    def payload(self) -> bytes: ...

    @property
    def headers(self) -> dict[str, str] | None: ...

    @property
    def content_type(self) -> str | None: ...

    @property
    def channel(self) -> str: ...


@runtime_checkable
class ReceivedMessageT(BaseMessageT, Protocol):
    """A message delivered by a broker, with the actions that settle it."""

    @property
    def message_id(self) -> str | None: ...

    @property
    def reply_to(self) -> str | None:
        """The channel a reply should go to, if the sender named one."""
        ...

    @property
    def delivery_count(self) -> int | None:
        """How many times the broker delivered it before this time, if the broker says."""
        ...

    @property
    def is_acted_on(self) -> bool: ...

    @property
    def action(self) -> MessageAction | None: ...

    async def ack(self) -> None: ...

    async def nack(self, *, reason: str | None = None) -> None:
        """Failed: dead-letter the message (or drop it, by the broker's policy).

        `reason` says what failed (e.g. `"PayloadValidationError: ..."`); brokers that keep
        dead letters store it with the message.
        """
        ...

    async def reject(self) -> None: ...

    async def reply(
        self,
        *,
        payload: bytes,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
        channel: str | None = None,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None:
        """Publish a reply (to `channel`, else to `reply_to`) and ack this message."""
        ...


MessageCallbackT = Callable[[ReceivedMessageT], Coroutine[Any, Any, None]]


@runtime_checkable
class DeliveryLimitT(Protocol):
    """Optional, on a received message: its broker dead-letters it by itself after a number of
    deliveries (Pub/Sub's dead-letter policy). The worker gives up a message no actor takes
    at that delivery at the latest, so that its one log line comes before the broker acts."""

    @property
    def delivery_limit(self) -> int | None:
        """The delivery after which the broker moves the message aside; None if it never does
        (or the limit is not known)."""
        ...


__all__ += ["DeliveryLimitT"]


class DeliveryCapacity:
    """The worker's free task slots, shared with a subscriber for flow control.

    `limit=None` means unbounded; `free` then reports `unbounded_batch` so that pull-based
    servers still ask for messages in reasonable batches. `budget` caps the total number of
    deliveries (the worker's `messages_limit`): once spent, `free` stays 0.
    """

    __slots__ = ("_budget", "_in_use", "_limit", "_listeners", "_waiter", "unbounded_batch")

    def __init__(
        self, limit: int | None, *, budget: int | None = None, unbounded_batch: int = 1000
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"capacity limit must be at least 1 or None, got {limit!r}")
        if budget is not None and budget < 0:
            raise ValueError(f"capacity budget must be at least 0 or None, got {budget!r}")
        self._limit = limit
        self._budget = budget
        self._in_use = 0
        self._waiter: asyncio.Future[None] | None = None
        self._listeners: list[Callable[[], None]] = []
        self.unbounded_batch = unbounded_batch

    @property
    def limit(self) -> int | None:
        return self._limit

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def free(self) -> int:
        free = self.unbounded_batch if self._limit is None else self._limit - self._in_use
        if self._budget is not None and self._budget < free:
            free = self._budget
        return free if free > 0 else 0

    def acquire(self) -> None:
        """Take one slot. Called by the worker when a message is handed to it."""
        self._in_use += 1
        if self._budget is not None:
            self._budget -= 1

    def release(self) -> None:
        """Give one slot back. Called by the worker when a message's task ends."""
        self._in_use -= 1
        self._notify()

    def refund(self) -> None:
        """Return one delivery to the budget (a message that did not count, e.g. unrouted)."""
        if self._budget is not None:
            self._budget += 1
            self._notify()

    def _notify(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done() and self.free > 0:
            waiter.set_result(None)
        for listener in self._listeners:
            listener()

    async def wait_for_free(self) -> int:
        """Wait until at least one slot is free; return how many are."""
        while self.free <= 0:
            if self._waiter is None or self._waiter.done():
                self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._waiter)
        return self.free

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener()` whenever slots may have freed up (to top up AMQP link credit)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)


@dataclass(frozen=True, slots=True)
class ServerCapabilities:
    """What a broker can do beyond the common interface; features check these flags.

    - `atomic_reply`: `reply` publishes and acks in one broker operation.
    - `dead_letter`: `nack` moves the message somewhere it can be inspected.
    - `priorities`: messages with a higher priority are delivered first.
    - `persistent`: messages survive a broker restart.
    - `distributed`: several worker processes can share one channel.
    """

    atomic_reply: bool = False
    dead_letter: bool = False
    priorities: bool = False
    persistent: bool = False
    distributed: bool = False


class SubscriptionState(str, enum.Enum):
    """What a subscription is doing (`SubscriberT.state`; `Runner.is_ready` reads it)."""

    ACTIVE = "active"
    """Consuming, or idle waiting for messages: healthy."""
    PAUSED = "paused"
    """Paused on purpose (shutdown, or backpressure asked for by the caller)."""
    RECOVERING = "recovering"
    """The connection, stream or consumer loop was lost; reconnecting / re-subscribing."""
    FAILED = "failed"
    """Gave up: the consumer loop died and will not come back."""
    CLOSED = "closed"


@runtime_checkable
class SubscriberT(Protocol):
    """A running subscription returned by `ServerT.subscribe`.

    Built-in subscribers also have `state` (a `SubscriptionState`), kept true as the broker
    connection comes and goes; `subscription_state()` reads it from any subscriber.
    """

    @property
    def is_active(self) -> bool:
        """True while the subscription is open and not paused."""
        ...

    async def pause(self) -> None:
        """Stop asking the broker for new messages; in-flight ones still settle."""
        ...

    async def resume(self) -> None: ...

    async def close(self) -> None:
        """End the subscription; undelivered prefetched messages go back to the broker."""
        ...


def subscription_state(subscriber: SubscriberT) -> SubscriptionState:
    """`subscriber.state`; a subscriber without one is ACTIVE while `is_active`, else PAUSED."""
    state = getattr(subscriber, "state", None)
    if isinstance(state, SubscriptionState):
        return state
    return SubscriptionState.ACTIVE if subscriber.is_active else SubscriptionState.PAUSED


@runtime_checkable
class ServerT(Protocol):
    """A message broker connection: the transport the worker and the app use.

    See the module docstring for the contract. How a server is described in an AsyncAPI
    document is a separate protocol, `DescribedServerT`.
    """

    @property
    def capabilities(self) -> ServerCapabilities: ...

    @property
    def is_connected(self) -> bool:
        """True while the broker connection is believed alive (health checks read this)."""
        ...

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    def connection(self) -> AbstractAsyncContextManager[Any]:
        """`async with server.connection():` connects, and disconnects on exit."""
        ...

    async def publish(
        self,
        *,
        channel: str,
        message: MessageData,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None: ...

    async def subscribe(
        self,
        *,
        channels_to_callbacks: Mapping[str, MessageCallbackT],
        capacity: DeliveryCapacity,
    ) -> SubscriberT: ...


@dataclass(frozen=True, slots=True)
class ServerDescription:
    """A server as an AsyncAPI 3.0 server object describes it. No field may hold a credential.

    `host` is `host[:port]` (no user info), `pathname` a path (no query string).
    """

    host: str
    protocol: str
    pathname: str | None = None
    protocol_version: str | None = None
    title: str | None = None
    summary: str | None = None
    description: str | None = None
    variables: Mapping[str, Any] | None = None
    security: list[Any] | None = None
    tags: list[Any] | None = None
    external_docs: Any | None = None
    bindings: Mapping[str, Any] | None = None


@runtime_checkable
class DescribedServerT(Protocol):
    """A server that describes itself for AsyncAPI documents (every built-in server does).

    The AsyncAPI generator reads `asyncapi_description()`; the worker never does.
    """

    def asyncapi_description(self) -> ServerDescription: ...


# Optional admin protocols ----------------------------------------------------------------
# A server MAY implement these; `repid dlq` and `repid stats` (and metrics) check them with
# isinstance and say "not supported by this server" otherwise.


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered message, as a `DeadLetterStoreT` shows it."""

    message_id: str | None
    """The broker's id of the dead letter (what `replay` and the broker's own tools name)."""
    payload: bytes
    headers: dict[str, str] | None
    content_type: str | None
    reason: str | None
    """Why it was dead-lettered, when the broker or Repid recorded it."""
    channel: str
    """The channel it was dead-lettered from (where `replay` puts it back)."""


@runtime_checkable
class DeadLetterStoreT(Protocol):
    """A server whose dead letters can be listed, replayed onto their channel and purged.

    `dead_letter_queue` names the dead-letter queue where the broker cannot derive it from the
    channel (RabbitMQ: the topology is the user's); servers that know it ignore the argument.
    """

    async def read_dead_letters(
        self, channel: str, *, limit: int = 100, dead_letter_queue: str | None = None
    ) -> list[DeadLetter]:
        """Up to `limit` dead letters of `channel`, oldest first, without removing them."""
        ...

    async def replay_dead_letters(
        self, channel: str, *, limit: int | None = None, dead_letter_queue: str | None = None
    ) -> int:
        """Move dead letters (oldest first; all, or `limit`) back to `channel`; return how many."""
        ...

    async def purge_dead_letters(
        self, channel: str, *, dead_letter_queue: str | None = None
    ) -> int:
        """Delete every dead letter of `channel`; return how many were deleted."""
        ...


@dataclass(frozen=True, slots=True)
class ChannelStats:
    """What a broker can tell about one channel; None where it cannot."""

    channel: str
    depth: int | None
    """Messages waiting to be delivered."""
    in_flight: int | None
    """Messages delivered to consumers and not settled yet (unacknowledged)."""
    dead_letters: int | None
    consumers: int | None


@runtime_checkable
class ChannelStatsT(Protocol):
    """A server that can report queue depth, in-flight and dead-letter counts per channel."""

    async def channel_stats(self, channel: str) -> ChannelStats: ...


__all__ += ["ChannelStats", "ChannelStatsT", "DeadLetter", "DeadLetterStoreT"]


# Optional publishing protocol ------------------------------------------------------------


@runtime_checkable
class BatchPublisherT(Protocol):
    """A server that publishes many messages to one channel in about one round trip.

    `Repid.send_messages` uses it where the server has it (every built-in server does) and
    falls back to concurrent `publish` calls otherwise.

    Contract: `publish_batch` publishes `messages` to `channel` in their order with the same
    `server_specific_parameters` each, and returns one message id per message (an empty
    string where the broker gives none). When every message failed it raises that error, as
    `publish` would; when only some did, it raises `repid.errors.BatchPublishError`, which
    names the failed indices and the ids of the others. Any other exception means that no
    message of the call is known to be published.
    """

    async def publish_batch(
        self,
        *,
        channel: str,
        messages: Sequence[MessageData],
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> list[str]: ...


__all__ += ["BatchPublisherT"]


# Optional subscription-state listening ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscriptionStateChange:
    """One change of a subscription's `SubscriptionState`, as a state listener gets it."""

    subscriber: SubscriberT
    channels: tuple[str, ...]
    previous: SubscriptionState
    current: SubscriptionState

    @property
    def is_reconnect(self) -> bool:
        """The subscription consumes again after a lost connection (RECOVERING -> ACTIVE)."""
        return (
            self.previous is SubscriptionState.RECOVERING
            and self.current is SubscriptionState.ACTIVE
        )


SubscriptionListenerT = Callable[[SubscriptionStateChange], None]
"""Called in the server's event loop, synchronously, at each change; it must not block. An
exception it raises is logged (`subscription.listener_failed`) and otherwise ignored."""


@runtime_checkable
class SubscriptionEventsT(Protocol):
    """A server that tells listeners when any of its subscriptions changes state.

    Every built-in server implements it (once, in `repid.connections.base.BaseServer`): the
    listener hears about the subscriptions open now and those opened later, e.g. a reconnect
    (`change.is_reconnect`) for a metrics counter. A state a subscription is in when the
    listener is added is not replayed; read `SubscriberT.state` for that.
    """

    def add_state_listener(self, listener: SubscriptionListenerT) -> Callable[[], None]:
        """Start calling `listener`; returns a function that stops it (safe to call twice)."""
        ...


__all__ += ["SubscriptionEventsT", "SubscriptionListenerT", "SubscriptionStateChange"]
