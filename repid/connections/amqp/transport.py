"""A thin asyncio transport for the sans-IO AMQP connection.

`AmqpClient` owns one TCP (or TLS) connection: an asyncio `Protocol` hands the socket's bytes
straight to the `Connection` (no stream buffer, no reader task) and the client turns its events
into resolved futures and callbacks; a ticker task drives heartbeats and idle detection with
the loop clock; every action flushes the queued bytes (settlements once per loop iteration, so
they coalesce into disposition ranges). Reconnecting is the caller's job, with
`repid.connections.backoff` for the waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from repid.connections.amqp.protocol.connection import (
    Connection,
    IncomingDelivery,
    Link,
    OutgoingDelivery,
    ReceiverLink,
    SenderLink,
    Session,
)
from repid.connections.amqp.protocol.events import (
    ConnectionClosed,
    ConnectionOpened,
    DeliveryUpdated,
    Event,
    LinkAttached,
    LinkDetached,
    MessageReceived,
    SessionBegun,
    SessionEnded,
)
from repid.connections.amqp.protocol.performatives import (
    DeliveryState,
    Error,
    SenderSettleMode,
    Source,
    Target,
)
from repid.connections.amqp.protocol.sasl import (
    SaslAnonymous,
    SaslExternal,
    SaslMechanism,
    SaslPlain,
)
from repid.connections.backoff import backoff_delays
from repid.connections.timeouts import timeout as deadline
from repid.errors import RepidError

__all__ = [
    "ATTACH_TIMEOUT",
    "HANDSHAKE_TIMEOUT",
    "RECONNECT_BACKOFF_CAP",
    "AmqpAddress",
    "AmqpClient",
    "AmqpConnectionLost",
    "AmqpLinkError",
    "backoff_delays",
    "parse_amqp_url",
]

logger = logging.getLogger("repid.connections.amqp")


class AmqpConnectionLost(ConnectionError):
    """The connection is gone (socket closed, broker close, idle timeout, protocol error)."""

    def __init__(self, error: Error | None, reason: str = "") -> None:
        self.error = error
        detail = reason or (
            f"{error.condition}: {error.description}" if error and error.description else ""
        )
        if not detail and error is not None:
            detail = error.condition
        super().__init__(f"AMQP connection lost: {detail or 'closed'}")


class AmqpLinkError(RepidError, RuntimeError):
    """The broker refused or detached a link (e.g. amqp:not-found for a missing queue)."""

    def __init__(self, address: Any, error: Error | None) -> None:
        self.address = address
        self.error = error
        condition = error.condition if error else "detached"
        description = f" ({error.description})" if error and error.description else ""
        super().__init__(f"link to {address!r} failed: {condition}{description}")


@dataclass(frozen=True, slots=True)
class AmqpAddress:
    """Where and how to connect, parsed from an `amqp://` / `amqps://` URL."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None = None
    vhost: str = "/"
    sasl_external: bool = False

    def __repr__(self) -> str:  # never show the password
        return (
            f"AmqpAddress(host={self.host!r}, port={self.port}, tls={self.tls}, "
            f"username={self.username!r}, vhost={self.vhost!r})"
        )

    @property
    def open_hostname(self) -> str:
        """The open frame's hostname: RabbitMQ 4 selects the virtual host by `vhost:NAME`."""
        return f"vhost:{self.vhost}"

    def sasl(self) -> SaslMechanism:
        """PLAIN with credentials, EXTERNAL when asked (`?auth=external`), else ANONYMOUS."""
        if self.sasl_external:
            return SaslExternal()
        if self.username is not None:
            return SaslPlain(self.username, self.password or "")
        return SaslAnonymous()


def parse_amqp_url(url: str) -> AmqpAddress:
    """Parse `amqp[s]://[user[:password]@]host[:port][/vhost][?auth=external]`.

    An empty path or `/` is the default vhost `/`; otherwise the path (percent-decoded,
    without its leading slash) names the vhost, so `%2F` also means `/`.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "amqps"):
        raise ValueError(f"not an amqp:// or amqps:// URL (scheme {parts.scheme!r})")
    tls = parts.scheme == "amqps"
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    vhost = unquote(path) if path else "/"
    query: dict[str, str] = {}
    for item in parts.query.split("&"):
        key, _, value = item.partition("=")
        query[key] = value
    return AmqpAddress(
        host=parts.hostname or "localhost",
        port=parts.port or (5671 if tls else 5672),
        tls=tls,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        vhost=vhost,
        sasl_external=query.get("auth", "").lower() == "external",
    )


HANDSHAKE_TIMEOUT = 5.0
"""Seconds one connection attempt may take (TCP, SASL, open, sessions) before it is given up:
an attempt into a dead network path must not hold the next one back for long."""

ATTACH_TIMEOUT = 10.0
"""Seconds the broker may take to answer an attach before the connection is dropped and reopened
(a healthy broker answers within milliseconds, even when it refuses the link)."""

RECONNECT_BACKOFF_CAP = 3.0
"""The longest wait between reconnect (and re-attach) attempts, so that a broker back after an
outage of any length is found again within seconds."""


MessageCallback = Callable[[ReceiverLink, IncomingDelivery], None]
DetachCallback = Callable[[Link, Error | None], None]


class _StreamProtocol(asyncio.Protocol):
    """Hands socket bytes straight to the client (no stream buffer, no reader task)."""

    def __init__(self) -> None:
        self.client: AmqpClient | None = None
        self._early: list[bytes] = []
        self._lost = False
        self._paused = False
        self._drain: asyncio.Future[None] | None = None

    def bind(self, client: AmqpClient) -> None:
        self.client = client
        for data in self._early:
            client._on_data(data)
        self._early.clear()
        if self._lost:
            client._on_data(b"")

    def data_received(self, data: bytes) -> None:
        if self.client is None:
            self._early.append(data)
        else:
            self.client._on_data(data)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            logger.debug("amqp.socket_lost", extra={"error": repr(exc)})
        self._lost = True
        self._wake()
        if self.client is not None:
            self.client._on_data(b"")

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    def _wake(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    async def drain(self) -> None:
        """Wait while the socket's write buffer is over its high-water mark."""
        if self._paused and not self._lost:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain


class AmqpClient:
    """One open AMQP connection with one session. Create it with `AmqpClient.connect`."""

    def __init__(
        self,
        transport: asyncio.Transport,
        protocol: _StreamProtocol,
        connection: Connection,
        *,
        on_lost: Callable[[AmqpConnectionLost], None] | None = None,
        session_window: int | None = None,
    ) -> None:
        self._transport = transport
        self._session_window = session_window
        self._protocol = protocol
        self.connection = connection
        self.session: Session | None = None  # publishing
        self.consumer_session: Session | None = None  # receiving links
        self._loop = asyncio.get_running_loop()
        self._opened: asyncio.Future[None] = self._loop.create_future()
        self._begun: asyncio.Future[None] = self._loop.create_future()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._attaching: dict[Link, asyncio.Future[None]] = {}
        self._detaching: dict[Link, asyncio.Future[None]] = {}
        self._outcomes: dict[OutgoingDelivery, asyncio.Future[DeliveryState | None]] = {}
        self._on_message: dict[Link, MessageCallback] = {}
        self._on_detach: dict[Link, DetachCallback] = {}
        self._on_lost = on_lost
        self._lost: AmqpConnectionLost | None = None
        self._flush_scheduled = False
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ connecting

    @classmethod
    async def connect(
        cls,
        address: AmqpAddress,
        *,
        ssl_context: ssl.SSLContext | None = None,
        container_id: str | None = None,
        idle_timeout: float | None = 60.0,
        max_frame_size: int = 256 * 1024,
        max_message_size: int = 128 * 1024 * 1024,
        timeout: float = 15.0,
        on_lost: Callable[[AmqpConnectionLost], None] | None = None,
        session_window: int | None = None,
    ) -> AmqpClient:
        """Open the socket, authenticate, open the connection and begin one session.

        `session_window` sets both session windows (transfers in flight per direction);
        None keeps the defaults (2048 incoming, unlimited outgoing).
        """
        context: ssl.SSLContext | None = None
        if address.tls:
            context = ssl_context or ssl.create_default_context()
        connection = Connection(
            container_id=container_id or f"repid-{uuid.uuid4()}",
            hostname=address.open_hostname,
            sasl=address.sasl(),
            max_frame_size=max_frame_size,
            idle_timeout=idle_timeout,
            max_message_size=max_message_size,
            properties={"product": "repid"},
        )
        async with deadline(timeout):
            transport, protocol = await asyncio.get_running_loop().create_connection(
                _StreamProtocol,
                address.host,
                address.port,
                ssl=context,
                server_hostname=address.host if context else None,
            )
            _no_delay(transport)
            client = cls(
                transport, protocol, connection, on_lost=on_lost, session_window=session_window
            )
            try:
                await client._handshake()
            except BaseException:
                client._abort()
                raise
        return client

    def _begin(self) -> Session:
        window = self._session_window
        if window is None:
            return self.connection.begin()
        return self.connection.begin(incoming_window=window, outgoing_window=window)

    async def _handshake(self) -> None:
        self.connection.start()
        self._flush()
        self._protocol.bind(self)
        self._tasks.append(self._loop.create_task(self._tick_loop()))
        await self._opened
        self.session = self._begin()
        # Receivers get a session of their own: RabbitMQ ends the whole session when an attach
        # names a missing queue, and that must not take the publisher down with it.
        self.consumer_session = self._begin()
        self._flush()
        while not (self.session.begun and self.consumer_session.begun):
            await self._begun
            self._begun = self._loop.create_future()

    # ------------------------------------------------------------------ public API

    @property
    def is_alive(self) -> bool:
        """True until the connection is lost or closed."""
        return self._lost is None and not self._closed.done()

    async def attach_sender(self, name: str, address: str | None) -> SenderLink:
        """Attach a sending link to `address` (None: the anonymous terminus, use `to`)."""
        session = self._session()
        link = session.attach_sender(
            name, Target(address=address), snd_settle_mode=SenderSettleMode.UNSETTLED
        )
        await self._await_attach(link, address)
        return link

    async def attach_receiver(
        self,
        name: str,
        address: str,
        on_message: MessageCallback,
        *,
        on_detach: DetachCallback | None = None,
    ) -> ReceiverLink:
        """Attach a receiving link (settle mode unsettled: at-least-once); credit starts at 0."""
        self._check()
        session = self.consumer_session
        assert session is not None
        link = session.attach_receiver(
            name,
            Source(address=address, durable=0),
            snd_settle_mode=SenderSettleMode.UNSETTLED,
        )
        self._on_message[link] = on_message
        if on_detach is not None:
            self._on_detach[link] = on_detach
        await self._await_attach(link, address)
        return link

    async def send(self, link: SenderLink, payload: bytes) -> DeliveryState | None:
        """Transfer one encoded message unsettled and wait for the broker's outcome."""
        # send_many for one message, inlined: this is the per-message path of `publish`.
        self._check()
        future: asyncio.Future[DeliveryState | None] = self._loop.create_future()
        self._outcomes[link.send(payload)] = future
        # Written on the next loop iteration: the transfers of concurrent publishes share one
        # socket write (one per message was the largest cost of 100 concurrent senders).
        self._schedule_flush()
        protocol = self._protocol
        if protocol._paused:
            await protocol.drain()
        return await future

    async def send_many(
        self, link: SenderLink, payloads: Sequence[bytes]
    ) -> list[asyncio.Future[DeliveryState | None]]:
        """Queue many encoded messages at once (pipelined); return one outcome future each.

        The transfers go out as link credit and the session window allow; each future resolves
        with the broker's outcome, or fails with `AmqpConnectionLost` / `AmqpLinkError`.
        """
        self._check()
        futures: list[asyncio.Future[DeliveryState | None]] = []
        create_future = self._loop.create_future
        outcomes = self._outcomes
        for payload in payloads:
            future: asyncio.Future[DeliveryState | None] = create_future()
            outcomes[link.send(payload)] = future
            futures.append(future)
        self._flush()
        # A broken socket is seen by the protocol too, which fails the futures with the reason.
        await self._protocol.drain()
        return futures

    def flow(self, link: ReceiverLink, credit: int, *, drain: bool = False) -> None:
        """Set a receiver link's credit."""
        if self.is_alive:
            link.flow(credit, drain=drain)
            self._schedule_flush()

    def settle(self, link: ReceiverLink, delivery: IncomingDelivery, state: DeliveryState) -> bool:
        """Settle a delivery; False if the link or connection is gone (the broker redelivers).

        The frame is written on the next loop iteration, so settles made together travel as one
        disposition range.
        """
        if not self.is_alive:
            return False
        sent = link.settle(delivery, state)
        if sent:
            self._schedule_flush()
        return sent

    async def detach(self, link: Link, *, timeout: float = 5.0) -> None:
        """Detach (close) a link and wait briefly for the broker's answer."""
        if not self.is_alive or link.detached:
            return
        future = self._loop.create_future()
        self._detaching[link] = future
        link.detach(closed=True)
        self._flush()
        with contextlib.suppress(asyncio.TimeoutError, AmqpConnectionLost):
            await asyncio.wait_for(future, timeout)

    async def close(self, *, timeout: float = 5.0) -> None:
        """Close the connection politely, then the socket."""
        if self.is_alive:
            self.connection.close()
            self._flush()
            with contextlib.suppress(asyncio.TimeoutError, AmqpConnectionLost, ConnectionError):
                await asyncio.wait_for(asyncio.shield(self._closed), timeout)
        self._abort()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for task in self._tasks:
            if task is not asyncio.current_task():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    # ------------------------------------------------------------------ internals

    def _session(self) -> Session:
        self._check()
        assert self.session is not None
        return self.session

    def _check(self) -> None:
        if self._lost is not None:
            raise self._lost
        if self._closed.done():
            raise AmqpConnectionLost(None, "the connection is closed")

    async def _await_attach(self, link: Link, address: Any) -> None:
        future: asyncio.Future[None] = self._loop.create_future()
        self._attaching[link] = future
        self._flush()
        watchdog = self._loop.call_later(ATTACH_TIMEOUT, self._attach_timed_out, link, address)
        try:
            await future
        except AmqpLinkError:
            raise
        except BaseException:
            self._attaching.pop(link, None)
            raise
        finally:
            watchdog.cancel()

    def _attach_timed_out(self, link: Link, address: Any) -> None:
        # A broker that never answers an attach (e.g. on a session whose begin it dropped) would
        # leave the link waiting forever: drop the connection, and the reconnect re-attaches.
        if link not in self._attaching or not self.is_alive:
            return
        logger.warning(
            "amqp.attach_timeout: no answer to the attach of a link to %r within %.0f s; "
            "the connection is dropped and reopened",
            address,
            ATTACH_TIMEOUT,
            extra={"reason": "attach timeout"},
        )
        self._set_lost(AmqpConnectionLost(None, f"no answer to an attach in {ATTACH_TIMEOUT} s"))
        self._abort()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        data = self.connection.data_to_send()
        if data and not self._transport.is_closing():
            self._transport.write(data)

    def _on_data(self, data: bytes) -> None:
        """Socket bytes (b"" when the socket closed) into the state machine, events out."""
        connection = self.connection
        if connection.is_closed:
            return
        try:
            events = connection.receive_data(data)
            if events:
                self._dispatch(events)
            self._flush()
        except Exception:  # a bug in a callback must not leave the connection half alive
            logger.exception(
                "amqp.reader_crashed: a bug in a callback; the connection is dropped and reopened",
                extra={"error": "internal"},
            )
            self._set_lost(AmqpConnectionLost(None, "internal error in the AMQP reader"))
            self._abort()
            return
        if connection.is_closed:
            if self._lost is None and not self._closed.done():
                self._set_lost(AmqpConnectionLost(connection.error, "the connection ended"))
            self._abort()

    async def _tick_loop(self) -> None:
        connection = self.connection
        loop = self._loop
        while not connection.is_closed:
            result = connection.tick(loop.time())
            self._flush()
            if result.close:
                logger.warning("amqp.idle_timeout", extra={"reason": "no frames from the broker"})
                self._set_lost(AmqpConnectionLost(connection.error))
                self._abort()
                return
            delay = 1.0 if result.next_tick is None else result.next_tick - loop.time()
            await asyncio.sleep(min(max(delay, 0.05), 5.0))

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, MessageReceived):
                callback = self._on_message.get(event.link)
                if callback is not None:
                    callback(event.link, event.delivery)
            elif isinstance(event, DeliveryUpdated):
                if event.delivery.remote_settled:
                    future = self._outcomes.pop(event.delivery, None)
                    if future is not None and not future.done():
                        future.set_result(event.delivery.remote_state)
            elif isinstance(event, LinkAttached):
                attached = self._attaching.pop(event.link, None)
                if attached is not None and not attached.done():
                    attached.set_result(None)
            elif isinstance(event, LinkDetached):
                self._on_link_detached(event)
            elif isinstance(event, ConnectionOpened):
                if not self._opened.done():
                    self._opened.set_result(None)
            elif isinstance(event, SessionBegun):
                if not self._begun.done():
                    self._begun.set_result(None)  # the handshake checks which one
            elif isinstance(event, SessionEnded):
                self._on_session_ended(event)
            elif isinstance(event, ConnectionClosed) and (
                event.error is not None or self._lost is None
            ):
                self._set_lost(AmqpConnectionLost(event.error))

    def _on_session_ended(self, event: SessionEnded) -> None:
        # RabbitMQ ends the whole session when an attach names a missing queue or exchange:
        # fail that session's links with the broker's error and carry on with a new session.
        for link in list(self._attaching) + list(self._on_message) + list(self._on_detach):
            if link.session is event.session:
                self._on_link_detached(LinkDetached(link, event.error, True))
        for delivery in [d for d in self._outcomes if d.link.session is event.session]:
            future = self._outcomes.pop(delivery)
            if not future.done():
                future.set_exception(AmqpLinkError(None, event.error))
        if self.is_alive and self.connection.is_open:
            if self.session is event.session:
                self.session = self._begin()
            elif self.consumer_session is event.session:
                self.consumer_session = self._begin()
            self._schedule_flush()

    def _on_link_detached(self, event: LinkDetached) -> None:
        link = event.link
        self._on_message.pop(link, None)
        attaching = self._attaching.pop(link, None)
        address: Any = None
        terminus = link.local_attach.source if link.role else link.local_attach.target
        if terminus is not None:
            address = terminus.address
        if attaching is not None and not attaching.done():
            attaching.set_exception(AmqpLinkError(address, event.error))
        detaching = self._detaching.pop(link, None)
        if detaching is not None and not detaching.done():
            detaching.set_result(None)
        if isinstance(link, SenderLink):
            error = AmqpLinkError(address, event.error)
            for delivery in [d for d in self._outcomes if d.link is link]:
                future = self._outcomes.pop(delivery)
                if not future.done():
                    future.set_exception(error)
        callback = self._on_detach.pop(link, None)
        if callback is not None and attaching is None and detaching is None:
            callback(link, event.error)

    def _set_lost(self, lost: AmqpConnectionLost) -> None:
        first = self._lost is None and not self._closed.done()
        if self._lost is None:
            self._lost = lost
        for future in (self._opened, self._begun):
            if not future.done():
                future.set_exception(lost)
                future.exception()  # mark retrieved: nobody may be waiting any more
        pending: list[asyncio.Future[Any]] = [
            *self._attaching.values(),
            *self._detaching.values(),
            *self._outcomes.values(),
        ]
        self._attaching.clear()
        self._detaching.clear()
        self._outcomes.clear()
        for future in pending:
            if not future.done():
                future.set_exception(lost)
        if not self._closed.done():
            self._closed.set_result(None)
        if first and self._on_lost is not None:
            self._on_lost(lost)

    def _abort(self) -> None:
        if not self._transport.is_closing():
            with contextlib.suppress(Exception):
                self._flush()
            self._transport.close()
        if self._lost is None:
            self._lost = AmqpConnectionLost(None, "the connection is closed")
        if not self._closed.done():
            self._closed.set_result(None)


def _no_delay(transport: asyncio.BaseTransport) -> None:
    """Switch Nagle's algorithm off: every publish is one small write followed by a wait for
    the broker's answer, which Nagle would hold back behind the previous unacknowledged one.

    asyncio's own transports already do this; it is set here so that other event loops and
    transports do it too.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
