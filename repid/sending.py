"""Sending many messages at once: `Repid.send_messages` / `send_messages_json`.

    results = await app.send_messages_json([
        OutgoingMessage(channel="emails", payload={"to": "a@example.com"}),
        OutgoingMessage(channel="sms", payload={"to": "+100"}, headers={"topic": "send"}),
    ])
    results.raise_on_error()          # or look at each: results[0].ok, results[1].error

The messages are grouped by channel (and `server_specific_parameters`) and each group goes to
the server's `publish_batch` (`repid.connections.abc.BatchPublisherT`), so a group costs about
one round trip; a server without it gets concurrent `publish` calls. Producer middlewares run
for every message as they do for `send_message`: each message's chain runs up to the publish,
the batch is published once every chain got there (or ended without publishing), and each
chain then sees its own message's outcome.

Nothing is raised for a message the broker refused: its `SendResult` carries the error, and
the other messages are still sent. Mistakes found before anything is sent (a payload of the
wrong type, no channel, an unknown operation, a server not connected) raise at once and
nothing is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NamedTuple

from repid.connections.abc import BatchPublisherT, ServerT
from repid.data import MessageData
from repid.errors import BatchPublishError, BatchSendError

__all__ = ["OutgoingMessage", "SendResult", "SendResults"]


@dataclass(slots=True)
class OutgoingMessage:
    """One message for `Repid.send_messages` (payload: bytes) or `send_messages_json` (any
    object the app's serializer takes). Name `channel` or `operation_id`, as for
    `send_message`; `content_type` is for `send_messages` only (JSON sets its own)."""

    payload: Any
    channel: str | None = None
    operation_id: str | None = None
    headers: dict[str, str] | None = None
    content_type: str | None = None
    server_specific_parameters: dict[str, Any] | None = None


class SendResult(NamedTuple):
    """The outcome of one message of a batch: `error` is None once the broker accepted it.

    `message_id` is the broker's id for the message where the server returns one (Redis entry
    id, AMQP message-id, Pub/Sub message id). A named tuple: one is made per message, and a
    tuple is the cheapest immutable record to make.
    """

    channel: str
    message_id: str | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class SendResults(tuple[SendResult, ...]):
    """One `SendResult` per message, in the order the messages were given."""

    __slots__ = ()

    @property
    def ok(self) -> bool:
        """True when every message was sent."""
        return all(result.error is None for result in self)

    @property
    def failures(self) -> list[tuple[int, SendResult]]:
        """The `(index, result)` pairs of the messages that were not sent."""
        return [(index, result) for index, result in enumerate(self) if result.error is not None]

    def raise_on_error(self) -> None:
        """Raise `BatchSendError` (the first failure's error as its cause) if any failed."""
        failures = self.failures
        if failures:
            raise BatchSendError(self, failures) from failures[0][1].error  # type: ignore[arg-type]


# Prepared message: (channel, data, server_specific_parameters).
Prepared = tuple[str, MessageData, "dict[str, Any] | None"]
ProducerChain = Callable[[str, MessageData, "dict[str, Any] | None"], Coroutine[Any, Any, Any]]


async def send_prepared(
    server: ServerT,
    prepared: Sequence[Prepared],
    wrap: Callable[[ProducerChain], ProducerChain] | None,
) -> SendResults:
    """Publish `prepared` straight, or through `wrap(endpoint)` (the producer middlewares)."""
    if wrap is None:
        outcomes: list[tuple[str | None, Exception | None]] = [(None, None)] * len(prepared)
        await _publish_groups(server, list(enumerate(prepared)), outcomes)
        return SendResults(
            map(SendResult, [item[0] for item in prepared], *zip(*outcomes, strict=True))
        )
    collector = _Collector(server, prepared)
    return await collector.run(wrap(collector.endpoint))


async def _publish_groups(
    server: ServerT,
    items: list[tuple[int, Prepared]],
    outcomes: list[tuple[str | None, Exception | None]],
) -> None:
    """Publish items grouped by (channel, parameters), groups concurrently; fill `outcomes`."""
    groups: dict[tuple[str, int], list[tuple[int, Prepared]]] = {}
    for index, item in items:
        parameters = item[2]
        key = (item[0], id(parameters) if parameters else 0)
        group = groups.get(key)
        if group is None:
            groups[key] = [(index, item)]
        else:
            group.append((index, item))
    if isinstance(server, BatchPublisherT):
        if len(groups) == 1:
            await _publish_batch(server, next(iter(groups.values())), outcomes)
        else:
            await asyncio.gather(
                *(_publish_batch(server, group, outcomes) for group in groups.values())
            )
    else:
        # Concurrent publishes, started in order (coalescing servers keep it per channel).
        await asyncio.gather(
            *(_publish_one(server, index, item, outcomes) for index, item in items)
        )


async def _publish_batch(
    server: BatchPublisherT,
    group: list[tuple[int, Prepared]],
    outcomes: list[tuple[str | None, Exception | None]],
) -> None:
    channel, _, parameters = group[0][1]
    try:
        ids: Sequence[str | None] = await server.publish_batch(
            channel=channel,
            messages=[item[1] for _, item in group],
            server_specific_parameters=parameters,
        )
    except BatchPublishError as partial:
        for position, (index, _) in enumerate(group):
            error = partial.errors.get(position)
            outcomes[index] = (None, error) if error else (partial.message_ids[position], None)
        return
    except Exception as exc:
        for index, _ in group:
            outcomes[index] = (None, exc)
        return
    for (index, _), message_id in zip(group, ids, strict=True):
        outcomes[index] = (message_id or None, None)


async def _publish_one(
    server: ServerT,
    index: int,
    item: Prepared,
    outcomes: list[tuple[str | None, Exception | None]],
) -> None:
    try:
        await server.publish(channel=item[0], message=item[1], server_specific_parameters=item[2])
    except Exception as exc:
        outcomes[index] = (None, exc)


_INDEX: ContextVar[int] = ContextVar("repid_batch_index")


class _Collector:
    """Runs every message's producer chain; the chains' publishes become one batch.

    The endpoint of each chain parks its message and waits; once every chain has parked or
    ended without publishing, the parked messages are published in groups and each waiting
    endpoint gets its own outcome (its id, or its error raised into its chain).
    """

    def __init__(self, server: ServerT, prepared: Sequence[Prepared]) -> None:
        self._server = server
        self._prepared = prepared
        self._outstanding = len(prepared)
        self._parked: list[tuple[int, Prepared]] = []
        self._waiters: dict[int, asyncio.Future[tuple[str | None, Exception | None]]] = {}
        self._flushed = False
        self._channels: dict[int, str] = {}
        self._ids: dict[int, str | None] = {}

    async def run(self, chain: ProducerChain) -> SendResults:
        results = await asyncio.gather(
            *(self._one(chain, index, item) for index, item in enumerate(self._prepared)),
            return_exceptions=True,
        )
        out = []
        for index, result in enumerate(results):
            channel = self._channels.get(index, self._prepared[index][0])
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                out.append(SendResult(channel, None, result))
            else:
                out.append(SendResult(channel, self._ids.get(index)))
        return SendResults(out)

    async def _one(self, chain: ProducerChain, index: int, item: Prepared) -> None:
        _INDEX.set(index)
        try:
            await chain(*item)
        finally:
            if index not in self._waiters:
                self._arrived()  # ended without publishing (short-circuit or error)

    async def endpoint(
        self, channel: str, message: MessageData, server_specific_parameters: dict[str, Any] | None
    ) -> None:
        index = _INDEX.get()
        self._channels[index] = channel
        if self._flushed or index in self._waiters:
            # A middleware that publishes again after the batch went out: publish directly.
            await self._server.publish(
                channel=channel,
                message=message,
                server_specific_parameters=server_specific_parameters,
            )
            return
        future: asyncio.Future[tuple[str | None, Exception | None]]
        future = asyncio.get_running_loop().create_future()
        self._waiters[index] = future
        self._parked.append((index, (channel, message, server_specific_parameters)))
        self._arrived()
        message_id, error = await future
        if error is not None:
            raise error
        self._ids[index] = message_id

    def _arrived(self) -> None:
        self._outstanding -= 1
        if self._outstanding == 0 and not self._flushed:
            self._flushed = True
            asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        parked = self._parked
        outcomes: list[tuple[str | None, Exception | None]] = [(None, None)] * len(self._prepared)
        try:
            await _publish_groups(self._server, parked, outcomes)
        except BaseException as exc:  # cancelled: tell every waiter
            for future in self._waiters.values():
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            raise
        for index, _ in parked:
            future = self._waiters[index]
            if not future.done():
                future.set_result(outcomes[index])
