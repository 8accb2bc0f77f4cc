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
* delayed delivery (deferred jobs and retries): inside RabbitMQ, through a chain of fixed-TTL
  quorum queues that the broker declares once per virtual host (`repid.delay.*`; see
  `repid.jobs.brokers.rabbit_delay`): exact to 100 ms (rounded up), no head-of-line blocking,
  up to about 77 days in one pass (longer delays go round again), durable across worker and
  broker restarts. `declare_queue` also binds the queue to the chain's last exchange;
* job state - unique ids, cancellation marks, scheduler ticks (`repid.jobs.state`): RabbitMQ
  has no atomic key-value store, so they live in the connection's bucket broker; give the
  `Connection` a `RedisBucketBroker` (as `args_bucket_broker` or `results_bucket_broker`) to
  use `Job(id_=...)`, cancel a queued or running job, or run a `Scheduler`. Without one these
  raise `JobStateNotConfiguredError`; delays work either way. A queued message cannot be
  taken off a RabbitMQ queue, so a cancelled one is marked and the worker drops it on receipt.

Queues are declared through `AmqpServer.management_request` (RabbitMQ's management node, see
`repid.connections.amqp.management`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

from repid.connections.amqp import AmqpServer
from repid.connections.amqp.protocol.message import (
    AmqpMessageHeader,
    AmqpMessageProperties,
)
from repid.connections.amqp.protocol.performatives import (
    Rejected,
)
from repid.connections.amqp.protocol.types import Symbol
from repid.connections.amqp.server import AmqpPublishError
from repid.data import MessageData
from repid.jobs.brokers import rabbit_delay
from repid.jobs.errors import QueueNotDeclaredError
from repid.jobs.priorities import PrioritiesT

__all__ = ["RabbitDeclareError", "RabbitMessageBroker"]

logger = logging.getLogger("repid.jobs")

_PRIORITY = {PrioritiesT.LOW: 0, PrioritiesT.MEDIUM: 2, PrioritiesT.HIGH: 9}
_HEADERS = {p: AmqpMessageHeader(durable=True, priority=v) for p, v in _PRIORITY.items()}
_MANAGEMENT = "/management"
_PAIRED = {Symbol("paired"): True}
_CREDIT = 100


class RabbitDeclareError(RuntimeError):
    """RabbitMQ refused a queue declaration (e.g. 409: it exists with other arguments)."""


class RabbitMessageBroker(AmqpServer):
    """A job-layer message broker on RabbitMQ 4 (see the module docstring).

    `dsn` is the AMQP URL (`amqp://user:password@host:port/vhost`); other keywords go to
    `AmqpServer`. `queue_arguments` are the arguments of queues it declares (default: a quorum
    queue dead-lettering to `{name}.dead`); `management_timeout` bounds one management request.
    """

    supports_delayed_publish = True
    supports_priorities = True

    def __init__(
        self,
        dsn: str = "amqp://localhost",
        *,
        queue_arguments: dict[str, Any] | None = None,
        management_timeout: float = 15.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(dsn, management_timeout=management_timeout, **kwargs)
        self.queue_arguments = queue_arguments
        self._delays_ready = False
        self._delays_lock: asyncio.Lock | None = None
        self._known_queues: set[str] = set()

    @staticmethod
    def dead_letter_queue(name: str) -> str:
        """The queue that receives `name`'s dead letters (when declared by this broker)."""
        return f"{name}.dead"

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
        else:
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
        try:
            await self._bind_delays(name)
            self._known_queues.add(name)
        except RabbitDeclareError as exc:
            # E.g. a user allowed to configure its queues only: the queue works, delayed jobs
            # (and retry delays) on it do not, and say why when they are published.
            logger.warning(
                "job.delay_chain_failed: %s: delayed jobs on %r will fail",
                exc,
                name,
                extra={"channel": name, "error": type(exc).__name__},
            )

    async def is_declared(self, name: str) -> bool:
        status, body = await self.management_request("GET", f"/queues/{quote(name, safe='')}")
        if status == 200:
            return True
        if status == 404:
            return False
        raise RabbitDeclareError(f"RabbitMQ could not look up queue {name!r}: {status}: {body!r}")

    # -- the delay chain (see repid.jobs.brokers.rabbit_delay) ---------------------------------

    async def _manage(self, method: str, path: str, body: Any, what: str) -> None:
        status, answer = await self.management_request(method, path, body)
        if status not in (200, 201, 204):
            raise RabbitDeclareError(
                f"RabbitMQ refused to declare {what}: {method} {path}: status {status}: {answer!r}"
            )

    async def ensure_delay_chain(self, *, again: bool = False) -> None:
        """Declare the delay chain (once per broker object; `again`: once more, to complete
        one found incomplete). Declaring is idempotent: exchanges and queues first, then the
        bindings, each phase's requests at once."""
        if self._delays_ready and not again:
            return
        if self._delays_lock is None:
            self._delays_lock = asyncio.Lock()
        async with self._delays_lock:
            if self._delays_ready and not again:
                return
            requests = rabbit_delay.topology()
            for phase in (
                [r for r in requests if r[0] == "PUT"],
                [r for r in requests if r[0] != "PUT"],
            ):
                await asyncio.gather(
                    *(
                        self._manage(method, path, body, "the delay chain")
                        for method, path, body in phase
                    )
                )
            self._delays_ready = True

    async def _bind_delays(self, queue: str) -> None:
        try:
            binding = rabbit_delay.queue_binding(queue)
        except ValueError:
            return  # a name the chain cannot route: a delayed publish to it says why
        await self.ensure_delay_chain()
        await self._manage("POST", "/bindings", binding, f"the delay binding of {queue!r}")

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
        params: dict[str, Any] = {
            "header": _HEADERS[PrioritiesT(priority)],
            "properties": AmqpMessageProperties(message_id=message_id),
        }
        if delay is not None and delay > 0:
            params["to"] = rabbit_delay.delay_address(queue, delay)
            await self._publish_delayed(queue, message, params)
            return
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

    async def _publish_delayed(
        self, queue: str, message: MessageData, params: dict[str, Any]
    ) -> None:
        if queue not in self._known_queues:
            # The chain accepts a message for any name; only the queue's binding delivers it.
            if not await self.is_declared(queue):
                raise QueueNotDeclaredError(queue)
            await self._bind_delays(queue)
            self._known_queues.add(queue)
        try:
            await self.publish(channel=queue, message=message, server_specific_parameters=params)
        except AmqpPublishError:
            # The chain is missing or incomplete (its entry not found, or nothing routed the
            # message): declare it again, then once more.
            await self.ensure_delay_chain(again=True)
            await self._bind_delays(queue)
            await self.publish(channel=queue, message=message, server_specific_parameters=params)
