"""Consuming for `AmqpServer`: one receiver link per channel, credit from the worker's capacity.

Invariant kept by `_top_up`: the credit outstanding on all links plus the prefetched messages
not yet handed to the worker never exceeds `capacity.free`. Arrivals move one unit from credit to
the buffer and dispatches move one from the buffer to the worker, so only freed slots create
room; credit is topped up when a link falls to half its share, so flow frames are batched.

State: the subscription is RECOVERING from the moment its connection or one of its links is
lost until every link is attached again. A delivery held unsettled for `max_lease` seconds is
released back to its queue (and logged).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from repid.connections.abc import DeliveryCapacity, MessageCallbackT, MessageData
from repid.connections.amqp.decoding import decode_delivery
from repid.connections.amqp.protocol.connection import IncomingDelivery, Link, ReceiverLink
from repid.connections.amqp.protocol.errors import AmqpProtocolError
from repid.connections.amqp.protocol.performatives import (
    Accepted,
    DeliveryState,
    Error,
    Modified,
    Rejected,
    Released,
)
from repid.connections.amqp.protocol.types import Symbol
from repid.connections.amqp.transport import (
    RECONNECT_BACKOFF_CAP,
    AmqpClient,
    AmqpConnectionLost,
    AmqpLinkError,
)
from repid.connections.backoff import backoff_delays
from repid.connections.base import BaseReceivedMessage, BaseSubscriber
from repid.connections.delivery import DeliveryLoop, Leases, OpenedT

if TYPE_CHECKING:
    from repid.connections.amqp.server import AmqpServer
    from repid.connections.base import Reply

__all__ = ["AmqpReceivedMessage", "AmqpSubscriber"]

logger = logging.getLogger("repid.connections.amqp")

_ACCEPTED = Accepted()
_REJECTED = Rejected()
_RELEASED = Released()
_REASON = Symbol("x-opt-repid-dead-letter-reason")


class AmqpReceivedMessage(BaseReceivedMessage):
    """A delivery from `AmqpServer`.

    ack settles it `accepted`, nack `rejected` (the queue's dead-letter policy applies; a nack
    with a reason is `modified` as undeliverable, which RabbitMQ 4 quorum queues dead-letter with
    the message annotation `x-opt-repid-dead-letter-reason`), reject `released` (requeued;
    RabbitMQ does not count it as a failed delivery), reply publishes to `reply_to` (or the
    given channel) and then accepts.
    """

    __slots__ = (
        "_client",
        "_delivery",
        "_delivery_count",
        "_link",
        "_message_id",
        "_reply_to",
        "_subscriber",
    )

    def __init__(
        self,
        *,
        payload: bytes,
        headers: dict[str, str] | None,
        content_type: str | None,
        channel: str,
        message_id: str | None,
        reply_to: str | None,
        delivery_count: int,
        subscriber: AmqpSubscriber,
        client: AmqpClient,
        link: ReceiverLink,
        delivery: IncomingDelivery,
    ) -> None:
        super().__init__(
            payload=payload, headers=headers, content_type=content_type, channel=channel
        )
        self._message_id = message_id
        self._reply_to = reply_to
        self._delivery_count = delivery_count
        self._subscriber = subscriber
        self._client = client
        self._link = link
        self._delivery = delivery

    @property
    def message_id(self) -> str | None:
        return self._message_id

    @property
    def reply_to(self) -> str | None:
        if self._reply_to is not None:
            return self._reply_to
        return super().reply_to

    @property
    def delivery_count(self) -> int | None:
        return self._delivery_count

    def _settle(self, state: DeliveryState) -> None:
        if not self._client.settle(self._link, self._delivery, state):
            logger.warning(
                "amqp.settle_lost: the connection or link of message %r on %r is gone; "
                "the broker will deliver it again",
                self._message_id,
                self._channel,
                extra={"channel": self._channel, "message_id": self._message_id},
            )
        self._subscriber._settled(self._link, self._delivery)

    async def _ack(self) -> None:
        self._settle(_ACCEPTED)

    async def _nack(self, reason: str | None) -> None:
        if reason is None or not self._subscriber._server.annotate_dead_letters:
            self._settle(_REJECTED)
        else:
            self._settle(
                Modified(
                    delivery_failed=True,
                    undeliverable_here=True,
                    message_annotations={_REASON: reason},
                )
            )

    async def _reject(self) -> None:
        self._settle(_RELEASED)

    async def _reply(self, reply: Reply) -> None:
        channel = reply.channel
        params = dict(reply.server_specific_parameters or {})
        if channel.startswith(("/queues/", "/exchanges/")) and "to" not in params:
            params["to"] = channel  # reply-to already holds an AMQP address
        await self._subscriber._server.publish(
            channel=channel,
            message=MessageData(reply.payload, reply.headers, reply.content_type),
            server_specific_parameters=params,
        )
        self._settle(_ACCEPTED)


class _Consumer:
    __slots__ = ("address", "callback", "channel", "client", "link", "reattach")

    def __init__(self, channel: str, address: str, callback: MessageCallbackT) -> None:
        self.channel = channel
        self.address = address
        self.callback = callback
        self.link: ReceiverLink | None = None
        self.client: AmqpClient | None = None
        self.reattach: asyncio.Task[None] | None = None


class AmqpSubscriber(BaseSubscriber):
    """The `SubscriberT` returned by `AmqpServer.subscribe`."""

    def __init__(
        self,
        server: AmqpServer,
        callbacks: Mapping[str, MessageCallbackT],
        capacity: DeliveryCapacity,
        max_lease: float | None = None,
    ) -> None:
        super().__init__(
            capacity=capacity, channels=callbacks, max_lease=max_lease, log_name="amqp"
        )
        self._server = server
        self._consumers = [
            _Consumer(channel, server.subscribe_naming_strategy(channel), callback)
            for channel, callback in callbacks.items()
        ]
        self._callbacks = {c.channel: c.callback for c in self._consumers}
        self._delivery: DeliveryLoop[AmqpReceivedMessage] = DeliveryLoop(
            capacity, self._open, after_batch=self._top_up, source="amqp"
        )
        self._buffer = self._delivery.buffer
        self._rotation = 0
        self._draining: set[ReceiverLink] = set()
        self.leases: Leases[IncomingDelivery, AmqpReceivedMessage] = Leases()

    # ------------------------------------------------------------------ SubscriberT

    async def _on_pause(self) -> None:
        self._delivery.pause()
        for consumer in self._consumers:
            if consumer.link is not None and consumer.client is not None:
                consumer.client.flow(consumer.link, 0)

    async def _on_resume(self) -> None:
        self._delivery.resume()
        self._top_up()

    async def _on_close(self) -> None:
        self._delivery.close()
        self._capacity.remove_listener(self._top_up)
        # Prefetched but never handed to the worker: straight back to the queue.
        while self._buffer:
            message = self._buffer.popleft()
            message._client.settle(message._link, message._delivery, _RELEASED)
        for consumer in self._consumers:
            if consumer.reattach is not None:
                consumer.reattach.cancel()
            link, client = consumer.link, consumer.client
            if link is None or client is None:
                continue
            client.flow(link, 0)
            if link.unsettled:
                # The worker still holds messages from this link: detach after their settlement.
                self._draining.add(link)
            else:
                await client.detach(link)

    def _lease_tables(self) -> Iterable[Leases[IncomingDelivery, AmqpReceivedMessage]]:
        return (self.leases,)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, client: AmqpClient) -> None:
        """Attach every channel's link (a missing queue raises `AmqpLinkError`)."""
        try:
            for consumer in self._consumers:
                await self._attach(consumer, client)
        except BaseException:
            self._closed = True
            for consumer in self._consumers:
                if consumer.link is not None and consumer.client is not None:
                    await consumer.client.detach(consumer.link)
            raise
        self._capacity.add_listener(self._top_up)
        self._spawn(self._delivery.run(), "repid-amqp-dispatch")
        self._start_lease_watch()
        self._top_up()

    def connection_lost(self, why: str) -> None:
        """The server lost the connection: RECOVERING until `attach_all` succeeds."""
        self._mark_recovering(why)

    async def attach_all(self, client: AmqpClient) -> None:
        """(Re-)attach all links on `client`, e.g. after a reconnect."""
        # Prefetched messages of a dead connection can no longer be settled: the broker has
        # already put them back.
        alive = [m for m in self._buffer if m._client is client]
        self._buffer.clear()
        self._buffer.extend(alive)
        for consumer in self._consumers:
            if self._closed:
                return
            if consumer.reattach is not None:
                consumer.reattach.cancel()
            try:
                await self._attach(consumer, client)
            except AmqpLinkError as exc:
                # E.g. the queue is gone: keep the others running and retry this one alone.
                logger.error(
                    "amqp.attach_failed: %s; retrying with backoff",
                    exc,
                    extra={"error": type(exc).__name__},
                )
                consumer.reattach = asyncio.get_running_loop().create_task(self._reattach(consumer))
        self._check_recovered()
        self._top_up()

    def _check_recovered(self) -> None:
        """ACTIVE again once every channel has its link on a live connection."""
        if all(
            c.link is not None and c.client is not None and c.client.is_alive
            for c in self._consumers
        ):
            self._mark_recovered()

    async def _attach(self, consumer: _Consumer, client: AmqpClient) -> None:
        name = f"repid-{consumer.channel}-{uuid.uuid4().hex[:8]}"
        consumer.link = None
        consumer.client = client
        link = await client.attach_receiver(
            name,
            consumer.address,
            lambda link, delivery, c=consumer: self._on_delivery(c, link, delivery),  # type: ignore[misc]
            on_detach=lambda link, error, c=consumer: self._on_detached(c, link, error),  # type: ignore[misc]
        )
        consumer.link = link

    def _on_detached(self, consumer: _Consumer, link: Link, error: Error | None) -> None:
        if self._closed or consumer.link is not link:
            return
        consumer.link = None
        detail = f"{error.condition}: {error.description}" if error else "no error given"
        logger.error(
            "amqp.link_detached: the broker detached the consumer of %r (%s); re-attaching",
            consumer.channel,
            detail,
            extra={"channel": consumer.channel},
        )
        self._mark_recovering(f"the consumer link of {consumer.channel!r} detached ({detail})")
        consumer.reattach = asyncio.get_running_loop().create_task(self._reattach(consumer))

    async def _reattach(self, consumer: _Consumer) -> None:
        for delay in backoff_delays(0.5, RECONNECT_BACKOFF_CAP):
            await asyncio.sleep(delay)
            client = self._server._client
            if self._closed:
                return
            if client is None or not client.is_alive:
                return  # the reconnect re-attaches everything
            try:
                await self._attach(consumer, client)
            except (AmqpLinkError, AmqpConnectionLost) as exc:
                logger.error("amqp.reattach_failed: %s", exc, extra={"error": type(exc).__name__})
                continue
            self._check_recovered()
            self._top_up()
            return

    # ------------------------------------------------------------------ deliveries

    def _on_delivery(
        self, consumer: _Consumer, link: ReceiverLink, delivery: IncomingDelivery
    ) -> None:
        client = consumer.client
        assert client is not None
        if self._closed:
            client.settle(link, delivery, _RELEASED)
            return
        try:
            fields = decode_delivery(delivery.payload)
        except AmqpProtocolError as exc:
            logger.error(
                "amqp.bad_message: undecodable message on %r rejected (dead-lettered): %s",
                consumer.channel,
                exc,
                extra={"channel": consumer.channel, "error": type(exc).__name__},
            )
            client.settle(link, delivery, Rejected(Error(exc.condition, exc.description)))
            self._top_up()
            return
        self._delivery.push(
            AmqpReceivedMessage(
                payload=fields.payload,
                headers=fields.headers,
                content_type=fields.content_type,
                channel=consumer.channel,
                message_id=fields.message_id,
                reply_to=fields.reply_to,
                delivery_count=fields.delivery_count,
                subscriber=self,
                client=client,
                link=link,
                delivery=delivery,
            )
        )

    def _open(self, message: AmqpReceivedMessage) -> OpenedT | None:
        if not message._client.is_alive:
            return None  # its connection died: the broker redelivers it
        self.leases.add(message._delivery, message)
        return message, self._callbacks[message.channel]

    def _settled(self, link: ReceiverLink, delivery: IncomingDelivery) -> None:
        self.leases.discard(delivery)
        if link in self._draining and not link.unsettled:
            self._draining.discard(link)
            client = next((c.client for c in self._consumers if c.link is link), None)
            if client is not None:
                asyncio.get_running_loop().create_task(client.detach(link))

    def _top_up(self) -> None:
        """Grant credit from the free slots (see the module docstring)."""
        if self._paused or self._closed:
            return
        active: list[tuple[ReceiverLink, AmqpClient]] = [
            (c.link, c.client)
            for c in self._consumers
            if c.link is not None and c.client is not None and c.client.is_alive
        ]
        if not active:
            return
        total = self._capacity.free - len(self._buffer)
        outstanding = sum(link.credit for link, _ in active)
        slack = total - outstanding
        if slack <= 0:
            return
        share = total // len(active)
        if share == 0:
            # Fewer free slots than channels: one credit at a time, rotating between channels.
            start = self._rotation
            self._rotation = (start + 1) % len(active)
            for i in range(len(active)):
                link, client = active[(start + i) % len(active)]
                if slack <= 0:
                    break
                if link.credit == 0:
                    client.flow(link, 1)
                    slack -= 1
            return
        for link, client in active:
            if slack <= 0:
                break
            if link.credit <= share // 2:
                new = min(share, link.credit + slack)
                if new > link.credit:
                    slack -= new - link.credit
                    client.flow(link, new)
