"""RabbitMQ 4 job broker over AMQP 1.0 (needs `pip install repid[amqp]`).

`RabbitMessageBroker` is the message layer's `AmqpServer` plus:

* queue declaration through RabbitMQ's AMQP 1.0 management node (`/management`: a link pair
  with the `paired` property, HTTP-style requests `PUT /queues/{name}` and `GET /queues/{name}`
  answered with a status code in `subject`). `declare_queue(name)` creates a quorum queue
  `name` whose dead letters go to the quorum queue `{name}.dead` (declared first), so a job
  whose retries are spent can be inspected there. `queue_arguments` replaces the arguments of
  the main queue (e.g. a classic queue with `x-max-priority`). Declaring an existing queue
  with other arguments fails (RabbitMQ answers 409) with `RabbitDeclareError`;
* enqueueing to an undeclared queue raises `QueueNotDeclaredError` (RabbitMQ refuses the
  message: the v2 address `/queues/{name}` must exist);
* priorities: the job's priority goes in the AMQP header (`LOW` 0, `MEDIUM` 2, `HIGH` 9).
  MEDIUM is not the AMQP default 4 on purpose: a header at its default value is left out of
  the message, and RabbitMQ's classic priority queues rank a message without a priority as 0.
  Quorum queues (the default here) know two levels: 5-9 "high" and 0-4 "normal", so HIGH is
  delivered before MEDIUM and LOW (weighted, not strict: RabbitMQ delivers high and normal
  messages in a 2:1 ratio when both are waiting), and MEDIUM and LOW are one level. A classic
  queue declared with `x-max-priority` (see `queue_arguments`) orders by priority exactly;
* unique jobs are not deduplicated (the job id is the AMQP message-id; RabbitMQ does not
  check it);
* retry delays: RabbitMQ has no per-message delay without a plugin, so the worker holds a
  failed message unsettled for the delay, then publishes the retry and acks (see
  `repid.jobs.middleware`). `supports_delayed_publish` is False.

The management link pair uses the AMQP client's session directly (internal API of
`repid.connections.amqp.transport`); it is opened on first use and re-opened after a reconnect.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any
from urllib.parse import quote

from repid.connections.amqp import AmqpServer
from repid.connections.amqp.protocol.connection import IncomingDelivery, ReceiverLink, SenderLink
from repid.connections.amqp.protocol.message import (
    AmqpMessageHeader,
    AmqpMessageProperties,
    AmqpValue,
    Message,
    decode_message,
    encode_message,
)
from repid.connections.amqp.protocol.performatives import (
    ReceiverSettleMode,
    Rejected,
    SenderSettleMode,
    Source,
    Target,
)
from repid.connections.amqp.protocol.types import Symbol
from repid.connections.amqp.server import AmqpPublishError
from repid.connections.amqp.transport import AmqpClient
from repid.data import MessageData
from repid.jobs.errors import QueueNotDeclaredError
from repid.jobs.priorities import PrioritiesT

__all__ = ["RabbitDeclareError", "RabbitMessageBroker"]

_PRIORITY = {PrioritiesT.LOW: 0, PrioritiesT.MEDIUM: 2, PrioritiesT.HIGH: 9}
_HEADERS = {p: AmqpMessageHeader(durable=True, priority=v) for p, v in _PRIORITY.items()}
_MANAGEMENT = "/management"
_PAIRED = {Symbol("paired"): True}
_CREDIT = 100


class RabbitDeclareError(RuntimeError):
    """RabbitMQ refused a queue declaration (e.g. 409: it exists with other arguments)."""


class _ManagementLink:
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


class RabbitMessageBroker(AmqpServer):
    """A job-layer message broker on RabbitMQ 4 (see the module docstring).

    `dsn` is the AMQP URL (`amqp://user:password@host:port/vhost`); other keywords go to
    `AmqpServer`. `queue_arguments` are the arguments of queues it declares (default: a quorum
    queue dead-lettering to `{name}.dead`); `management_timeout` bounds one management request.
    """

    supports_delayed_publish = False
    supports_priorities = True

    def __init__(
        self,
        dsn: str = "amqp://localhost",
        *,
        queue_arguments: dict[str, Any] | None = None,
        management_timeout: float = 15.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(dsn, **kwargs)
        self.queue_arguments = queue_arguments
        self.management_timeout = management_timeout
        self._management: _ManagementLink | None = None
        self._management_lock: asyncio.Lock | None = None
        self._request_ids = itertools.count()

    async def disconnect(self) -> None:
        # The link pair lives on the connection being closed; a later connect() (perhaps on
        # another event loop) opens a new one.
        link, self._management = self._management, None
        self._management_lock = None
        if link is not None:
            for future in link.waiting.values():
                future.cancel()
        await super().disconnect()

    @staticmethod
    def dead_letter_queue(name: str) -> str:
        """The queue that receives `name`'s dead letters (when declared by this broker)."""
        return f"{name}.dead"

    # -- management ---------------------------------------------------------------------------

    async def _management_link(self) -> _ManagementLink:
        if self._management_lock is None:
            self._management_lock = asyncio.Lock()
        async with self._management_lock:
            link = self._management
            if link is not None and link.usable:
                return link
            loop = asyncio.get_running_loop()
            client = await self._live_client(loop.time() + self.management_timeout)
            session = client._session()
            name = f"repid-management-{uuid.uuid4().hex[:12]}"
            sender = session.attach_sender(
                name,
                Target(address=_MANAGEMENT),
                snd_settle_mode=SenderSettleMode.SETTLED,
                properties=dict(_PAIRED),
            )
            await client._await_attach(sender, _MANAGEMENT)
            receiver = session.attach_receiver(
                name,
                Source(address=_MANAGEMENT),
                target=Target(address=None),
                snd_settle_mode=SenderSettleMode.SETTLED,
                rcv_settle_mode=ReceiverSettleMode.FIRST,
                properties=dict(_PAIRED),
            )
            link = _ManagementLink(client, sender, receiver)
            client._on_message[receiver] = link.on_message
            await client._await_attach(receiver, _MANAGEMENT)
            client.flow(receiver, _CREDIT)
            self._management = link
            return link

    async def management_request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one request to RabbitMQ's management node; return (status code, body value)."""
        link = await self._management_link()
        request_id = f"repid-{next(self._request_ids)}-{uuid.uuid4().hex[:8]}"
        request = Message(
            body=AmqpValue(body),
            properties=AmqpMessageProperties(
                message_id=request_id, to=path, subject=method, reply_to="$me"
            ),
        )
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        link.waiting[request_id] = future
        try:
            link.sender.send(encode_message(request), settled=True)
            link.client._flush()
            response = await asyncio.wait_for(future, self.management_timeout)
        finally:
            link.waiting.pop(request_id, None)
        subject = response.properties.subject if response.properties is not None else None
        try:
            status = int(subject or 0)
        except ValueError:
            status = 0
        value = response.body.value if isinstance(response.body, AmqpValue) else None
        return status, value

    async def _put_queue(self, name: str, arguments: dict[str, Any]) -> None:
        status, body = await self.management_request(
            "PUT",
            f"/queues/{quote(name, safe='')}",
            {"durable": True, "exclusive": False, "auto_delete": False, "arguments": arguments},
        )
        if status not in (200, 201):
            raise RabbitDeclareError(
                f"RabbitMQ refused to declare queue {name!r}: status {status}: {body!r}"
            )

    async def declare_queue(self, name: str) -> None:
        if self.queue_arguments is not None:
            await self._put_queue(name, dict(self.queue_arguments))
            return
        dead = self.dead_letter_queue(name)
        await self._put_queue(dead, {"x-queue-type": "quorum"})
        await self._put_queue(
            name,
            {
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": dead,
            },
        )

    async def is_declared(self, name: str) -> bool:
        status, body = await self.management_request("GET", f"/queues/{quote(name, safe='')}")
        if status == 200:
            return True
        if status == 404:
            return False
        raise RabbitDeclareError(f"RabbitMQ could not look up queue {name!r}: {status}: {body!r}")

    # -- publishing ---------------------------------------------------------------------------

    async def publish_job(
        self,
        *,
        queue: str,
        message: MessageData,
        priority: PrioritiesT,
        message_id: str,
        unique: bool = False,
        delay: float | None = None,
    ) -> None:
        params = {
            "header": _HEADERS[PrioritiesT(priority)],
            "properties": AmqpMessageProperties(message_id=message_id),
        }
        try:
            await self.publish(channel=queue, message=message, server_specific_parameters=params)
        except AmqpPublishError as exc:
            outcome = exc.outcome
            if (
                isinstance(outcome, Rejected)
                and outcome.error is not None
                and outcome.error.condition == "amqp:not-found"
            ) or not await self.is_declared(queue):
                raise QueueNotDeclaredError(queue) from None
            raise
