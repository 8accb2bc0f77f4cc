"""`PubsubServer`: Google Cloud Pub/Sub over raw async gRPC (`grpc.aio`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
import grpc.aio

from repid._compat import UNSET, refuse, renamed
from repid.connections.abc import (
    DeliveryCapacity,
    MessageCallbackT,
    MessageData,
    ServerCapabilities,
)
from repid.connections.backoff import Backoff
from repid.connections.base import DEFAULT_MAX_LEASE, BaseServer
from repid.connections.pubsub import _proto
from repid.connections.pubsub._auth import create_channel
from repid.connections.pubsub._message import (
    CONTENT_TYPE_ATTRIBUTE,
    EMPTY_MARKER_ATTRIBUTE,
    REPLY_TO_ATTRIBUTE,
)
from repid.connections.pubsub._publisher import (
    MAX_BATCH_BYTES,
    MAX_BATCH_MESSAGES,
    PublishCoalescer,
)
from repid.connections.pubsub._subscriber import (
    MAX_IDS_PER_REQUEST,
    TRANSIENT_CODES,
    PubsubSubscriber,
    PubsubSubscription,
    PullCall,
)
from repid.errors import (
    BatchPublishError,
    BrokerAuthenticationError,
    BrokerConnectionError,
    ChannelNotFoundError,
    ConfigurationError,
    RepidError,
    ServerNotConnectedError,
)

__all__ = ["ChannelOverride", "PubsubMessageTooLargeError", "PubsubServer"]

# Pub/Sub refuses a message over 10 MB (data, attributes and ordering key together). The
# emulator does not answer such a request at all (the call runs into its deadline), so the
# size is checked here and the message refused at once.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


class PubsubMessageTooLargeError(RepidError, ValueError):
    """A message is larger than Pub/Sub's 10 MB limit; it was not sent (nothing else fails)."""


def _check_size(encoded: bytes, channel: str) -> None:
    if len(encoded) > MAX_MESSAGE_BYTES:
        raise PubsubMessageTooLargeError(
            f"message to {channel!r} is {len(encoded):,} bytes encoded, over Pub/Sub's "
            f"{MAX_MESSAGE_BYTES:,}-byte limit: store the payload elsewhere and send a reference "
            "(see the large-payloads recipe in the docs)"
        )


logger = logging.getLogger("repid.connections.pubsub")

DEFAULT_ENDPOINT = "pubsub.googleapis.com:443"

_PUBLISH = "/google.pubsub.v1.Publisher/Publish"
_STREAMING_PULL = "/google.pubsub.v1.Subscriber/StreamingPull"
_ACKNOWLEDGE = "/google.pubsub.v1.Subscriber/Acknowledge"
_MODIFY_ACK_DEADLINE = "/google.pubsub.v1.Subscriber/ModifyAckDeadline"
_GET_SUBSCRIPTION = "/google.pubsub.v1.Subscriber/GetSubscription"

_PUBLISH_PARAMETERS = frozenset({"topic", "project", "timeout", "ordering_key", "attributes"})

_MAX_GRPC_MESSAGE = 64 * 1024 * 1024

DEFAULT_ACK_DEADLINE = 10
"""Seconds: Pub/Sub's minimum. A crashed worker's messages come back after one deadline."""

DEFAULT_PULL_STREAMS = 8
"""StreamingPull streams per subscription. Measured on the emulator (benchmarks/README.md):
it never drops the streams of a client that vanished (SIGKILL) and routes a share of the
messages to them, each costing an ack deadline. Before streams had a lifetime
(`EMULATOR_STREAM_LIFETIME`), the last message after a kill -9 was back in 30-60 s with 4
streams, in 10-40 s with 8, and no sooner with 16. 8 needs
`DEFAULT_STREAM_WINDOW`: with gRPC's own window sizing a backlog parked messages unread past
their deadline (3,815 of 20,000 ran twice; none with it)."""

DEFAULT_STREAM_WINDOW = 64 * 1024
"""Bytes a StreamingPull stream may hold unread (its HTTP/2 window; gRPC's automatic sizing
off). Messages Pub/Sub has sent but the worker has not read yet are leased on the server's
clock without the worker knowing their ack ids, so it cannot extend them: with gRPC's
window grown to megabytes, a backlog on the emulator (which ignores
`max_outstanding_messages`) left thousands unread past their deadline, and they ran twice.
64 KiB is a few hundred small messages per stream, read in well under a deadline."""

EMULATOR_STREAM_LIFETIME = 5.0
"""Seconds a StreamingPull stream lives on the emulator (`stream_lifetime`'s default there).

The emulator (0.8.20) never ends the streams of a client that vanished (kill -9, a lost
connection): each keeps taking a share of the messages (about a fifth with two workers of 8
streams each, one of them dead) and every message it takes waits out an ack deadline before it
is redelivered, then may be taken by a dead stream again. A stream's gRPC deadline is the one
end the emulator does honour, so every stream gets one (`stream_lifetime` +
`STREAM_DEADLINE_GRACE`) and a live worker reopens each of its streams before it expires. A
dead worker's streams are then gone within 7 s of its death. On the service, which drops a dead
client's streams itself, streams are not rotated by default (None)."""

STREAM_DEADLINE_GRACE = 2.0
"""Seconds between a stream's rotation time and its gRPC deadline: the time the half-closed
stream has to deliver what it still carries."""

PROBE_AFTER = 5.0
"""Seconds without any answer from Pub/Sub after which the keep-alive loop probes the channel
(while subscriptions or calls are waiting on it)."""

PROBE_TIMEOUT = 5.0
"""Seconds a probe waits for its answer."""

SILENCE_LIMIT = 10.0
"""Seconds without any answer on a channel gRPC believes connected (a half-open connection)
after which the channel is replaced by a new one."""

_NO_ANSWER = frozenset(
    {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
)


@dataclass(frozen=True, slots=True)
class ChannelOverride:
    """Names for one channel that differ from the defaults (repid 2.x's `ChannelOverride`).

    `topic` is where producers of the channel publish, `subscription` what its workers read,
    `project` the project of both; each is a short name or a full `projects/...` path.
    """

    project: str | None = None
    topic: str | None = None
    subscription: str | None = None


def _seconds(value: int | float | timedelta) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


class PubsubServer(BaseServer):
    """Google Cloud Pub/Sub through its gRPC API, without the google-cloud-pubsub client.

    A producer's channel is a topic (`projects/{project}/topics/{channel_prefix}{channel}`), a
    consumer's channel is a subscription (`projects/{project}/subscriptions/{prefix}{channel}`).
    Topics and subscriptions must already exist.

    Connection: with `emulator_host` (or the `PUBSUB_EMULATOR_HOST` environment variable) the
    server talks plain gRPC to the emulator without credentials. Otherwise it connects with TLS
    to `endpoint` and authenticates with `credentials`, or else Google application default
    credentials (`google.auth.default()` with the Pub/Sub scope).

    Message mapping (repid 2.x's): the payload is the message data; headers are attributes;
    the content type is the `content_type` attribute (a `content-type` attribute, the
    CloudEvents binding's name, is read too); `MessageData.reply_to` is the `reply_to`
    attribute. An empty payload without headers is sent with a `repid-empty` attribute (Pub/Sub
    refuses empty messages; repid 2.x fails to publish one), removed again on receipt.

    Publish `server_specific_parameters`: `topic` (a topic name, or a full
    `projects/.../topics/...` path; no prefix is added), `project`, `timeout`
    (`int | float | timedelta` seconds), `ordering_key`, `attributes` (added last, so they win
    over headers).

    Outcomes: `ack` acknowledges; `nack` and `reject` set the ack deadline to 0, so Pub/Sub
    redelivers at once. Dead lettering is a property of the subscription: with a dead-letter
    policy, Pub/Sub moves a message to the dead-letter topic after `max_delivery_attempts`
    deliveries; without one, a nacked message keeps coming back. `reply` publishes (to the
    given channel, else the `reply_to` attribute) and then acks.

    Redelivery of a crashed worker's messages: the stream's ack deadline (`ack_deadline`,
    default 10 s, Pub/Sub's minimum) passes without an extension and Pub/Sub redelivers them.
    Live workers extend deadlines every `ack_deadline / 3` seconds, up to `max_lease` seconds
    per message (default one hour; None: forever; a delivered message held unsettled longer
    is handed back and logged). An event loop blocked for longer than `ack_deadline` lets them
    expire: raise it for actors that block the loop. On the emulator, which keeps routing
    messages to a dead worker's streams until their gRPC deadline, streams live
    `stream_lifetime` seconds (default there 5 s; None on the service: streams are not
    rotated): each is half-closed, read to its end and reopened before its deadline
    (`stream_lifetime` + 2 s), so a killed worker's streams are gone within about 7 s.

    Connection loss: gRPC reconnects the channel by itself (backoff from `initial_backoff` to
    `max_backoff`, default 0.5-3 s) and every stream is reopened, so a worker is back within a
    few seconds of Pub/Sub returning. A half-open connection (a network partition, a NAT that
    lost it) is found by the keep-alive loop: a channel that answered nothing for 5 s is probed,
    one silent for 10 s is replaced by a new one (HTTP/2 keepalive pings find it too on the
    service, every 30 s; the emulator refuses them). While a stream is broken the subscription
    is RECOVERING (`SubscriptionState`).

    Flow control: each subscription reads through `pull_streams` StreamingPull streams (default
    8, at most one per task slot; Pub/Sub paces every stream, so several raise the ceiling; on
    the emulator more also shorten a killed worker's recovery: see `DEFAULT_PULL_STREAMS`),
    each holding at most `stream_window` bytes unread (64 KiB; None: gRPC's own sizing, which
    grows to megabytes), so that what the server sent is read, and its lease extended, long
    before its deadline.
    Together they ask for at most `capacity.limit` outstanding messages
    (`max_outstanding_messages`, shared out when the streams open), stop reading while that
    many wait locally, and hand a message to the callback only while `capacity.free > 0`.
    `delivery_count` is Pub/Sub's `delivery_attempt - 1`, known only on
    subscriptions with a dead-letter policy. Unknown publish parameters raise `ValueError`.

    Names: `channel_overrides` maps a channel to a `ChannelOverride` (its own topic,
    subscription and/or project). Reconnecting: `initial_backoff` doubles per failed attempt
    up to `max_backoff`, each delay jittered (`reconnect_jitter_factor` j: by +- j; default:
    between half and all of it); a stream that stayed up `stability_threshold` seconds (or
    delivered) restarts the backoff.

    repid 2.x's signature works too: `PubsubServer(dsn, default_project="p")`, where
    `http://host:port[/v1]` (the emulator) connects in plaintext without credentials and
    `https://host[:port]` with TLS, authenticated only with `use_google_auth=True`; without a
    dsn, Google default credentials are used (`use_google_auth=False` turns them off). Other
    2.x names: `stream_ack_deadline_seconds` (= `ack_deadline`), `reconnect_base_delay`
    (= `initial_backoff`), `reconnect_max_delay` (= `max_backoff`); `max_reconnect_attempts`
    and `credentials_provider` are refused with an error that says what to use instead.

    Emulator notes (cloud-pubsub-emulator 0.8.20): it ignores `max_outstanding_messages` (the
    local read stop still bounds the buffer), and it never drops the streams of a vanished
    client (kill -9, a cancelled stream) before their gRPC deadline, routing a share of the
    messages to them, each costing a 10 s deadline (without a lifetime, a crashed worker's
    messages came back after 10-40 s in the harness's runs; see `EMULATOR_STREAM_LIFETIME`).
    Streams are therefore ended with a half-close, and rotated there every few seconds.
    """

    protocol = "googlepubsub"
    protocol_version = "1"
    capabilities = ServerCapabilities(
        atomic_reply=False, dead_letter=True, priorities=False, persistent=True, distributed=True
    )

    def __init__(
        self,
        project: str | None = None,
        *,
        emulator_host: str | None = None,
        channel_prefix: str = "",
        channel_overrides: Mapping[str, ChannelOverride] | None = None,
        credentials: Any | None = None,
        endpoint: str = DEFAULT_ENDPOINT,
        ack_deadline: int = UNSET,
        max_lease: float | None = DEFAULT_MAX_LEASE,
        pull_streams: int = DEFAULT_PULL_STREAMS,
        stream_window: int | None = DEFAULT_STREAM_WINDOW,
        stream_lifetime: float | timedelta | None = UNSET,
        publish_timeout: int | float | timedelta = 60.0,
        connect_timeout: float = 10.0,
        close_timeout: float = 5.0,
        initial_backoff: float = UNSET,
        max_backoff: float = UNSET,
        reconnect_jitter_factor: float | None = None,
        stability_threshold: float = 10.0,
        title: str | None = None,
        summary: str | None = None,
        description: str | None = None,
        variables: Mapping[str, Any] | None = None,
        security: list[Any] | None = None,
        tags: list[Any] | None = None,
        external_docs: Any | None = None,
        bindings: Mapping[str, Any] | None = None,
        # repid 2.x names (see the class docstring)
        dsn: str | None = UNSET,
        default_project: str = UNSET,
        use_google_auth: bool | None = None,
        stream_ack_deadline_seconds: int = UNSET,
        reconnect_base_delay: float = UNSET,
        reconnect_max_delay: float = UNSET,
        max_reconnect_attempts: int = UNSET,
        credentials_provider: Any = UNSET,
    ) -> None:
        owner = "PubsubServer"
        if default_project is not UNSET:
            # repid 2.x's signature: PubsubServer(dsn=None, *, default_project=...).
            if project is not None:
                dsn = renamed(owner, "dsn", project, "dsn", dsn)
            project = default_project
        elif dsn is not UNSET:
            raise ConfigurationError(
                f"{owner} got dsn= (repid 2.x) without default_project=; pass the project too"
            )
        if max_reconnect_attempts is not UNSET:
            refuse(
                owner,
                "max_reconnect_attempts=",
                "subscriptions reconnect until Pub/Sub is reachable again (backoff between "
                "initial_backoff and max_backoff seconds) and publishes retry until "
                "publish_timeout; remove it, or bound publishing with publish_timeout=",
            )
        if credentials_provider is not UNSET:
            refuse(
                owner,
                "credentials_provider=",
                "pass credentials= (a google.auth credentials object), or emulator_host= / an "
                "http:// dsn for a server without authentication",
            )
        ack_deadline = renamed(
            owner,
            "ack_deadline",
            ack_deadline,
            "stream_ack_deadline_seconds",
            stream_ack_deadline_seconds,
        )
        ack_deadline = DEFAULT_ACK_DEADLINE if ack_deadline is UNSET else ack_deadline
        initial_backoff = renamed(
            owner, "initial_backoff", initial_backoff, "reconnect_base_delay", reconnect_base_delay
        )
        initial_backoff = 0.5 if initial_backoff is UNSET else initial_backoff
        max_backoff = renamed(
            owner, "max_backoff", max_backoff, "reconnect_max_delay", reconnect_max_delay
        )
        max_backoff = 3.0 if max_backoff is UNSET else max_backoff
        authenticate = True
        if dsn:  # repid 2.x: http:// is plaintext without credentials, https:// is TLS
            if emulator_host is not None:
                raise ConfigurationError(f"{owner} got both dsn= and emulator_host=; pass one")
            target, tls = _parse_dsn(dsn)
            if tls:
                endpoint = target
                authenticate = bool(use_google_auth)
            else:
                if use_google_auth:
                    raise ConfigurationError(
                        f"{owner}: use_google_auth=True needs TLS, but the dsn is http://"
                    )
                emulator_host = target
        elif use_google_auth is False and emulator_host is None:
            authenticate = False
        if not project:
            raise ValueError("PubsubServer needs a Google Cloud project id")
        if not 10 <= ack_deadline <= 600:
            raise ValueError(f"ack_deadline must be 10..600 seconds (Pub/Sub), got {ack_deadline}")
        if reconnect_jitter_factor is not None and not 0 <= reconnect_jitter_factor <= 1:
            raise ValueError("reconnect_jitter_factor must be between 0 and 1")
        if emulator_host is None and not dsn:
            emulator_host = os.environ.get("PUBSUB_EMULATOR_HOST") or None
        self.project = project
        self.emulator_host = emulator_host
        self.channel_prefix = channel_prefix
        self.channel_overrides: Mapping[str, ChannelOverride] = dict(channel_overrides or {})
        self.authenticate = authenticate
        self.reconnect_jitter_factor = reconnect_jitter_factor
        self.stability_threshold = stability_threshold
        self.endpoint = emulator_host if emulator_host is not None else endpoint
        self.ack_deadline = ack_deadline
        self.max_lease = max_lease
        if pull_streams < 1:
            raise ValueError(f"pull_streams must be at least 1, got {pull_streams}")
        self.pull_streams = pull_streams
        if stream_window is not None and stream_window < 1024:
            raise ValueError(
                f"stream_window must be at least 1024 bytes or None, got {stream_window}"
            )
        self.stream_window = stream_window
        if stream_lifetime is UNSET:
            stream_lifetime = EMULATOR_STREAM_LIFETIME if emulator_host is not None else None
        self.stream_lifetime = None if stream_lifetime is None else _seconds(stream_lifetime)
        if self.stream_lifetime is not None and self.stream_lifetime < 1.0:
            raise ValueError(
                f"stream_lifetime must be at least 1 second or None, got {self.stream_lifetime}"
            )
        self.publish_timeout = _seconds(publish_timeout)
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._credentials = credentials
        super().__init__(
            host=self.endpoint,
            pathname=f"/projects/{project}",
            title=title,
            summary=summary,
            description=description,
            variables=variables,
            security=security,
            tags=tags,
            external_docs=external_docs,
            bindings=bindings,
        )
        self._channel: grpc.aio.Channel | None = None
        self._publish_rpc: grpc.aio.UnaryUnaryMultiCallable[bytes, Any] | None = None
        self._ack_rpc: grpc.aio.UnaryUnaryMultiCallable[bytes, Any] | None = None
        self._modack_rpc: grpc.aio.UnaryUnaryMultiCallable[bytes, Any] | None = None
        self._get_subscription_rpc: grpc.aio.UnaryUnaryMultiCallable[bytes, Any] | None = None
        self._pull_rpc: grpc.aio.StreamStreamMultiCallable[bytes, Any] | None = None
        self._last_answer = 0.0
        self._calls_in_flight = 0
        self._closing: set[asyncio.Task[None]] = set()
        # Subscriptions whose leases the keep-alive extends (closed ones until settled).
        self._states: list[PubsubSubscription] = []
        self._keep_alive_task: asyncio.Task[None] | None = None
        self._topic_paths: dict[str, str] = {}
        self._coalescer = PublishCoalescer(self._publish_encoded)

    # -- connection ----------------------------------------------------------------------------

    def _channel_options(self) -> list[tuple[str, Any]]:
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", _MAX_GRPC_MESSAGE),
            ("grpc.max_send_message_length", _MAX_GRPC_MESSAGE),
            # gRPC's own reconnect backoff grows to 120 s by default; keep it near ours so a
            # restarted broker is found again quickly.
            ("grpc.initial_reconnect_backoff_ms", int(self.initial_backoff * 1000)),
            ("grpc.max_reconnect_backoff_ms", int(self.max_backoff * 1000)),
            # Also the longest one connection attempt may take (default 20 s): an attempt into
            # a dead network path must not hold the next one back.
            ("grpc.min_reconnect_backoff_ms", int(PROBE_TIMEOUT * 1000)),
            ("grpc.primary_user_agent", "repid"),
        ]
        if self.stream_window is not None:
            options += [
                ("grpc.http2.bdp_probe", 0),
                ("grpc.http2.lookahead_bytes", self.stream_window),
            ]
        if self.emulator_host is None:
            # Detect dead connections to the service. The emulator answers pings more frequent
            # than every 5 minutes with GOAWAY too_many_pings: there, only the keep-alive
            # loop's probe (see `_check_channel`) finds a half-open connection.
            options += [("grpc.keepalive_time_ms", 30_000), ("grpc.keepalive_timeout_ms", 10_000)]
        return options

    async def connect(self) -> None:
        """Open the gRPC channel and wait (up to `connect_timeout`) until it is ready."""
        if self._channel is not None:
            return
        channel = await self._open_channel()
        try:
            await asyncio.wait_for(channel.channel_ready(), self.connect_timeout)
        except asyncio.TimeoutError:
            await channel.close()
            raise BrokerConnectionError(
                f"could not reach Pub/Sub at {self.endpoint} within {self.connect_timeout} s"
            ) from None
        self._bind(channel)
        self._keep_alive_task = asyncio.create_task(self._keep_alive_loop(), name="pubsub-lease")
        logger.info("pubsub.connected", extra={"host": self.endpoint, "project": self.project})

    async def _open_channel(self) -> grpc.aio.Channel:
        return await create_channel(
            target=self.endpoint,
            insecure=self.emulator_host is not None,
            credentials=self._credentials,
            authenticate=self.authenticate,
            options=self._channel_options(),
        )

    def _bind(self, channel: grpc.aio.Channel) -> None:
        """Use `channel` for every call from now on."""
        self._channel = channel
        self._publish_rpc = channel.unary_unary(
            _PUBLISH, request_serializer=None, response_deserializer=_proto.decode_publish_response
        )
        self._ack_rpc = channel.unary_unary(
            _ACKNOWLEDGE, request_serializer=None, response_deserializer=_proto.decode_empty
        )
        self._modack_rpc = channel.unary_unary(
            _MODIFY_ACK_DEADLINE, request_serializer=None, response_deserializer=_proto.decode_empty
        )
        self._get_subscription_rpc = channel.unary_unary(
            _GET_SUBSCRIPTION,
            request_serializer=None,
            response_deserializer=_proto.decode_subscription_delivery_limit,
        )
        self._pull_rpc = channel.stream_stream(
            _STREAMING_PULL,
            request_serializer=None,
            response_deserializer=_proto.decode_streaming_pull_response,
        )
        self._last_answer = time.monotonic()

    def note_answer(self) -> None:
        """Pub/Sub answered something (a response, a stream message): the channel is alive."""
        self._last_answer = time.monotonic()

    async def _check_channel(self) -> None:
        """Replace a channel that gRPC believes connected but that has stopped answering.

        A half-open connection (a network partition, a NAT or load balancer that lost it) looks
        READY to gRPC forever when nothing pings it, and the emulator refuses pings. So while
        anything waits on the channel (a subscription, a call), a channel silent for
        `PROBE_AFTER` seconds gets a probe (a ModifyAckDeadline without ack ids: any answer, an
        error status included, proves the connection alive), and one silent for
        `SILENCE_LIMIT` seconds is replaced: calls and streams on the old one fail and go
        again on the new one.
        """
        channel = self._channel
        assert self._modack_rpc is not None
        if channel is None or not (self.subscriptions or self._calls_in_flight):
            return
        if time.monotonic() - self._last_answer < PROBE_AFTER:
            return
        if channel.get_state() != grpc.ChannelConnectivity.READY:
            return  # gRPC knows it is not connected and is reconnecting by itself
        paths = [s.path for s in self._live_subscriptions()]
        path = paths[0] if paths else f"projects/{self.project}/subscriptions/repid-probe"
        try:
            await self._modack_rpc(
                _proto.encode_modify_ack_deadline_request(path, [], 0),
                timeout=PROBE_TIMEOUT,
                metadata=_routing("subscription", path),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _NO_ANSWER:
                silent = time.monotonic() - self._last_answer
                if silent >= SILENCE_LIMIT and self._channel is channel:
                    await self._replace_channel(silent)
                return
        self.note_answer()

    async def _replace_channel(self, silent: float) -> None:
        old = self._channel
        logger.warning(
            "pubsub.connection_silent: no answer from %s for %.0f s on a connected channel; "
            "opening a new connection",
            self.endpoint,
            silent,
            extra={"host": self.endpoint, "silent_s": round(silent, 1)},
        )
        self._bind(await self._open_channel())
        if old is not None:
            # Calls and streams still on it end with CANCELLED and are made again on the new
            # channel (see `_call_with_retry` and the stream readers).
            task = asyncio.get_running_loop().create_task(old.close(grace=None))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def disconnect(self) -> None:
        """Close every subscription, return unsettled messages, close the channel."""
        channel = self._channel
        if channel is None:
            return
        await self._stop_subscriptions()
        if self._keep_alive_task is not None:
            self._keep_alive_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keep_alive_task
            self._keep_alive_task = None
        # Messages still leased were never settled: hand them back now rather than at expiry.
        for state in self._states:
            ids = list(state.leased)
            state.leased.clear()
            for start in range(0, len(ids), MAX_IDS_PER_REQUEST):
                with contextlib.suppress(Exception):
                    await self._modack(
                        state.path, ids[start : start + MAX_IDS_PER_REQUEST], 0, self.close_timeout
                    )
        self._states.clear()
        self._channel = None
        await channel.close(grace=self.close_timeout)
        for task in list(self._closing):
            with contextlib.suppress(Exception):
                await task
        logger.info("pubsub.disconnected", extra={"host": self.endpoint})

    @property
    def is_connected(self) -> bool:
        """The channel is open and not failing, and no subscription stream is failing.

        A stream that is still opening counts as up, so that a worker starting does not look
        disconnected (the app refuses to publish on a disconnected server).
        """
        channel = self._channel
        if channel is None:
            return False
        state = channel.get_state(try_to_connect=True)
        if state in (
            grpc.ChannelConnectivity.TRANSIENT_FAILURE,
            grpc.ChannelConnectivity.SHUTDOWN,
        ):
            return False
        return not any(s.failing for s in self._live_subscriptions())

    def _live_subscriptions(self) -> list[PubsubSubscription]:
        return [
            s
            for subscriber in self.subscriptions
            if isinstance(subscriber, PubsubSubscriber)
            for s in subscriber.subscriptions
        ]

    def _require_channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            raise ServerNotConnectedError("PubsubServer is not connected: call connect() first")
        return self._channel

    def __repr__(self) -> str:
        return f"PubsubServer(host={self.endpoint!r}, project={self.project!r})"

    # -- names ---------------------------------------------------------------------------------

    def topic_path(self, channel: str, project: str | None = None) -> str:
        """The full topic name a producer's channel maps to.

        A channel that already is a full name (`projects/{p}/topics/{t}`, e.g. a `reply_to`
        set by another client) is used as it is.
        """
        if project is None:
            path = self._topic_paths.get(channel)
            if path is None:
                path = self._build_topic_path(channel, self.project)
                self._topic_paths[channel] = path
            return path
        return self._build_topic_path(channel, project)

    def _build_topic_path(self, channel: str, project: str) -> str:
        if channel.startswith("projects/") and "/topics/" in channel:
            return channel
        override = self.channel_overrides.get(channel)
        if override is not None:
            if override.project is not None and project == self.project:
                project = override.project
            if override.topic is not None:
                return _full_name(override.topic, project, "topics")
        return f"projects/{project}/topics/{self.channel_prefix}{channel}"

    def subscription_path(self, channel: str) -> str:
        """The full subscription name a consumer's channel maps to."""
        project = self.project
        override = self.channel_overrides.get(channel)
        if override is not None:
            project = override.project or project
            if override.subscription is not None:
                return _full_name(override.subscription, project, "subscriptions")
        return f"projects/{project}/subscriptions/{self.channel_prefix}{channel}"

    # -- publishing ----------------------------------------------------------------------------

    async def publish(
        self,
        *,
        channel: str,
        message: MessageData,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None:
        """Publish one message to the channel's topic."""
        await self.publish_raw(
            channel=channel,
            payload=message.payload,
            headers=message.headers,
            content_type=message.content_type,
            server_specific_parameters=server_specific_parameters,
            reply_to=message.reply_to,
        )

    async def publish_raw(
        self,
        *,
        channel: str,
        payload: bytes,
        headers: dict[str, str] | None,
        content_type: str | None,
        server_specific_parameters: dict[str, Any] | None = None,
        reply_to: str | None = None,
    ) -> str:
        """Publish one message and return its Pub/Sub message id.

        Concurrent publishes to one topic are coalesced into shared PublishRequests (see
        `_publisher`); a lone publish is sent at once.
        """
        params = server_specific_parameters or {}
        topic, timeout, ordering_key, extra = self._publish_options(channel, params)
        encoded = _encode(payload, headers, content_type, ordering_key, extra, reply_to)
        _check_size(encoded, channel)
        self._require_channel()
        return await self._coalescer.publish(topic, encoded, timeout)

    async def publish_batch(
        self,
        *,
        channel: str,
        messages: Sequence[MessageData],
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> list[str]:
        """Publish many messages to one topic in as few PublishRequests as Pub/Sub allows.

        The same `server_specific_parameters` apply to every message. Returns the message ids,
        in order. The requests go one after the other (order, ordering keys); when one fails,
        the messages of the later requests are not sent either: if an earlier request was
        published, `BatchPublishError` names what was and was not.
        """
        params = server_specific_parameters or {}
        topic, timeout, ordering_key, extra = self._publish_options(channel, params)
        requests: list[list[bytes]] = []
        batch: list[bytes] = []
        size = 0
        too_large: dict[int, Exception] = {}
        for index, message in enumerate(messages):
            encoded = _encode(
                message.payload,
                message.headers,
                message.content_type,
                ordering_key,
                extra,
                message.reply_to,
            )
            try:
                _check_size(encoded, channel)
            except PubsubMessageTooLargeError as exc:
                too_large[index] = exc
                continue
            if batch and (
                len(batch) >= MAX_BATCH_MESSAGES or size + len(encoded) > MAX_BATCH_BYTES
            ):
                requests.append(batch)
                batch, size = [], 0
            batch.append(encoded)
            size += len(encoded) + 8
        if batch:
            requests.append(batch)
        ids: list[str] = []
        failure: Exception | None = None
        for request in requests:
            try:
                ids += await self._publish_encoded(topic, request, timeout)
            except Exception as exc:
                failure = exc
                break
        if failure is None and not too_large:
            return ids
        # Map back to the caller's indices: too-large messages were never queued, and after a
        # failed request nothing later was sent.
        sent = iter(ids)
        all_ids: list[str | None] = []
        errors: dict[int, Exception] = {}
        for index in range(len(messages)):
            if index in too_large:
                errors[index] = too_large[index]
                all_ids.append(None)
                continue
            message_id = next(sent, None)
            if message_id is None:
                assert failure is not None
                errors[index] = failure
            all_ids.append(message_id)
        if len(errors) == len(messages):
            raise errors[0]
        raise BatchPublishError(all_ids, errors)

    def _publish_options(
        self, channel: str, params: Mapping[str, Any]
    ) -> tuple[str, float, str, Mapping[str, str] | None]:
        if params:
            unknown = params.keys() - _PUBLISH_PARAMETERS
            if unknown:
                raise ValueError(
                    f"unknown Pub/Sub server_specific_parameters {sorted(unknown)}; "
                    f"known: {sorted(_PUBLISH_PARAMETERS)}"
                )
        project = params.get("project")
        topic = params.get("topic")
        if topic is not None:
            if not isinstance(topic, str) or not topic:
                raise ValueError(f"server_specific_parameters['topic'] must be a str: {topic!r}")
            path = (
                topic
                if topic.startswith("projects/")
                else (f"projects/{project or self.project}/topics/{topic}")
            )
        else:
            path = self.topic_path(channel, project)
        timeout_value = params.get("timeout")
        timeout = self.publish_timeout if timeout_value is None else _seconds(timeout_value)
        ordering_key = params.get("ordering_key") or ""
        if not isinstance(ordering_key, str):
            raise ValueError(f"ordering_key must be a str, got {ordering_key!r}")
        attributes = params.get("attributes")
        if attributes is not None and not isinstance(attributes, Mapping):
            raise ValueError(f"attributes must be a dict[str, str], got {attributes!r}")
        return path, timeout, ordering_key, attributes

    async def _publish_encoded(self, topic: str, encoded: list[bytes], timeout: float) -> list[str]:
        self._require_channel()
        assert self._publish_rpc is not None
        request = _proto.encode_publish_request(topic, encoded)
        try:
            result: list[str] = await self._call_with_retry(
                "_publish_rpc", request, timeout, _routing("topic", topic)
            )
        except grpc.aio.AioRpcError as exc:
            raise _named_error(exc, f"publish to {topic}") from exc
        return result

    async def _call_with_retry(
        self,
        rpc_name: str,
        request: bytes,
        timeout: float,
        metadata: tuple[tuple[str, str], ...],
    ) -> Any:
        """Call the RPC bound as `rpc_name` (`_ack_rpc`, ...), retrying transient failures
        until `timeout` seconds have passed.

        `wait_for_ready` makes the call wait for a reconnecting channel instead of failing at
        once; the deadline bounds the whole attempt sequence. A call cancelled because its
        channel was replaced (see `_check_channel`) goes again on the new channel.
        """
        deadline = time.monotonic() + timeout
        backoff = Backoff(
            self.initial_backoff, self.max_backoff, spread=self.reconnect_jitter_factor
        )
        self._calls_in_flight += 1
        try:
            while True:
                remaining = deadline - time.monotonic()
                channel = self._require_channel()
                rpc: grpc.aio.UnaryUnaryMultiCallable[bytes, Any] = getattr(self, rpc_name)
                try:
                    result = await rpc(
                        request,
                        timeout=max(remaining, 0.001),
                        metadata=metadata,
                        wait_for_ready=True,
                    )
                except grpc.aio.AioRpcError as exc:
                    code = exc.code()
                    if code not in _NO_ANSWER:
                        self.note_answer()
                    if code == grpc.StatusCode.CANCELLED and self._channel is not channel:
                        continue  # its channel was replaced: once more on the new one
                    retryable = code in TRANSIENT_CODES and code not in (
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        grpc.StatusCode.CANCELLED,
                    )
                    delay = backoff.next()
                    if not retryable or time.monotonic() + delay >= deadline:
                        raise
                    await asyncio.sleep(delay)
                else:
                    self.note_answer()
                    return result
        finally:
            self._calls_in_flight -= 1

    # -- settlement (used by subscriptions) ----------------------------------------------------

    async def acknowledge(self, subscription: str, ack_ids: list[str]) -> None:
        """Acknowledge `ack_ids`, retrying transient failures for up to `publish_timeout`."""
        self._require_channel()
        assert self._ack_rpc is not None
        request = _proto.encode_acknowledge_request(subscription, ack_ids)
        await self._call_with_retry(
            "_ack_rpc", request, self.publish_timeout, _routing("subscription", subscription)
        )

    async def modify_ack_deadline(
        self, subscription: str, ack_ids: list[str], seconds: int, *, timeout: float | None = None
    ) -> None:
        """Set the ack deadline of `ack_ids` to `seconds` (0 = redeliver now)."""
        await self._modack(
            subscription, ack_ids, seconds, self.publish_timeout if timeout is None else timeout
        )

    async def _modack(
        self, subscription: str, ack_ids: list[str], seconds: int, timeout: float
    ) -> None:
        self._require_channel()
        assert self._modack_rpc is not None
        request = _proto.encode_modify_ack_deadline_request(subscription, ack_ids, seconds)
        await self._call_with_retry(
            "_modack_rpc", request, timeout, _routing("subscription", subscription)
        )

    async def delivery_limit(self, subscription: str, *, timeout: float = 10.0) -> int | None:
        """The delivery attempts after which Pub/Sub dead-letters a message of `subscription`
        (its dead-letter policy's `max_delivery_attempts`), or None without a policy.

        Needs the `pubsub.subscriptions.get` permission (in `roles/pubsub.viewer` and
        `roles/pubsub.editor`, not in `roles/pubsub.subscriber`).
        """
        request = _proto.encode_get_subscription_request(subscription)
        limit: int | None = await self._call_with_retry(
            "_get_subscription_rpc", request, timeout, _routing("subscription", subscription)
        )
        return limit

    def streaming_pull(self, subscription: str) -> PullCall:
        self._require_channel()
        assert self._pull_rpc is not None
        # The deadline is what ends a vanished client's stream on a server that never notices
        # it is gone (the emulator); live streams are rotated before it (`stream_lifetime`).
        timeout = None
        if self.stream_lifetime is not None:
            timeout = self.stream_lifetime + STREAM_DEADLINE_GRACE
        call: PullCall = self._pull_rpc(
            metadata=_routing("subscription", subscription), timeout=timeout
        )
        return call

    # -- consuming -----------------------------------------------------------------------------

    async def _open_subscription(
        self, callbacks: dict[str, MessageCallbackT], capacity: DeliveryCapacity
    ) -> PubsubSubscriber:
        """Open the StreamingPull streams of every subscription and start delivering."""
        self._require_channel()
        subscriber = PubsubSubscriber(self, callbacks, capacity)
        self._states.extend(subscriber.subscriptions)
        subscriber.start()
        return subscriber

    async def _keep_alive_loop(self) -> None:
        # A third of the deadline: two extensions may fail (or come late) before one expires.
        interval = self.ack_deadline / 3
        while True:
            await asyncio.sleep(interval)
            active = {id(s) for s in self._live_subscriptions()}
            # Closed subscriptions stay until their delivered messages are settled.
            self._states = [s for s in self._states if s.leased or id(s) in active]
            for state in list(self._states):
                try:
                    await state.keep_alive()
                except Exception:  # never let one failure stop the leases of everything
                    logger.exception("pubsub.keep_alive_failed", extra={"subscription": state.path})
            try:
                await self._check_channel()
            except Exception:
                logger.exception("pubsub.channel_check_failed", extra={"host": self.endpoint})


def _full_name(name: str, project: str, kind: str) -> str:
    """`name` as `projects/{project}/{kind}/{name}` unless it already is a full name."""
    return name if name.startswith("projects/") else f"projects/{project}/{kind}/{name}"


def _parse_dsn(dsn: str) -> tuple[str, bool]:
    """repid 2.x's Pub/Sub dsn (`http://localhost:8681/v1`) as (host:port, TLS?)."""
    parts = urllib.parse.urlsplit(dsn)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"a Pub/Sub dsn is http://host:port or https://host, got {dsn!r}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}", tls


def _named_error(exc: grpc.aio.AioRpcError, doing: str) -> Exception:
    """A RepidError naming the problem for the codes a newcomer hits; other codes unchanged."""
    code = exc.code()
    if code == grpc.StatusCode.NOT_FOUND:
        return ChannelNotFoundError(
            f"Pub/Sub: {doing} failed: the topic does not exist (create it first: Repid does not "
            f"create Pub/Sub resources): {exc.details()}"
        )
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return BrokerAuthenticationError(
            f"Pub/Sub: {doing} failed: {code.name}: the credentials were refused or lack the "
            f"permission: {exc.details()}"
        )
    return exc


@functools.lru_cache(maxsize=1024)
def _routing(field: str, value: str) -> tuple[tuple[str, str], ...]:
    """The `x-goog-request-params` header Google's front ends route requests by."""
    return (("x-goog-request-params", urllib.parse.urlencode({field: value})),)


def _encode(
    payload: bytes,
    headers: Mapping[str, str] | None,
    content_type: str | None,
    ordering_key: str,
    extra: Mapping[str, str] | None,
    reply_to: str | None = None,
) -> bytes:
    """Build one encoded PubsubMessage from Repid's message fields."""
    if content_type is None and not extra and reply_to is None:
        attributes = headers
    else:
        attributes = dict(headers) if headers else {}
        if content_type is not None:
            attributes[CONTENT_TYPE_ATTRIBUTE] = content_type
        if reply_to is not None:
            attributes[REPLY_TO_ATTRIBUTE] = reply_to
        if extra:
            attributes.update(extra)
    if not payload and not attributes:
        attributes = {EMPTY_MARKER_ATTRIBUTE: "1"}
    try:
        return _proto.encode_pubsub_message(payload, attributes, ordering_key)
    except (AttributeError, TypeError):
        raise TypeError(
            "Pub/Sub messages need bytes payloads and str header/attribute keys and values, "
            f"got payload {type(payload).__name__} and attributes {attributes!r}"
        ) from None
