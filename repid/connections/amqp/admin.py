"""Dead letters and queue statistics for `AmqpServer` (RabbitMQ 4).

Topology is the user's on RabbitMQ, so the dead-letter queue of a channel is either named by
the caller (`dead_letter_queue=`) or read from the channel queue's own arguments: a queue
declared with `x-dead-letter-exchange: ""` and `x-dead-letter-routing-key: NAME` dead-letters
into the queue `NAME`. Anything else needs the name.

* `read_dead_letters`: receives up to `limit` messages from the dead-letter queue and releases
  them all again (they stay there, with their delivery count unchanged);
* `replay_dead_letters`: receives them, publishes each to the channel (payload, headers,
  content type; publisher-confirmed) and only then accepts (removes) it from the dead-letter
  queue, so a failure in between duplicates a message rather than losing it;
* `purge_dead_letters`: `DELETE /queues/{dlq}/messages` on the management node;
* `channel_stats`: `GET /queues/{name}` on the management node: the queue's message count
  (which RabbitMQ reports as ready messages for classic queues and ready plus unsettled ones for
  quorum queues) and consumer count; the dead-letter queue's message count when it is known;
  in-flight is not reported by the management node (None).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from repid.connections.abc import ChannelStats, DeadLetter, MessageData
from repid.connections.amqp.addressing import headers_of, payload_of
from repid.connections.amqp.protocol.connection import IncomingDelivery, ReceiverLink
from repid.connections.amqp.protocol.message import decode_message
from repid.connections.amqp.protocol.performatives import Accepted, Released
from repid.errors import ChannelNotFoundError, RepidError

if TYPE_CHECKING:
    from repid.connections.amqp.server import AmqpServer

__all__ = [
    "channel_stats",
    "purge_dead_letters",
    "read_dead_letters",
    "replay_dead_letters",
]

_QUIET = 1.0  # seconds without a new delivery after which the queue counts as drained
_BATCH = 100


async def queue_info(server: AmqpServer, name: str) -> dict[Any, Any]:
    """The management node's description of queue `name`; ChannelNotFoundError if missing."""
    status, body = await server.management_request("GET", f"/queues/{quote(name, safe='')}")
    if status == 404:
        raise ChannelNotFoundError(
            f"RabbitMQ at {server.host} has no queue {name!r} (declare it first)"
        )
    if status != 200 or not isinstance(body, dict):
        raise RepidError(f"RabbitMQ could not describe queue {name!r}: status {status}: {body!r}")
    return body


def _count(body: dict[Any, Any], key: str) -> int | None:
    value = body.get(key)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _dead_letter_queue_of(info: dict[Any, Any]) -> str | None:
    arguments = info.get("arguments")
    if not isinstance(arguments, dict):
        return None
    exchange = arguments.get("x-dead-letter-exchange")
    routing_key = arguments.get("x-dead-letter-routing-key")
    if exchange == "" and isinstance(routing_key, str) and routing_key:
        return routing_key
    return None


async def resolve_dead_letter_queue(
    server: AmqpServer, channel: str, dead_letter_queue: str | None
) -> str:
    if dead_letter_queue is not None:
        return dead_letter_queue
    found = _dead_letter_queue_of(await queue_info(server, channel))
    if found is None:
        raise RepidError(
            f"cannot tell the dead-letter queue of {channel!r}: its queue does not dead-letter "
            "to a queue by name (x-dead-letter-exchange '' with a x-dead-letter-routing-key); "
            "name it (dead_letter_queue=..., or --dead-letter-queue on the command line)"
        )
    return found


class _Drain:
    """A receiver link on a queue, with the deliveries it got so far."""

    def __init__(self) -> None:
        self.deliveries: list[IncomingDelivery] = []
        self.arrived = asyncio.Event()

    def on_message(self, link: ReceiverLink, delivery: IncomingDelivery) -> None:
        self.deliveries.append(delivery)
        self.arrived.set()

    async def wait(self, count: int, deadline: float) -> None:
        """Until `count` deliveries arrived, none came for a while, or the deadline passed."""
        loop = asyncio.get_running_loop()
        while len(self.deliveries) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), min(_QUIET, remaining))
            except asyncio.TimeoutError:
                return


async def _receiver(server: AmqpServer, queue: str, drain: _Drain) -> tuple[Any, ReceiverLink]:
    loop = asyncio.get_running_loop()
    client = await server._live_client(loop.time() + server.management.timeout)
    link = await client.attach_receiver(
        f"repid-admin-{uuid.uuid4().hex[:8]}", f"/queues/{quote(queue, safe='')}", drain.on_message
    )
    return client, link


def _letter(delivery: IncomingDelivery, channel: str, queue: str) -> DeadLetter:
    message = decode_message(delivery.payload, annotations=True)
    properties = message.properties
    annotations = message.message_annotations or {}
    # Repid's own reason (what failed, set by the worker on nack) when it is there; else
    # RabbitMQ's (`rejected`, `expired`, `delivery_limit`, ...).
    found = {str(key): value for key, value in annotations.items()}
    own, broker = found.get("x-opt-repid-dead-letter-reason"), found.get("x-first-death-reason")
    reason = str(own) if own is not None else str(broker) if broker is not None else None
    return DeadLetter(
        message_id=str(properties.message_id)
        if properties is not None and properties.message_id is not None
        else None,
        payload=payload_of(message) or b"",
        headers=headers_of(message),
        content_type=properties.content_type if properties is not None else None,
        reason=reason,
        channel=channel,
    )


async def read_dead_letters(
    server: AmqpServer, channel: str, limit: int, dead_letter_queue: str | None
) -> list[DeadLetter]:
    queue = await resolve_dead_letter_queue(server, channel, dead_letter_queue)
    waiting = _count(await queue_info(server, queue), "message_count") or 0
    wanted = min(limit, waiting)
    if wanted <= 0:
        return []
    drain = _Drain()
    client, link = await _receiver(server, queue, drain)
    try:
        client.flow(link, wanted)
        await drain.wait(wanted, asyncio.get_running_loop().time() + server.management.timeout)
        return [_letter(d, channel, queue) for d in drain.deliveries[:wanted]]
    finally:
        client.flow(link, 0)
        for delivery in drain.deliveries:
            client.settle(link, delivery, Released())
        await client.detach(link)


async def replay_dead_letters(
    server: AmqpServer, channel: str, limit: int | None, dead_letter_queue: str | None
) -> int:
    queue = await resolve_dead_letter_queue(server, channel, dead_letter_queue)
    waiting = _count(await queue_info(server, queue), "message_count") or 0
    wanted = waiting if limit is None else min(limit, waiting)
    if wanted <= 0:
        return 0
    drain = _Drain()
    client, link = await _receiver(server, queue, drain)
    moved = 0
    handled = 0
    try:
        while moved < wanted:
            batch = min(_BATCH, wanted - moved)
            client.flow(link, batch)
            loop = asyncio.get_running_loop()
            await drain.wait(handled + batch, loop.time() + server.management.timeout)
            fresh = drain.deliveries[handled:]
            if not fresh:
                break
            for delivery in fresh:
                message = decode_message(delivery.payload, annotations=False)
                properties = message.properties
                await server.publish(
                    channel=channel,
                    message=MessageData(
                        payload_of(message) or b"",
                        headers_of(message),
                        properties.content_type if properties is not None else None,
                    ),
                )
                client.settle(link, delivery, Accepted())
                handled += 1
                moved += 1
    finally:
        client.flow(link, 0)
        for delivery in drain.deliveries[handled:]:
            client.settle(link, delivery, Released())
        with contextlib.suppress(Exception):
            await client.detach(link)
    return moved


async def purge_dead_letters(
    server: AmqpServer, channel: str, dead_letter_queue: str | None
) -> int:
    queue = await resolve_dead_letter_queue(server, channel, dead_letter_queue)
    status, body = await server.management_request(
        "DELETE", f"/queues/{quote(queue, safe='')}/messages"
    )
    if status == 404:
        raise ChannelNotFoundError(f"RabbitMQ at {server.host} has no queue {queue!r}")
    if status != 200:
        raise RepidError(f"RabbitMQ could not purge queue {queue!r}: status {status}: {body!r}")
    count = _count(body, "message_count") if isinstance(body, dict) else None
    return count or 0


async def channel_stats(server: AmqpServer, channel: str) -> ChannelStats:
    info = await queue_info(server, channel)
    dead: int | None = None
    dead_queue = _dead_letter_queue_of(info)
    if dead_queue is not None:
        with contextlib.suppress(ChannelNotFoundError):
            dead = _count(await queue_info(server, dead_queue), "message_count")
    return ChannelStats(
        channel=channel,
        depth=_count(info, "message_count"),
        in_flight=None,
        dead_letters=dead,
        consumers=_count(info, "consumer_count"),
    )
