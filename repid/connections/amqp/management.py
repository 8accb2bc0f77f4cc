"""RabbitMQ 4's AMQP 1.0 management node: HTTP-style requests over a link pair.

The node is the address `/management`. A client attaches a sender link (target
`/management`) and a receiver link (source `/management`) with the same name and the link
property `paired: true`, both settled. A request is a message whose `to` is the resource path
(`/queues/{name}`, percent-encoded), `subject` the HTTP method, `message_id` an id, and
`reply_to` `$me`; its body is an AMQP value (a map for PUT, null otherwise). The answer carries
the request's id in `correlation_id`, the HTTP status code in `subject`, and an AMQP value body
(for `GET /queues/{name}` a map with `message_count`, `consumer_count`, `arguments`, ...).

The pair is opened on the first request and again after its connection is gone.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from repid.connections.amqp.protocol.connection import IncomingDelivery, ReceiverLink, SenderLink
from repid.connections.amqp.protocol.message import (
    AmqpMessageProperties,
    AmqpValue,
    Message,
    decode_message,
    encode_message,
)
from repid.connections.amqp.protocol.performatives import (
    ReceiverSettleMode,
    SenderSettleMode,
    Source,
    Target,
)
from repid.connections.amqp.protocol.types import Symbol
from repid.connections.amqp.transport import AmqpClient

__all__ = ["AmqpManagement"]

_ADDRESS = "/management"
_PAIRED = {Symbol("paired"): True}
_CREDIT = 100


class _LinkPair:
    """One request/response link pair on one AMQP connection."""

    def __init__(self, client: AmqpClient, sender: SenderLink, receiver: ReceiverLink) -> None:
        self.client = client
        self.sender = sender
        self.receiver = receiver
        self.waiting: dict[str, asyncio.Future[Message]] = {}
        self.received = 0

    @property
    def usable(self) -> bool:
        return self.client.is_alive and not self.sender.detached and not self.receiver.detached

    def on_message(self, link: ReceiverLink, delivery: IncomingDelivery) -> None:
        try:
            message = decode_message(delivery.payload)
        except Exception:
            return
        self.received += 1
        if self.received % (_CREDIT // 2) == 0:
            self.client.flow(self.receiver, _CREDIT)
        properties = message.properties
        key = str(properties.correlation_id) if properties is not None else ""
        future = self.waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result(message)


class AmqpManagement:
    """Requests to the management node over the connection `live_client(deadline)` returns."""

    def __init__(
        self, live_client: Callable[[float], Awaitable[AmqpClient]], timeout: float
    ) -> None:
        self._live_client = live_client
        self.timeout = timeout
        self._pair: _LinkPair | None = None
        self._lock: asyncio.Lock | None = None
        self._ids = itertools.count()

    def reset(self) -> None:
        """Forget the link pair (its connection is closing); waiting requests are cancelled."""
        pair, self._pair = self._pair, None
        self._lock = None
        if pair is not None:
            for future in pair.waiting.values():
                future.cancel()

    async def _link_pair(self) -> _LinkPair:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            pair = self._pair
            if pair is not None and pair.usable:
                return pair
            loop = asyncio.get_running_loop()
            client = await self._live_client(loop.time() + self.timeout)
            session = client._session()
            name = f"repid-management-{uuid.uuid4().hex[:12]}"
            sender = session.attach_sender(
                name,
                Target(address=_ADDRESS),
                snd_settle_mode=SenderSettleMode.SETTLED,
                properties=dict(_PAIRED),
            )
            await client._await_attach(sender, _ADDRESS)
            receiver = session.attach_receiver(
                name,
                Source(address=_ADDRESS),
                target=Target(address=None),
                snd_settle_mode=SenderSettleMode.SETTLED,
                rcv_settle_mode=ReceiverSettleMode.FIRST,
                properties=dict(_PAIRED),
            )
            pair = _LinkPair(client, sender, receiver)
            client._on_message[receiver] = pair.on_message
            await client._await_attach(receiver, _ADDRESS)
            client.flow(receiver, _CREDIT)
            self._pair = pair
            return pair

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one request; return (HTTP status code, body value). Times out after `timeout`."""
        pair = await self._link_pair()
        request_id = f"repid-{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        request = Message(
            body=AmqpValue(body),
            properties=AmqpMessageProperties(
                message_id=request_id, to=path, subject=method, reply_to="$me"
            ),
        )
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        pair.waiting[request_id] = future
        try:
            pair.sender.send(encode_message(request), settled=True)
            pair.client._flush()
            response = await asyncio.wait_for(future, self.timeout)
        finally:
            pair.waiting.pop(request_id, None)
        subject = response.properties.subject if response.properties is not None else None
        try:
            status = int(subject or 0)
        except ValueError:
            status = 0
        value = response.body.value if isinstance(response.body, AmqpValue) else None
        return status, value
