"""`AmqpServer`: Repid over AMQP 1.0 (RabbitMQ 4 natively, 3.13 with the amqp1_0 plugin).

Publishing goes through one sender link to the anonymous terminus: each message carries its
target address in `properties.to` (RabbitMQ address format v2), so any number of channels share
one link. A channel maps to `/queues/{channel}` unless `address_strategy` says otherwise; with a
`routing_key` it names an exchange (`/exchanges/{channel}/{routing_key}`), and `to` overrides both.
`publish` returns once the broker accepted the message (publisher confirm); it raises
`AmqpPublishError` when the broker rejects or cannot route it.

Consuming attaches one receiver link per channel to `/queues/{channel}`, unsettled
(at-least-once), with link credit following the worker's free slots. Redelivery: a message that
was delivered but not settled when its connection or link went away is put back in its queue by
the broker at once (a killed worker's messages come back as soon as RabbitMQ notices the closed
socket: within a second, measured). After a connection loss the server reconnects with
exponential backoff and jitter (at most `RECONNECT_BACKOFF_CAP`, 3 s, between attempts, each
attempt's handshake bounded by `HANDSHAKE_TIMEOUT`, 5 s) and re-attaches every subscription, so
a consumer is back within a few seconds of its broker returning.

Half-open connections (a network partition, a peer gone without a FIN): the client asks the
broker for a frame at least every `idle_timeout` seconds (AMQP idle-time-out, default 10 s:
RabbitMQ then sends an empty frame every 5 s) and treats `idle_timeout` seconds of silence as a
lost connection, so it reconnects within 10 s of a partition starting and within about 10 s of
the network returning (measured: 5-9 s after a 30 s partition). An event loop blocked for longer
than `idle_timeout` loses its connection the same way. RabbitMQ keeps the messages it sent on
the dead connection until it notices that connection is gone itself (its next write to it
fails), and then puts them back in the queue.

A delivery held unsettled for `max_lease` seconds (default one hour) is released back to its
queue, and logged. While the connection (or a link) is lost the subscription is RECOVERING, and
ACTIVE again once every link is attached; a publish waits for the reconnect for up to
`publish_timeout` seconds, then raises `ConnectionError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from repid._compat import UNSET, renamed
from repid.connections.abc import (
    ChannelStats,
    DeadLetter,
    DeliveryCapacity,
    MessageCallbackT,
    MessageData,
    ServerCapabilities,
)
from repid.connections.amqp import admin
from repid.connections.amqp.addressing import (
    AddressStrategyT,
    ExchangeAddressStrategyT,
    build_message,
    default_address_strategy,
    default_exchange_address_strategy,
    encode_plain_message,
    new_message_id,
)
from repid.connections.amqp.management import AmqpManagement
from repid.connections.amqp.protocol.connection import SenderLink
from repid.connections.amqp.protocol.message import encode_message
from repid.connections.amqp.protocol.performatives import (
    Accepted,
    DeliveryState,
    Rejected,
    Released,
)
from repid.connections.amqp.subscriber import AmqpSubscriber
from repid.connections.amqp.transport import (
    HANDSHAKE_TIMEOUT,
    RECONNECT_BACKOFF_CAP,
    AmqpClient,
    AmqpConnectionLost,
    AmqpLinkError,
    parse_amqp_url,
)
from repid.connections.backoff import backoff_delays
from repid.connections.base import DEFAULT_MAX_LEASE, BaseServer, redact_url
from repid.errors import (
    BatchPublishError,
    BrokerAuthenticationError,
    BrokerConnectionError,
    ChannelNotFoundError,
    ConfigurationError,
    RepidError,
    ServerNotConnectedError,
)

__all__ = ["AmqpPublishError", "AmqpQueueNotFoundError", "AmqpServer"]

logger = logging.getLogger("repid.connections.amqp")


class AmqpPublishError(RepidError, RuntimeError):
    """The broker did not take a published message (rejected, released or unroutable)."""

    def __init__(self, channel: str, address: str | None, outcome: DeliveryState | None) -> None:
        self.channel = channel
        self.address = address
        self.outcome = outcome
        detail = type(outcome).__name__.lower() if outcome is not None else "no outcome"
        if isinstance(outcome, Rejected) and outcome.error is not None:
            detail += f" ({outcome.error.condition}: {outcome.error.description or ''})"
        elif isinstance(outcome, Released):
            # RabbitMQ's answer when the target routes to no queue.
            detail += (
                ": no such queue (declare it first: the topology is yours)"
                if (address or "").startswith("/queues/")
                else ": routed to no queue (is a queue bound for it?)"
            )
        super().__init__(f"publish to channel {channel!r} ({address}) failed: {detail}")


class AmqpQueueNotFoundError(AmqpPublishError, ChannelNotFoundError):
    """The queue a channel names does not exist (publishing to it or consuming from it)."""


def _publish_error(
    channel: str, address: str | None, outcome: DeliveryState | None
) -> AmqpPublishError:
    missing = (isinstance(outcome, Released) and (address or "").startswith("/queues/")) or (
        isinstance(outcome, Rejected)
        and outcome.error is not None
        and outcome.error.condition == "amqp:not-found"
    )
    return (AmqpQueueNotFoundError if missing else AmqpPublishError)(channel, address, outcome)


class AmqpServer(BaseServer):
    """A RabbitMQ 4 (AMQP 1.0) server. See the module docstring for the mapping.

    `url` is `amqp[s]://user:password@host:port/vhost`; the vhost is selected with the open
    frame's hostname `vhost:NAME`. For a RabbitMQ cluster give a list of URLs, one per node:
    the server connects to the first that answers and, when that node goes away, reconnects to
    the next one (round robin, at once) and re-attaches every link there; with quorum queues,
    which confirm a message once a majority of their replicas has it, nothing a publish returned
    for is lost (see docs/brokers/clusters.md). AsyncAPI shows the first URL's host.

    Server-specific parameters for `publish`: `header` (`AmqpMessageHeader`), `properties`
    (`AmqpMessageProperties`), `delivery_annotations`, `message_annotations`, `footers` (dicts),
    `to` (an explicit address) and `routing_key`.

    Addresses: `address_strategy(channel)` is where a message to a channel goes (default
    `/queues/{channel}`), `exchange_address_strategy(channel, routing_key)` where it goes with
    a `routing_key` (default `/exchanges/{channel}/{routing_key}`), and
    `subscribe_naming_strategy(channel)` the source a worker reads (default
    `/queues/{channel}`). `session_window` bounds the transfers in flight per session
    direction (default: 2048 incoming, unlimited outgoing).

    Recovery settings (seconds): `idle_timeout` - silence after which the connection counts
    as dead and is replaced (default 10; the broker is asked for a frame at least that often;
    None turns heartbeats off, and a half-open connection then goes unnoticed);
    `connect_timeout` - how long `connect()` keeps trying a broker that refuses connections.
    Reconnects after a loss never give up. A SIGKILLed worker's messages come back as soon as
    RabbitMQ sees its socket closed (under a second); a worker is back within a few seconds of
    its broker returning and within about 10 s of a network partition healing.

    `max_lease`: seconds a delivered message may stay unsettled before it is released back to
    its queue (default one hour; None: forever). `annotate_dead_letters`: a nack with a reason
    (a payload that did not parse...) settles the message `modified` with the reason as the
    annotation `x-opt-repid-dead-letter-reason`, which RabbitMQ 4 quorum queues keep on the
    dead letter; False settles every nack `rejected`.

    repid 2.x keyword names are accepted with their 2.x meaning: `dsn` (= `url`) and
    `publish_naming_strategy(channel, routing_key_or_None)`, which replaces both publish
    strategies (called with None when no `routing_key` is given).
    """

    protocol = "amqp"
    protocol_version = "1.0"
    capabilities = ServerCapabilities(
        atomic_reply=False, dead_letter=True, priorities=True, persistent=True, distributed=True
    )

    def __init__(
        self,
        url: str | Sequence[str] = UNSET,
        *,
        address_strategy: AddressStrategyT = UNSET,
        exchange_address_strategy: ExchangeAddressStrategyT = UNSET,
        subscribe_naming_strategy: AddressStrategyT = default_address_strategy,
        session_window: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout: float | None = 10.0,
        connect_timeout: float = 15.0,
        publish_timeout: float = 60.0,
        max_message_size: int = 128 * 1024 * 1024,
        management_timeout: float = 15.0,
        max_lease: float | None = DEFAULT_MAX_LEASE,
        annotate_dead_letters: bool = True,
        title: str | None = None,
        summary: str | None = None,
        description: str | None = None,
        variables: Mapping[str, Any] | None = None,
        security: list[Any] | None = None,
        tags: list[Any] | None = None,
        external_docs: Any | None = None,
        bindings: Mapping[str, Any] | None = None,
        # repid 2.x names (see the class docstring)
        dsn: str = UNSET,
        publish_naming_strategy: Callable[[str, str | None], str] | None = UNSET,
    ) -> None:
        url = renamed("AmqpServer", "url", url, "dsn", dsn)
        url = "amqp://localhost" if url is UNSET else url
        if publish_naming_strategy:
            if address_strategy is not UNSET or exchange_address_strategy is not UNSET:
                raise ConfigurationError(
                    "AmqpServer got publish_naming_strategy= (repid 2.x) and address_strategy= "
                    "or exchange_address_strategy=; pass only one of them"
                )
            address_strategy, exchange_address_strategy = _split_naming(publish_naming_strategy)
        if address_strategy is UNSET:
            address_strategy = default_address_strategy
        if exchange_address_strategy is UNSET:
            exchange_address_strategy = default_exchange_address_strategy
        if session_window is not None and session_window < 1:
            raise ValueError("session_window must be at least 1")
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("AmqpServer needs at least one URL")
        self._nodes = [(parse_amqp_url(one), redact_url(one)) for one in urls]
        self._node = 0
        """The index in `_nodes` of the node connected to (or tried) last."""
        self._address, self._safe_url = self._nodes[0]
        address = self._address
        host = address.host if ":" not in address.host else f"[{address.host}]"
        super().__init__(
            host=f"{host}:{address.port}",
            pathname=address.vhost if address.vhost.startswith("/") else f"/{address.vhost}",
            title=title,
            summary=summary,
            description=description,
            variables=variables,
            security=security,
            tags=tags,
            external_docs=external_docs,
            bindings=bindings,
        )
        if address.tls:
            self.protocol = "amqps"
        self.address_strategy = address_strategy
        self.exchange_address_strategy = exchange_address_strategy
        self.subscribe_naming_strategy = subscribe_naming_strategy
        self.session_window = session_window
        self._ssl_context = ssl_context
        self._idle_timeout = idle_timeout
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._max_message_size = max_message_size
        self.max_lease = max_lease
        self.annotate_dead_letters = annotate_dead_letters
        self._client: AmqpClient | None = None
        self._sender: SenderLink | None = None
        self._sender_lock: asyncio.Lock | None = None
        self._wanted = False
        self._reconnecting: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._addresses: dict[str, str] = {}
        self.management = AmqpManagement(self._live_client, management_timeout)

    # ------------------------------------------------------------------ connection

    @property
    def is_connected(self) -> bool:
        return self._client is not None and self._client.is_alive

    async def connect(self) -> None:
        """Connect, retrying refused connections with backoff for up to `connect_timeout`.

        Authentication and certificate failures are not retried.
        """
        if self.is_connected:
            return
        self._wanted = True
        self._ready = asyncio.Event()
        self._sender_lock = asyncio.Lock()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout
        delays = backoff_delays()
        while True:
            try:
                await self._open()
                return
            except (OSError, asyncio.TimeoutError, AmqpConnectionLost) as exc:
                permanent = _is_auth_error(exc) or isinstance(exc, ssl.SSLCertVerificationError)
                if permanent or loop.time() + 0.1 >= deadline:
                    self._wanted = False
                    if _is_auth_error(exc):
                        raise BrokerAuthenticationError(
                            f"cannot connect to {self._safe_url}: wrong or missing credentials "
                            f"(user and password go in the URL): {_describe(exc)}"
                        ) from None
                    raise BrokerConnectionError(
                        f"cannot connect to {self._all_urls()}: {_describe(exc)}"
                    ) from None
                logger.warning(
                    "amqp.connect_failed: %s: %s; retrying",
                    self._all_urls(),
                    _describe(exc),
                    extra={"server": self._all_urls()},
                )
                await asyncio.sleep(min(next(delays), max(deadline - loop.time(), 0.0)))

    def _all_urls(self) -> str:
        return ", ".join(safe for _, safe in self._nodes)

    async def _open(self, start: int = 0) -> None:
        """Connect to the first node that answers, trying them in order from `start`.

        A refused or unreachable node is skipped; refused credentials stop at once (the nodes
        of one cluster share their users). Raises the last node's error when none answered.
        """
        count = len(self._nodes)
        for step in range(count):
            index = (start + step) % count
            address, safe_url = self._nodes[index]
            try:
                client = await AmqpClient.connect(
                    address,
                    ssl_context=self._ssl_context,
                    idle_timeout=self._idle_timeout,
                    max_message_size=self._max_message_size,
                    timeout=min(self._connect_timeout, HANDSHAKE_TIMEOUT),
                    on_lost=self._on_lost,
                    session_window=self.session_window,
                )
            except (OSError, asyncio.TimeoutError, AmqpConnectionLost) as exc:
                if step == count - 1 or _is_auth_error(exc):
                    raise
                logger.warning(
                    "amqp.node_unavailable: %s: %s; trying the next node",
                    safe_url,
                    _describe(exc),
                    extra={"server": safe_url, "error": type(exc).__name__},
                )
                continue
            self._node = index
            self._address, self._safe_url = address, safe_url
            break
        self._client = client
        self._sender = None
        assert self._ready is not None
        self._ready.set()
        logger.info("amqp.connected: %s", self._safe_url, extra={"server": self._safe_url})

    def _on_lost(self, lost: AmqpConnectionLost) -> None:
        was_up = self._ready is not None and self._ready.is_set()
        if self._ready is not None:
            self._ready.clear()
        if not self._wanted or not was_up:
            return  # a connection that never opened: connect() or _reconnect() handles it
        logger.error(
            "amqp.connection_lost: %s: %s; reconnecting",
            self._safe_url,
            lost,
            extra={"server": self._safe_url, "error": type(lost).__name__},
        )
        for subscriber in self._amqp_subscribers():
            subscriber.connection_lost(str(lost))
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.get_running_loop().create_task(
                self._reconnect(), name="repid-amqp-reconnect"
            )

    async def _reconnect(self) -> None:
        lost = self._node
        for attempt, delay in enumerate(backoff_delays(cap=RECONNECT_BACKOFF_CAP)):
            if attempt or len(self._nodes) == 1:
                await asyncio.sleep(delay)  # with other nodes to go to, the first try is at once
            if not self._wanted:
                return
            try:
                # The node that went away is tried last.
                await self._open(start=lost + 1)
                client = self._client
                assert client is not None
                for subscriber in self._amqp_subscribers():
                    await subscriber.attach_all(client)
            except (OSError, asyncio.TimeoutError, AmqpConnectionLost) as exc:
                # A connection that died again is already closed: just try anew.
                logger.warning(
                    "amqp.reconnect_failed: %s: %s; retrying",
                    self._all_urls(),
                    _describe(exc),
                    extra={"server": self._all_urls()},
                )
                continue
            logger.info("amqp.reconnected: %s", self._safe_url, extra={"server": self._safe_url})
            return

    def _amqp_subscribers(self) -> list[AmqpSubscriber]:
        return [s for s in self.subscriptions if isinstance(s, AmqpSubscriber)]

    async def disconnect(self) -> None:
        self._wanted = False
        self.management.reset()
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
            self._reconnecting = None
        await self._stop_subscriptions()
        client, self._client = self._client, None
        self._sender = None
        if client is not None:
            await client.close()

    async def live_client(self, timeout: float | None = None) -> AmqpClient:
        """The open `AmqpClient`, waiting up to `timeout` seconds (default `connect_timeout`)
        for a reconnect in progress. Raises `ServerNotConnectedError` before `connect()`.
        """
        loop = asyncio.get_running_loop()
        wait = self._connect_timeout if timeout is None else timeout
        return await self._live_client(loop.time() + wait)

    async def _live_client(self, deadline: float) -> AmqpClient:
        """The current client, waiting (until `deadline`) for a reconnect in progress."""
        if not self._wanted or self._ready is None:
            raise ServerNotConnectedError(
                "AmqpServer is not connected: use `async with server.connection():` "
                "(or `await server.connect()`) first"
            )
        loop = asyncio.get_running_loop()
        while True:
            client = self._client
            if client is not None and client.is_alive:
                return client
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ConnectionError(f"AMQP connection to {self._all_urls()} is down")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ready.wait(), remaining)

    # ------------------------------------------------------------------ publishing

    async def publish(
        self,
        *,
        channel: str,
        message: MessageData,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None:
        encoded: bytes | None = None
        address: str | None = None
        if not server_specific_parameters:
            address = to = self._address_for(channel)
            encoded = encode_plain_message(
                new_message_id(),
                to,
                message.payload,
                message.headers,
                message.content_type,
                message.reply_to,
            )
        if encoded is None:
            amqp_message = build_message(
                channel,
                message,
                server_specific_parameters,
                self.address_strategy,
                self.exchange_address_strategy,
            )
            encoded = encode_message(amqp_message)
            address = amqp_message.properties.to if amqp_message.properties else None
        # Fast path: connected, with a live sender link. Anything else (not connected, a
        # reconnect in progress, the link or connection failing under this message) goes the
        # retrying way below, which sends the message again on the next connection.
        client = self._client
        sender = self._sender
        if (
            client is not None
            and sender is not None
            and self._wanted
            and client.is_alive
            and sender.session is client.session
            and not sender.detached
        ):
            try:
                outcome = await client.send(sender, encoded)
            except (AmqpConnectionLost, AmqpLinkError) as exc:
                if isinstance(exc, AmqpLinkError) and client.is_alive:
                    self._sender = None
            else:
                if not isinstance(outcome, Accepted):
                    raise _publish_error(channel, address, outcome)
                return
        await self._publish_retrying(channel, address, encoded)

    def _address_for(self, channel: str) -> str:
        """The target address of `channel`; the default strategy's answers are cached."""
        strategy = self.address_strategy
        if strategy is not default_address_strategy:
            return strategy(channel)
        cache = self._addresses
        address = cache.get(channel)
        if address is None:
            if len(cache) >= 4096:  # bounded: channel names may be generated
                cache.clear()
            address = cache[channel] = strategy(channel)
        return address

    async def _publish_retrying(self, channel: str, address: str | None, encoded: bytes) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._publish_timeout
        while True:
            client = await self._live_client(deadline)
            try:
                sender = await self._sender_for(client)
                outcome = await client.send(sender, encoded)
            except (AmqpConnectionLost, AmqpLinkError) as exc:
                # Not confirmed: send again on the next connection (at-least-once).
                if loop.time() >= deadline:
                    raise ConnectionError(
                        f"publish to {channel!r} not confirmed by {self._safe_url}: {exc}"
                    ) from None
                if isinstance(exc, AmqpLinkError) and client.is_alive:
                    self._sender = None
                await asyncio.sleep(0.05)
                continue
            if not isinstance(outcome, Accepted):
                raise _publish_error(channel, address, outcome)
            return

    async def publish_batch(
        self,
        *,
        channel: str,
        messages: Sequence[MessageData],
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> list[str]:
        """Publish many messages to `channel` pipelined; return their message ids, in order.

        All transfers are sent before any outcome is awaited, so the batch costs about one
        round trip. The same `server_specific_parameters` apply to every message (each still
        gets its own message id unless `properties` names one). Messages not confirmed because
        the connection dropped are sent again after the reconnect (at-least-once); a message
        the broker refuses raises `AmqpPublishError` once the whole batch has been answered
        (`BatchPublishError`, naming each refused message, when the broker accepted others).
        """
        ids: list[str] = []
        addresses: list[str | None] = []
        encoded: list[bytes] = []
        plain = not server_specific_parameters
        to = self._address_for(channel) if plain else ""
        for message in messages:
            message_id = new_message_id() if plain else ""
            data = (
                encode_plain_message(
                    message_id,
                    to,
                    message.payload,
                    message.headers,
                    message.content_type,
                    message.reply_to,
                )
                if plain
                else None
            )
            if data is None:
                built = build_message(
                    channel,
                    message,
                    server_specific_parameters,
                    self.address_strategy,
                    self.exchange_address_strategy,
                )
                data = encode_message(built)
                properties = built.properties
                ids.append(str(properties.message_id) if properties else "")
                addresses.append(properties.to if properties else None)
            else:
                ids.append(message_id)
                addresses.append(to)
            encoded.append(data)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._publish_timeout
        pending = list(range(len(encoded)))
        refused: list[tuple[int, DeliveryState | None]] = []
        while pending:
            client = await self._live_client(deadline)
            try:
                sender = await self._sender_for(client)
                futures = await client.send_many(sender, [encoded[i] for i in pending])
            except (AmqpConnectionLost, AmqpLinkError):
                if client.is_alive:
                    self._sender = None  # the link failed, not the connection: attach anew
                futures = []
            results = await asyncio.gather(*futures, return_exceptions=True)
            retry = []
            for index, result in zip(pending, results, strict=True):
                if isinstance(result, (AmqpConnectionLost, AmqpLinkError)):
                    retry.append(index)
                elif isinstance(result, BaseException):
                    raise result
                elif not isinstance(result, Accepted):
                    refused.append((index, result))
            if not futures:
                retry = pending
            if retry and loop.time() >= deadline:
                raise ConnectionError(
                    f"publish_batch to {channel!r}: {len(retry)} messages not confirmed by "
                    f"{self._safe_url}"
                )
            if retry:
                await asyncio.sleep(0.05)
            pending = retry
        if refused:
            if len(refused) == len(encoded):
                index, outcome = refused[0]
                raise _publish_error(channel, addresses[index], outcome)
            errors: dict[int, Exception] = {
                index: _publish_error(channel, addresses[index], outcome)
                for index, outcome in refused
            }
            raise BatchPublishError(
                [None if index in errors else ids[index] for index in range(len(ids))], errors
            )
        return ids

    async def _sender_for(self, client: AmqpClient) -> SenderLink:
        sender = self._sender
        if sender is not None and sender.session is client.session and not sender.detached:
            return sender
        assert self._sender_lock is not None
        async with self._sender_lock:
            sender = self._sender
            if sender is None or sender.session is not client.session or sender.detached:
                sender = await client.attach_sender(f"repid-publisher-{id(client):x}", None)
                self._sender = sender
            return sender

    # ------------------------------------------------------------------ consuming

    async def _open_subscription(
        self, callbacks: dict[str, MessageCallbackT], capacity: DeliveryCapacity
    ) -> AmqpSubscriber:
        client = await self.live_client()
        subscriber = AmqpSubscriber(self, callbacks, capacity, self.max_lease)
        try:
            await subscriber.start(client)
        except AmqpLinkError as exc:
            if exc.error is not None and exc.error.condition == "amqp:not-found":
                raise ChannelNotFoundError(
                    f"cannot consume from {exc.address!r} on {self._safe_url}: "
                    f"{exc.error.description or 'no such queue'} (declare it first: the "
                    "topology is yours)"
                ) from exc
            raise
        return subscriber

    def __repr__(self) -> str:
        if len(self._nodes) == 1:
            return f"AmqpServer({self._safe_url!r})"
        return f"AmqpServer({self.urls!r})"

    @property
    def urls(self) -> list[str]:
        """Every node's URL, password hidden, in the order given."""
        return [safe for _, safe in self._nodes]

    @property
    def connected_url(self) -> str | None:
        """The URL (password hidden) of the node connected to now, or None."""
        return self._safe_url if self.is_connected else None

    # ------------------------------------------------------------------ administration
    # DeadLetterStoreT and ChannelStatsT through RabbitMQ 4's management node and plain links;
    # see `repid.connections.amqp.admin`.

    @property
    def management_timeout(self) -> float:
        """Seconds one management request (and an admin receive) may take."""
        return self.management.timeout

    async def management_request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request to RabbitMQ's management node (`GET /queues/q`, ...): (status, body)."""
        return await self.management.request(method, path, body)

    async def read_dead_letters(
        self, channel: str, *, limit: int = 100, dead_letter_queue: str | None = None
    ) -> list[DeadLetter]:
        """Up to `limit` messages of the channel's dead-letter queue, left in place."""
        return await admin.read_dead_letters(self, channel, limit, dead_letter_queue)

    async def replay_dead_letters(
        self, channel: str, *, limit: int | None = None, dead_letter_queue: str | None = None
    ) -> int:
        """Move dead letters back to `channel` (publish, then remove); return how many."""
        return await admin.replay_dead_letters(self, channel, limit, dead_letter_queue)

    async def purge_dead_letters(
        self, channel: str, *, dead_letter_queue: str | None = None
    ) -> int:
        """Delete every message of the channel's dead-letter queue; return how many."""
        return await admin.purge_dead_letters(self, channel, dead_letter_queue)

    async def channel_stats(self, channel: str) -> ChannelStats:
        """Message and consumer counts of the channel's queue (and of its dead-letter queue)."""
        return await admin.channel_stats(self, channel)


def _is_auth_error(exc: BaseException) -> bool:
    error = getattr(exc, "error", None)
    return error is not None and error.condition == "amqp:unauthorized-access"


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _split_naming(
    strategy: Callable[[str, str | None], str],
) -> tuple[AddressStrategyT, ExchangeAddressStrategyT]:
    """repid 2.x's one publish strategy as our two (without and with a routing key)."""

    def address(channel: str) -> str:
        return strategy(channel, None)

    def exchange_address(channel: str, routing_key: str) -> str:
        return strategy(channel, routing_key)

    return address, exchange_address
