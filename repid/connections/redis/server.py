"""`RedisServer`: Repid on Redis Streams with consumer groups (Redis >= 5.0, redis-py >= 7).

Layout in Redis (repid 2.x's, so that 2.x and Repid producers and workers share channels; every
name is built in `repid.connections.redis.keys`):

* a channel is the stream `repid:{channel}`; each message is one entry (see `_codec`: fields
  `payload`, `headers` as one JSON object, `content_type`, `reply_to`);
* every worker reads a channel through its consumer group `repid:{channel}:group`, so each
  message goes to one worker; each subscription is its own consumer, named
  `hostname-pid-random`;
* nacked and malformed messages go to the stream `repid:{channel}:dlq`; `read_dead_letters`
  shows them and `replay_dead_letters` moves them back.

`stream_name_strategy`, `consumer_group_strategy` and `dlq_stream_strategy` (repid 2.x's names)
change these names; `group` names one consumer group for every channel.

Who creates what: `publish` creates the stream on first XADD (unless `nomkstream`). `subscribe`
creates the consumer group with `XGROUP CREATE <stream> <group> 0 MKSTREAM` when it is missing
(and again if the stream is deleted while subscribed). The group starts at id 0
(`consumer_group_start_id`), so messages published before the first worker ever started are
delivered too. Acked entries are deleted (XDEL; repid 2.x only acknowledged them, so its
streams grow until trimmed), so other consumer groups on a channel's stream would miss messages.

Outcomes (atomic; see `RedisReceivedMessage`): ack = XACK + XDEL; reject = re-add a copy at the
end of the stream + XACK + XDEL; nack = the same into the dead-letter stream (or just XACK +
XDEL with `dlq_stream_strategy=None`); reply = XADD to the reply channel + XACK + XDEL.

Redelivery: an entry read by a worker stays in the group's pending list until it is settled.
Subscribers run `XAUTOCLAIM` (XPENDING + XCLAIM before Redis 6.2) every `claim_interval`
seconds and take over entries that nobody touched for `claim_idle` seconds (default 10 s,
checked every `claim_idle / 6`, about 1.7 s), so the messages of a worker killed with SIGKILL
come back within about 12 s (measured: 10.5-11.5 s, see benchmarks/README.md), with
`delivery_count` raised. A live worker resets the idle time of the entries it holds
(XCLAIM ... JUSTID) every `claim_idle / 3` seconds, so long-running actors keep their messages
(an event loop blocked for longer than `claim_idle` loses them to another worker: raise
`claim_idle` for actors that block the loop). On `close`, read-but-undelivered entries are put
back at once.

Connection loss: commands retry with backoff inside redis-py for a few seconds; the read loop
then keeps retrying with exponential backoff and jitter (the subscription is RECOVERING
meanwhile), sets `is_connected` from what it sees, and re-creates groups that vanished. Any
successful command, a publish included, sets `is_connected` again, so a process that only
publishes recovers by itself too. A connection that goes silent (a network partition, a
half-open socket) fails after `block + 5` seconds without an answer, so a worker is back
within about 7 s of the network returning. Use `appendonly yes` on the server so that a restart
keeps the streams and pending lists.

A delivered entry is kept alive for at most `max_lease` seconds (default one hour): an entry
held unsettled that long (an actor that never settles it, a manual-mode actor that forgot) goes
back to the end of its stream for another delivery, and a warning is logged. `disconnect` stops
the keep-alive of whatever is still held.


Redis Cluster and Sentinel (see `repid.connections.redis._client` and docs/brokers/clusters.md):
any node's `redis://` URL finds a cluster by itself (`INFO cluster`; `cluster=` forces either
mode). Every key a channel uses is in its stream's hash slot, so every script touches one slot
(the dead-letter stream becomes `{repid:{channel}}:dlq` there, see `keys.KeyLayout.for_cluster`);
channels spread over the masters; a subscription reads each slot's channels with one FETCH, all
slots at once, and waits on each slot with its own XREAD. Redirections (MOVED, ASK, TRYAGAIN)
are followed by redis-py's cluster client; a failover is waited out with backoff (`_retrying`).
A reply to a channel in another slot is two steps (publish, then ack), so `atomic_reply` is
False on a cluster. `redis+sentinel://` finds the master through the sentinels, again after a
failover. Replication is asynchronous: `wait_replicas` makes publish wait for replicas (WAIT).

`nomkstream` needs Redis >= 6.2.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterDownError,
    ClusterError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisPyConnectionError
from redis.exceptions import TimeoutError as RedisPyTimeoutError

from repid._compat import UNSET, renamed
from repid.connections.abc import (
    ChannelStats,
    DeadLetter,
    DeliveryCapacity,
    MessageCallbackT,
    MessageData,
    ServerCapabilities,
)
from repid.connections.base import DEFAULT_MAX_LEASE, BaseServer, Reply
from repid.connections.coalesce import Coalescer
from repid.connections.redis import _scripts
from repid.connections.redis._client import (
    ClientSettings,
    RedisMode,
    close_client,
    open_client,
    parse_redis_url,
)
from repid.connections.redis._codec import (
    CONTENT_TYPE,
    DEAD_FROM,
    DEAD_REASON,
    PAYLOAD,
    MalformedEntryError,
    decode_entry,
    encode_fields,
    pack_add_batch,
    pack_xadd,
)
from repid.connections.redis._errors import (
    RedisAuthenticationError,
    RedisConnectionError,
    RedisNotConnectedError,
    RedisReplicationError,
    RedisServerError,
    scrub,
)
from repid.connections.redis._params import DEFAULT_XADD, parse_xadd_options
from repid.connections.redis._publisher import CoalescingWriter, NodeConnections
from repid.connections.redis.keys import (
    ChannelNameStrategyT,
    KeyLayout,
    default_consumer_group,
    default_dead_letter_stream,
    default_stream_name,
)
from repid.connections.redis.subscriber import RedisSubscriber
from repid.errors import BatchPublishError, ConfigurationError

__all__ = ["RedisDeadLetter", "RedisServer"]

logger = logging.getLogger("repid.connections.redis")

DEFAULT_CLAIM_IDLE = 10.0
"""Seconds a delivered message may go unrefreshed before another worker reclaims it."""

SILENCE_MARGIN = 5.0
"""Seconds past `block` that a command may wait for its answer before the connection is
considered dead (the socket timeout is `block + SILENCE_MARGIN`)."""

_BATCH_CHUNK = 1000  # XADDs per Lua call in publish_batch (bounds how long Redis is busy)

_T = TypeVar("_T")

# What a Redis Cluster failover looks like to a client: the dead master refuses connections,
# then the cluster reports itself down until a replica has taken over the slots.
_FAILOVER_ERRORS = (
    RedisPyConnectionError,
    RedisPyTimeoutError,
    ClusterDownError,
    SlotNotCoveredError,
    TryAgainError,
    ClusterError,
)
# Error replies of a Cluster after which a write is sent again (it did not run).
_REROUTE_REPLIES = (MovedError, AskError, TryAgainError, ClusterDownError)
# A reply whose request and reply channels live in different slots is two steps on a Cluster.
_CLUSTER_CAPABILITIES = ServerCapabilities(
    atomic_reply=False, dead_letter=True, priorities=False, persistent=True, distributed=True
)


@dataclass(frozen=True, slots=True)
class RedisDeadLetter(DeadLetter):
    """One entry of a dead-letter stream (`RedisServer.read_dead_letters`).

    `message_id` is the entry's id in the dead-letter stream; a malformed entry has an empty
    `payload` and keeps whatever it had in `fields`.
    """

    original_id: str | None = None
    """The id of the entry the message first had on its channel."""
    delivery_count: int = 0
    fields: Mapping[bytes, bytes] = dataclass_field(default_factory=dict)
    """All raw fields of the entry."""

    @property
    def entry_id(self) -> str:
        """The entry's id in the dead-letter stream (the same as `message_id`)."""
        return self.message_id or ""


class RedisServer(BaseServer):
    """A Redis server reached at `url` (`redis://[[user]:password@]host[:port][/db]`).

    `rediss://` connects with TLS. `username` / `password` may also be given as arguments
    (they override the URL). The password is kept out of `repr`, logs, exceptions and the
    AsyncAPI fields (`host` is `host:port`, `pathname` is `/db`).

    Redis Cluster: the URL of any node will do; `connect` asks it whether cluster mode is on
    (`mode` then says `RedisMode.CLUSTER`), `cluster=True` / `cluster=False` decides instead.
    A cluster has only database 0. Sentinel:
    `redis+sentinel://[[user]:password@]host1:26379,host2:26379/SERVICE_NAME[/db]` (or
    `rediss+sentinel://`, TLS to the data nodes): the master of SERVICE_NAME is asked of the
    sentinels on every new connection (the URL's credentials are the data nodes';
    `sentinel_username` / `sentinel_password` are the sentinels'). `wait_replicas=N`: a
    publish returns only once N replicas have the message (Redis `WAIT`, up to `wait_timeout`
    seconds, else `RedisReplicationError`), so a failover cannot lose it; 0 (the default) is
    Redis's asynchronous replication. See docs/brokers/clusters.md for what each mode
    guarantees.

    Names in Redis (see `repid.connections.redis.keys`; the defaults are repid 2.x's):
    `stream_name_strategy(channel)` - the stream (default `repid:{channel}`);
    `consumer_group_strategy(channel)` - the consumer group (default `repid:{channel}:group`),
    or `group` - one group name for every channel; `dlq_stream_strategy(channel)` - the
    dead-letter stream (default `repid:{channel}:dlq`; None drops nacked messages);
    `dlq_maxlen` trims dead-letter streams to about that many entries;
    `consumer_group_start_id` - where a new group starts reading (`"0"`: every message already
    in the stream, `"$"`: only new ones).

    Recovery settings (seconds): `claim_idle` - how long a delivered, unsettled message may go
    untouched before another worker takes it over (default 10: a SIGKILLed worker's messages
    are back within about 12 s); `claim_interval` - how often a subscriber
    looks for such messages (default `claim_idle / 6`; 0 turns reclaiming off, as in 2.x);
    `keepalive_interval` - how often a worker refreshes the messages it is still processing
    (default `claim_idle / 3`); `block` - the longest a single XREADGROUP waits; `batch_size` -
    the most entries one read takes per channel (default: as many as the worker has free
    slots). `max_connections` bounds the connection pool (commands beyond it wait for a free
    connection; on a cluster it is per node, and redis-py's cluster pools raise instead of
    waiting). `retry_attempts` - how often a command is retried on a connection error
    (with exponential backoff capped at 1 s) before the error reaches the caller (default 6 on
    one node, 20 - about 15 s, a failover's length - on a cluster or through Sentinel);
    `retry_delay` - the longest the read loop waits between attempts after an error (default
    5 s on one node, 1 s on a cluster or through Sentinel). `prune_idle`: consumers (dead
    workers) that hold no messages and were idle this long are removed from the group, so it
    does not collect one consumer per process ever started (None keeps them). `max_lease`:
    seconds a delivered message may stay unsettled before it goes back to its stream (default
    one hour; None: forever).

    repid 2.x keyword names are accepted with their 2.x meaning: `dsn` (= `url`),
    `min_idle_ms` (= `claim_idle` in milliseconds), `block_ms` (= `block` in milliseconds).
    """

    protocol = "redis"
    protocol_version = "5.0"
    capabilities = ServerCapabilities(
        atomic_reply=True, dead_letter=True, priorities=False, persistent=True, distributed=True
    )

    def __init__(
        self,
        url: str = UNSET,
        *,
        username: str | None = None,
        password: str | None = None,
        group: str | None = None,
        stream_name_strategy: ChannelNameStrategyT | None = None,
        consumer_group_strategy: ChannelNameStrategyT | None = None,
        dlq_stream_strategy: ChannelNameStrategyT | None = default_dead_letter_stream,
        dlq_maxlen: int | None = None,
        consumer_group_start_id: str = "0",
        claim_idle: float = UNSET,
        claim_interval: float | None = None,
        keepalive_interval: float | None = None,
        block: float = UNSET,
        batch_size: int | None = None,
        max_connections: int = 50,
        retry_attempts: int | None = None,
        retry_delay: float | None = None,
        prune_idle: float | None = 3600.0,
        max_lease: float | None = DEFAULT_MAX_LEASE,
        cluster: bool | None = None,
        sentinel_username: str | None = None,
        sentinel_password: str | None = None,
        wait_replicas: int = 0,
        wait_timeout: float = 1.0,
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
        min_idle_ms: int = UNSET,
        block_ms: int = UNSET,
    ) -> None:
        url = renamed("RedisServer", "url", url, "dsn", dsn)
        url = "redis://localhost:6379/0" if url is UNSET else url
        claim_idle = renamed(
            "RedisServer", "claim_idle", claim_idle, "min_idle_ms", min_idle_ms, _ms_to_s
        )
        claim_idle = DEFAULT_CLAIM_IDLE if claim_idle is UNSET else claim_idle
        block = renamed("RedisServer", "block", block, "block_ms", block_ms, _ms_to_s)
        block = 2.0 if block is UNSET else block
        if group is not None and consumer_group_strategy is not None:
            raise ConfigurationError(
                "RedisServer got both group= and consumer_group_strategy=; pass only one"
            )
        target = parse_redis_url(url)
        if target.sentinel and cluster is not None:
            raise ConfigurationError(
                "RedisServer got cluster= with a redis+sentinel:// URL: Sentinel watches a "
                "master and its replicas, not a Redis Cluster"
            )
        if cluster is True and target.db != 0:
            raise ConfigurationError(
                f"Redis Cluster has only database 0; the URL names database {target.db}"
            )
        if claim_idle <= 0 or block <= 0:
            raise ValueError("claim_idle and block must be positive")
        if claim_interval is not None and claim_interval < 0:
            raise ValueError("claim_interval must be positive, or 0 to turn reclaiming off")
        if batch_size is not None and batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if retry_attempts is not None and retry_attempts < 0:
            raise ValueError("retry_attempts must be >= 0")
        if retry_delay is not None and retry_delay <= 0:
            raise ValueError("retry_delay must be positive")
        if dlq_maxlen is not None and dlq_maxlen < 0:
            raise ValueError("dlq_maxlen must be >= 0")
        if wait_replicas < 0 or wait_timeout <= 0:
            raise ValueError("wait_replicas must be >= 0 and wait_timeout positive")
        super().__init__(
            host=target.host,
            pathname=target.pathname,
            title=title,
            summary=summary,
            description=description,
            variables=variables,
            security=security,
            tags=tags,
            external_docs=external_docs,
            bindings=bindings,
        )
        self._target = target
        self._cluster_option = cluster
        self._username = username if username is not None else target.username
        self._password = password if password is not None else target.password
        self._sentinel_username = sentinel_username
        self._sentinel_password = sentinel_password
        self._custom_dead_letters = dlq_stream_strategy is not default_dead_letter_stream
        self._layout = KeyLayout(
            stream_name=stream_name_strategy or default_stream_name,
            consumer_group=(
                consumer_group_strategy
                or (default_consumer_group if group is None else _fixed(group))
            ),
            dead_letter_stream=dlq_stream_strategy,
        )
        self.keys = self._layout
        """How channels map to Redis names (`repid.connections.redis.keys.KeyLayout`); on a
        Redis Cluster, once connected, the dead-letter streams move into the channels' slots
        (`KeyLayout.for_cluster`)."""
        self.dlq_maxlen = dlq_maxlen
        self.consumer_group_start_id = consumer_group_start_id
        self.claim_idle = claim_idle
        self.claims_enabled = claim_interval != 0
        self.claim_interval = claim_interval or claim_idle / 6
        self.keepalive_interval = (
            keepalive_interval if keepalive_interval is not None else claim_idle / 3
        )
        self.block = block
        self.batch_size = batch_size
        self.max_connections = max_connections
        self._retry_attempts = retry_attempts
        self._retry_delay = retry_delay
        self.wait_replicas = wait_replicas
        self.wait_timeout = wait_timeout
        self.prune_idle = prune_idle
        self.max_lease = max_lease
        self._stream_keys: dict[str, bytes] = {}
        self._client: Redis | RedisCluster | None = None
        self._sentinel: Sentinel | None = None
        self._mode: RedisMode | None = None
        self._connected = False
        # ((stream, group), entry id) and ((stream, group, target, extra, reason), entry id)
        self._acks: Coalescer[tuple[tuple[bytes, str], bytes], None] = Coalescer(self._send_acks)
        self._moves: Coalescer[tuple[tuple[bytes, str, bytes | None, int, str], bytes], None] = (
            Coalescer(self._send_moves)
        )
        self._move_script: Any = None
        self._reply_script: Any = None
        self._replay_script: Any = None
        self._fetch_script: Any = None
        self._has_xautoclaim = True  # cleared on the first "unknown command" (Redis < 6.2)
        self._add_batch_script: Any = None
        self._prune_script: Any = None
        self._writer: CoalescingWriter | None = None
        self._node_writers: dict[str, tuple[ClusterNode, CoalescingWriter]] = {}

    def stream_key(self, channel: str) -> bytes:
        """The stream key of `channel` (cached: strategies run once per channel)."""
        key = self._stream_keys.get(channel)
        if key is None:
            key = self.keys.stream(channel).encode()
            self._stream_keys[channel] = key
        return key

    def stream_name_for(self, channel: str) -> str:
        """The stream name of `channel` (repid 2.x's name for `keys.stream`)."""
        return self.keys.stream(channel)

    # -- connection -----------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """True after a successful command, False after a connection failure or disconnect."""
        return self._connected

    @property
    def mode(self) -> RedisMode | None:
        """How this server reaches Redis: one node, a Redis Cluster or through Sentinel
        (`RedisMode`); None until the first `connect`."""
        return self._mode

    @property
    def retry_attempts(self) -> int:
        """How often a command is retried on a connection error before the error reaches the
        caller: as given, else 6 on one node and 20 on a Redis Cluster or through Sentinel
        (about 15 s with the backoff capped at 1 s: enough to ride out a failover whose
        failure detection takes 5-10 s)."""
        if self._retry_attempts is not None:
            return self._retry_attempts
        if self._target.sentinel or self._mode is RedisMode.CLUSTER:
            return 20
        return 6

    @property
    def retry_delay(self) -> float:
        """The longest the read loop waits between attempts after an error: as given, else 5 s
        on one node and 1 s on a Redis Cluster or through Sentinel (an error there is mostly a
        failover, over in seconds: the worker resumes within a second of it)."""
        if self._retry_delay is not None:
            return self._retry_delay
        return 1.0 if self._target.sentinel or self._mode is RedisMode.CLUSTER else 5.0

    def _backoff(self) -> ExponentialWithJitterBackoff:
        return ExponentialWithJitterBackoff(base=0.05, cap=1.0)

    def _settings(self, retries: int) -> ClientSettings:
        return ClientSettings(
            username=self._username,
            password=self._password,
            max_connections=self.max_connections,
            # Longer than any blocking XREADGROUP, so that only a silent connection (a
            # partition, a half-open socket) ends in an error, soon enough that a worker is
            # back within seconds of the network returning.
            socket_timeout=self.block + SILENCE_MARGIN,
            # A broker restart takes about a second; ride it out inside one command.
            retry=Retry(self._backoff(), retries=retries),
            sentinel_username=self._sentinel_username,
            sentinel_password=self._sentinel_password,
        )

    async def connect(self) -> None:
        """Create the client and check the connection.

        A `redis://` URL's node is asked whether it belongs to a Redis Cluster (`INFO
        cluster`) unless `cluster=` says so; a `redis+sentinel://` URL asks the sentinels for
        the master. See `mode`.
        """
        if self._client is None:
            try:
                opened = await open_client(
                    self._target,
                    self._settings(self.retry_attempts),
                    cluster=self._cluster_option,
                    # redis-py's cluster client retries without pausing (it reloads the slot
                    # map between attempts); the pauses that ride out a failover are
                    # `_retrying`'s.
                    cluster_settings=self._settings(3),
                )
            except RedisError as exc:
                raise self._error(exc, "connect") from None
            except RedisClusterException as exc:  # redis-py's cluster errors are not RedisErrors
                raise RedisConnectionError(
                    f"redis at {self.host}: connect to the Redis Cluster failed: "
                    f"{scrub(str(exc), self._password)}"
                ) from None
            except ValueError as exc:
                raise ConfigurationError(f"redis at {self.host}: {exc}") from None
            self._sentinel = opened.sentinel
            self._install(opened.client, opened.mode)
            return
        try:
            await self._client.ping()
        except RedisError as exc:
            raise self._error(exc, "connect") from None
        self._connected = True

    def _install(self, client: Redis | RedisCluster, mode: RedisMode) -> None:
        self._client = client
        self._mode = mode
        if mode is RedisMode.CLUSTER:
            # Every key of a channel in one slot (see `keys.KeyLayout.for_cluster`).
            self.keys = self._layout.for_cluster(keep_dead_letters=self._custom_dead_letters)
            self.capabilities = _CLUSTER_CAPABILITIES
            logger.info(
                "redis.cluster: redis at %s is a Redis Cluster node; %d masters",
                self.host,
                len(client.get_primaries()),  # type: ignore[union-attr]
                extra={"server": self.host},
            )
        else:
            self.keys = self._layout
        self._move_script = client.register_script(_scripts.MOVE)
        self._reply_script = client.register_script(_scripts.REPLY)
        self._replay_script = client.register_script(_scripts.REPLAY)
        self._fetch_script = client.register_script(_scripts.FETCH)
        self._add_batch_script = client.register_script(_scripts.ADD_BATCH)
        self._prune_script = client.register_script(_scripts.PRUNE)
        if isinstance(client, Redis):
            self._writer = CoalescingWriter(
                client.connection_pool, self.wait_replicas, self.wait_timeout
            )
        self._connected = True

    async def _close_client(self, client: Redis | RedisCluster) -> None:
        sentinel, self._sentinel = self._sentinel, None
        await close_client(client, sentinel)

    async def _retrying(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Await `call()`; on a Redis Cluster, retry what a failover causes, with backoff.

        redis-py's cluster client retries a command at once (reloading the slot map), which
        cannot outlast the few seconds until a replica takes over a dead master's slots; this
        waits between attempts (up to `retry_attempts`, about 15 s). On one node and through
        Sentinel the client's own retry already waits.
        """
        if self._mode is not RedisMode.CLUSTER:
            return await call()
        failures = 0
        backoff = self._backoff()
        while True:
            try:
                return await call()
            except _FAILOVER_ERRORS as exc:
                failures += 1
                if failures > self.retry_attempts:
                    raise
                delay = backoff.compute(failures)
                logger.debug(
                    "redis.cluster_retry: %s: %s; in %.2f s",
                    self.host,
                    scrub(str(exc), self._password),
                    delay,
                    extra={"server": self.host, "error": type(exc).__name__},
                )
                await asyncio.sleep(delay)

    async def disconnect(self) -> None:
        """Close every subscription (releasing undelivered messages) and stop its keep-alive,
        flush acks, close."""
        await self._stop_subscriptions()
        await self._acks.wait_idle()
        await self._moves.wait_idle()
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.close()
        node_writers, self._node_writers = self._node_writers, {}
        for _, node_writer in node_writers.values():
            await node_writer.close()
        client, self._client = self._client, None
        self._connected = False
        if client is not None:
            await self._close_client(client)

    def _require_client(self) -> Redis | RedisCluster:
        client = self._client
        if client is None:
            raise RedisNotConnectedError(
                f"RedisServer at {self.host} is not connected: call `await server.connect()` "
                "or use `async with server.connection():`"
            )
        return client

    @property
    def client(self) -> Redis | RedisCluster:
        """The redis-py client of this connection, for what Repid does not wrap (the job
        layer's delayed messages use it): a `RedisCluster` on a Redis Cluster (see `mode`).
        Raises `RedisNotConnectedError` before `connect()`.

        Errors of commands sent on it are redis-py's own; `command_error()` turns one into the
        exception Repid would raise (naming the host, never the password).
        """
        return self._require_client()

    async def ensure_group(self, channel: str) -> None:
        """Create `channel`'s stream and consumer group if missing (what `subscribe` does)."""
        await self._ensure_group(self.stream_key(channel), self.keys.group(channel))

    def command_error(self, exc: RedisError, doing: str) -> Exception:
        """The Repid exception for a redis-py error met while `doing` something."""
        return self._error(exc, doing)

    def _error(self, exc: RedisError, doing: str) -> Exception:
        """A Repid exception for `exc` that names the host and never the password.

        The redis-py exception stays attached as the cause only when its text has no password.
        """
        original = str(exc)
        text = scrub(original, self._password)
        message = f"redis at {self.host}: {doing} failed: {type(exc).__name__}: {text}"
        new: Exception
        if isinstance(exc, AuthenticationError) or _is_auth_reply(exc):
            self._connected = False
            given = "no password was given" if not self._password else "the password was refused"
            new = RedisAuthenticationError(
                f"redis at {self.host}: {doing} failed: wrong or missing credentials "
                f"({given}; pass it in the URL, redis://:PASSWORD@host, or password=...): {text}"
            )
        elif isinstance(exc, (RedisPyConnectionError, RedisPyTimeoutError)):
            self._connected = False
            new = RedisConnectionError(message)
        else:
            new = RedisServerError(message)
        new.__cause__ = exc if text == original else None
        new.__suppress_context__ = True
        return new

    # -- publishing -----------------------------------------------------------------------------

    async def publish(
        self,
        *,
        channel: str,
        message: MessageData,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None:
        """XADD the message to `channel`'s stream (`repid:{channel}` by default).

        `server_specific_parameters`: `maxlen` (int), `approximate` (bool, default True: `~`),
        `nomkstream` (bool: raise RedisServerError instead of creating the stream) and
        `stream_id` (str, default `*`). Unknown names raise ValueError.
        """
        self._require_client()
        options = parse_xadd_options(server_specific_parameters)
        head = None if options is DEFAULT_XADD else options.command_bytes()
        key = self.stream_key(channel)
        pieces = pack_xadd(
            key,
            head,
            message.payload,
            message.headers,
            message.content_type,
            message.reply_to,
        )
        try:
            added = await self._write(key, pieces)
            if isinstance(added, RedisError):
                raise added
        except RedisReplicationError as exc:
            raise RedisReplicationError(
                f"redis at {self.host}: publish to {channel!r}: {exc}"
            ) from None
        except RedisError as exc:
            raise self._error(exc, f"publish to {channel!r}") from None
        self._connected = True  # a producer-only process recovers here after an outage
        if added is None:
            raise RedisServerError(
                f"redis at {self.host}: publish to {channel!r} failed: the stream does not "
                "exist and nomkstream=True"
            )

    async def _write(self, key: bytes, pieces: list[bytes]) -> Any:
        """Send one packed write on the fast path (see `_publisher`) and return its reply.

        When the fast path's connection fails, or a Redis Cluster answers that the key's slot
        is elsewhere or the cluster is down, the client is left to find its way back first (one
        node: a retrying PING rides out a restart; Sentinel: the next connection asks for the
        current master; Cluster: a command on the key follows the redirection and reloads the
        slot map, waiting out a failover), then the write is sent again. A write whose reply was
        lost may so be applied twice: at-least-once, like every path.
        """
        client = self._require_client()
        cluster = self._mode is RedisMode.CLUSTER
        attempts = 0
        while True:
            writer = self._writer_for(key)
            error: RedisError
            try:
                return await writer.submit(pieces)
            except (RedisPyConnectionError, RedisPyTimeoutError) as exc:
                error = exc
            except ResponseError as exc:  # an error reply (the coalescer raises it)
                if not (cluster and isinstance(exc, _REROUTE_REPLIES)):
                    return exc
                if isinstance(exc, AskError):
                    # The slot is migrating: only the cluster client knows to send ASKING first.
                    # Until the migration ends it may meet TRYAGAIN or run out of redirections
                    # ("TTL exhausted"): the write did not run, so wait and send it again, as
                    # `publish_batch` does (a failed publish here reached the caller).
                    retry = functools.partial(client.execute_command, *_unpack_for_retry(pieces))
                    return await self._retrying(retry)
                error = exc
            attempts += 1
            if not cluster:
                if attempts > 2:
                    raise error
                await client.ping()
                continue
            # A slot moving between masters answers MOVED/TRYAGAIN (or bounces between the two
            # nodes) until both have switched: wait with backoff, as `_retrying` does, rather
            # than failing the publish after a few quick tries.
            if attempts > self.retry_attempts:
                raise error
            if attempts > 1:
                await asyncio.sleep(self._backoff().compute(attempts - 1))
            await self._retrying(lambda: client.exists(key))

    def _writer_for(self, key: bytes) -> CoalescingWriter:
        """The fast-path writer for `key`: the server's, or on a Cluster its master's."""
        writer = self._writer
        if writer is not None:
            return writer
        client = self._require_client()
        assert isinstance(client, RedisCluster)
        node = client.nodes_manager.get_node_from_slot(key_slot(key))
        known = self._node_writers.get(node.name)
        if known is not None and known[0] is node:
            return known[1]
        writer = CoalescingWriter(NodeConnections(node), self.wait_replicas, self.wait_timeout)
        if known is not None:
            # The slot map was reloaded and the node object replaced: retire the old writer.
            asyncio.get_running_loop().create_task(known[1].close())
        self._node_writers[node.name] = (node, writer)
        return writer

    async def publish_batch(
        self,
        *,
        channel: str,
        messages: Sequence[MessageData],
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> list[str]:
        """XADD many messages to `channel` in one round trip; return their entry ids, in order.

        The messages go in chunks of 1000, each chunk one Lua script (ADD_BATCH, atomic: a chunk
        is added entirely or not at all), all chunks pipelined. `maxlen`, `approximate` and
        `nomkstream` apply to every message; `stream_id` is refused (ids must differ). With
        `nomkstream` on a missing stream nothing is added and RedisServerError is raised.
        """
        client = self._require_client()
        options = parse_xadd_options(server_specific_parameters)
        if options.stream_id != "*":
            raise ValueError("publish_batch does not take 'stream_id': every entry needs its own")
        if not messages:
            return []
        head = options.command_bytes()
        key = self.stream_key(channel)
        script = self._add_batch_script
        chunks = [messages[i : i + _BATCH_CHUNK] for i in range(0, len(messages), _BATCH_CHUNK)]
        try:
            results = await self._send_packed(
                key,
                [
                    piece
                    for chunk in chunks
                    for piece in pack_add_batch(script.sha.encode(), key, head, chunk)
                ],
                len(chunks),
            )
            for i, result in enumerate(results):
                if self._mode is RedisMode.CLUSTER and isinstance(result, _REROUTE_REPLIES):
                    # The chunk did not run (the slot moved, or a failover is under way): send
                    # it through the cluster client, which follows redirections.
                    packed = pack_add_batch(script.sha.encode(), key, head, chunks[i])
                    command = _unpack_for_retry(packed)
                    results[i] = await self._retrying(
                        lambda command=command: client.execute_command(*command)  # type: ignore[misc]
                    )
            if any(isinstance(result, NoScriptError) for result in results):
                # The server lost its script cache (a restart): NOSCRIPT means that chunk did
                # not run, so load the script and send exactly those chunks again.
                await client.script_load(_scripts.ADD_BATCH)
                retry = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
                again = await self._send_packed(
                    key,
                    [
                        piece
                        for i in retry
                        for piece in pack_add_batch(script.sha.encode(), key, head, chunks[i])
                    ],
                    len(retry),
                )
                for i, result in zip(retry, again, strict=True):
                    results[i] = result
        except RedisError as exc:
            raise self._error(exc, f"batch publish to {channel!r}") from None
        self._connected = True
        ids: list[str | None] = []
        errors: dict[int, Exception] = {}
        for chunk, result in zip(chunks, results, strict=True):
            if isinstance(result, RedisError) or result is None:
                error = (
                    self._error(result, f"batch publish to {channel!r}")
                    if result is not None
                    else RedisServerError(
                        f"redis at {self.host}: batch publish to {channel!r} failed: the "
                        "stream does not exist and nomkstream=True"
                    )
                )
                for _ in chunk:
                    errors[len(ids)] = error
                    ids.append(None)
            else:
                ids.extend(result.decode().split(","))
        if errors:
            # Each chunk is atomic; chunks are independent (see BatchPublisherT).
            if len(errors) == len(ids):
                raise errors[0]
            raise BatchPublishError(ids, errors)
        return ids  # type: ignore[return-value]  # no None left once no chunk failed

    async def _send_packed(self, key: bytes, pieces: list[bytes], replies: int) -> list[Any]:
        """Write pre-packed commands on `key`'s connection pool (on a Cluster, its master's)
        and read `replies` replies.

        Error replies are returned (not raised) so that every reply is read and the connection
        stays usable. No automatic retry: a batch that may have been applied is not resent.
        """
        client = self._require_client()
        pool: Any = (
            NodeConnections(client.nodes_manager.get_node_from_slot(key_slot(key)))
            if isinstance(client, RedisCluster)
            else client.connection_pool
        )
        connection = await pool.get_connection()
        try:
            await connection.send_packed_command(pieces, check_health=False)
            results: list[Any] = []
            for _ in range(replies):
                try:
                    results.append(await connection.read_response())
                except ResponseError as exc:
                    results.append(exc)
        except BaseException:
            await connection.disconnect(nowait=True)
            raise
        finally:
            await pool.release(connection)
        return results

    # -- subscribing ----------------------------------------------------------------------------

    async def _open_subscription(
        self, callbacks: dict[str, MessageCallbackT], capacity: DeliveryCapacity
    ) -> RedisSubscriber:
        """Start reading `callbacks`' channels through their consumer groups (module doc)."""
        self._require_client()
        if not callbacks:
            raise ValueError("subscribe needs at least one channel")
        for channel in callbacks:
            self._check_one_slot(channel)
        consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        subscriber = RedisSubscriber(
            server=self,
            channels_to_callbacks=callbacks,
            capacity=capacity,
            consumer=consumer,
            max_lease=self.max_lease,
        )
        await subscriber.start()
        return subscriber

    @property
    def is_cluster(self) -> bool:
        """Connected to a Redis Cluster (see `mode`)."""
        return self._mode is RedisMode.CLUSTER

    def _check_one_slot(self, channel: str) -> None:
        """On a Cluster, refuse a channel whose keys live in different slots (a script that
        touches them would fail with CROSSSLOT on every message)."""
        if self._mode is not RedisMode.CLUSTER:
            return
        keys = self.keys.channel_keys(channel)
        slots = {key_slot(key.encode()) for key in keys}
        if len(slots) > 1:
            raise ConfigurationError(
                f"on Redis Cluster every key of channel {channel!r} must be in one hash slot, "
                f"but {keys} are not: make the strategies keep the stream's hash tag, e.g. "
                "dlq_stream_strategy=lambda c: keys.same_slot(stream_name(c), ':dlq') "
                "(see repid.connections.redis.keys)"
            )

    async def _ensure_group(self, key: bytes, group: str) -> None:
        client = self._require_client()
        try:
            await client.xgroup_create(key, group, id=self.consumer_group_start_id, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise self._error(exc, f"creating consumer group on {key.decode()!r}") from None
        except RedisError as exc:
            raise self._error(exc, f"creating consumer group on {key.decode()!r}") from None

    # -- settlement (called by RedisReceivedMessage) --------------------------------------------

    async def _ack_entry(self, key: bytes, group: str, entry_id: bytes) -> None:
        """XACK + XDEL, coalesced with other acks (see `repid.connections.coalesce`)."""
        await self._acks.submit(((key, group), entry_id))

    async def _send_acks(self, items: list[tuple[tuple[bytes, str], bytes]]) -> None:
        batch = _grouped(items)
        client = self._require_client()
        # One transaction on one node; on a Cluster the channels are in different slots, so
        # the pipeline is split by node (each XACK + XDEL pair still travels together, and both
        # are idempotent when a failover makes the pipeline run again).
        transaction = not isinstance(client, RedisCluster)

        async def send() -> None:
            pipe = client.pipeline(transaction=transaction)
            for (key, group), ids in batch.items():
                pipe.xack(key, group, *ids)
                pipe.xdel(key, *ids)
            await pipe.execute()

        try:
            await self._retrying(send)
        except RedisError as exc:
            raise self._error(exc, "ack") from None
        self._connected = True

    async def _move_entry(
        self,
        source: bytes,
        group: str,
        target: bytes | None,
        entry_id: bytes,
        *,
        extra_deliveries: int,
        reason: str,
    ) -> None:
        """One entry through the MOVE script (reject, nack), coalesced with others.

        `target=None` drops the entry (XACK + XDEL: a nack without a dead-letter stream).
        """
        await self._moves.submit(((source, group, target, extra_deliveries, reason), entry_id))

    def _move_args(self, target: bytes | None, reason: str) -> tuple[str | int, str]:
        """The MAXLEN and drop arguments of MOVE for a copy to `target` (see `_scripts`)."""
        if target is None:
            return "", "1"
        if reason and self.dlq_maxlen is not None:
            return self.dlq_maxlen, ""
        return "", ""

    async def _send_moves(
        self, items: list[tuple[tuple[bytes, str, bytes | None, int, str], bytes]]
    ) -> None:
        batch = _grouped(items)
        client = self._require_client()
        sha = self._move_script.sha

        async def send() -> None:
            # A fresh pipeline per attempt: redis-py empties one when it has run.
            pipe = client.pipeline(transaction=False)
            for (source, group, target, extra, reason), ids in batch.items():
                maxlen, drop = self._move_args(target, reason)
                # (execute_command: redis-py's cluster pipeline refuses its evalsha method, but
                # routes a raw EVALSHA by its keys, which share one slot.)
                pipe.execute_command(
                    "EVALSHA",
                    sha,
                    2,
                    source,
                    source if target is None else target,
                    group,
                    "",
                    extra,
                    reason,
                    maxlen,
                    drop,
                    *ids,
                )
            await pipe.execute()

        try:
            for attempt in (1, 2):
                try:
                    await self._retrying(send)
                    break
                except NoScriptError:
                    # The script cache is gone (a broker restart). MOVE skips entries that are
                    # no longer pending, so sending the whole batch again is safe.
                    if attempt == 2:
                        raise
                    await client.script_load(_scripts.MOVE)
        except RedisError as exc:
            raise self._error(exc, "settling messages") from None
        self._connected = True

    async def _move_entries(
        self,
        source: bytes,
        group: str,
        target: bytes | None,
        entry_ids: Sequence[bytes],
        *,
        extra_deliveries: int,
        reason: str,
        consumer: str = "",
    ) -> int:
        """Copy entries to `target` and XACK + XDEL them in `source`, atomically (Lua MOVE).

        `target=None` only XACKs + XDELs them (nothing is copied).
        """
        self._require_client()
        maxlen, drop = self._move_args(target, reason)
        try:
            moved = await self._retrying(
                lambda: self._move_script(
                    keys=[source, source if target is None else target],
                    args=[group, consumer, extra_deliveries, reason, maxlen, drop, *entry_ids],
                )
            )
        except RedisError as exc:
            raise self._error(exc, f"moving entries from {source.decode()!r}") from None
        self._connected = True
        return int(moved)

    async def _reply_entry(self, key: bytes, group: str, entry_id: bytes, reply: Reply) -> None:
        self._require_client()
        channel = reply.channel
        options = parse_xadd_options(reply.server_specific_parameters)
        args: list[Any] = [group, entry_id, *options.command_args()]
        for field, value in encode_fields(reply.payload, reply.headers, reply.content_type).items():
            args += (field, value)
        target = self.stream_key(channel)
        try:
            if self._mode is RedisMode.CLUSTER and key_slot(key) != key_slot(target):
                outcome = await self._reply_across_slots(key, group, entry_id, target, args[2:])
            else:
                outcome = await self._retrying(
                    lambda: self._reply_script(keys=[key, target], args=args)
                )
        except RedisError as exc:
            raise self._error(exc, f"reply to {channel!r}") from None
        self._connected = True
        if outcome == -1:
            raise RedisServerError(
                f"redis at {self.host}: reply to {channel!r} failed: the stream does not exist "
                "and nomkstream=True (the request stays pending)"
            )
        if outcome == 0:
            logger.warning(
                "redis.reply_skipped: message %s on %r was no longer pending (settled or taken "
                "over by another worker); the reply was not sent",
                entry_id.decode(),
                key.decode(),
                extra={"message_id": entry_id.decode(), "channel": reply.channel},
            )

    async def _reply_across_slots(
        self, key: bytes, group: str, entry_id: bytes, target: bytes, xadd_args: list[Any]
    ) -> int:
        """REPLY's steps one by one, for a reply channel in another slot of a Cluster.

        Not atomic: a crash between the XADD and the XACK delivers the request again, and its
        reply is then sent twice (at-least-once). Returns what REPLY returns.
        """
        client = self._require_client()
        pending: Any = await self._retrying(
            lambda: client.xpending_range(key, group, entry_id, entry_id, 1)
        )
        if not pending:
            return 0
        added = await self._retrying(lambda: client.execute_command("XADD", target, *xadd_args))
        if added is None:
            return -1

        async def settle() -> None:
            pipe = client.pipeline(transaction=True)
            pipe.xack(key, group, entry_id)
            pipe.xdel(key, entry_id)
            await pipe.execute()

        await self._retrying(settle)
        return 1

    # -- dead letters ---------------------------------------------------------------------------

    def dead_letter_stream(self, channel: str) -> str | None:
        """The key of `channel`'s dead-letter stream (None: nacked messages are dropped)."""
        return self.keys.dead_letters(channel)

    async def read_dead_letters(
        self,
        channel: str,
        *,
        limit: int = 100,
        dead_letter_queue: str | None = None,
        start: str = "-",
    ) -> list[DeadLetter]:
        """Up to `limit` dead letters of `channel`, oldest first, from entry id `start`.

        Each is a `RedisDeadLetter`; dead letters written by repid 2.x workers are read the
        same way. `dead_letter_queue` is ignored: the stream is `dead_letter_stream(channel)`.
        """
        client = self._require_client()
        dead = self.dead_letter_stream(channel)
        if dead is None:
            return []
        try:
            raw: Any = await client.xrange(dead, start, "+", limit)
            entries: list[tuple[bytes, dict[bytes, bytes]]] = raw
        except RedisError as exc:
            raise self._error(exc, f"reading dead letters of {channel!r}") from None
        letters: list[DeadLetter] = []
        for entry_id, fields in entries:
            payload: bytes | None
            try:
                payload, headers, content_type, count_, _ = decode_entry(fields)
            except MalformedEntryError:
                payload = fields.get(PAYLOAD)
                headers = None
                content_type = None
                count_ = 0
                raw_type = fields.get(CONTENT_TYPE)
                if raw_type is not None:
                    content_type = raw_type.decode(errors="replace")
            reason = fields.get(DEAD_REASON)
            origin = fields.get(DEAD_FROM)
            letters.append(
                RedisDeadLetter(
                    message_id=entry_id.decode(),
                    payload=payload if payload is not None else b"",
                    headers=headers,
                    content_type=content_type,
                    reason=reason.decode(errors="replace") if reason is not None else None,
                    channel=channel,
                    original_id=origin.decode() if origin is not None else None,
                    delivery_count=count_,
                    fields=dict(fields),
                )
            )
        return letters

    async def replay_dead_letters(
        self, channel: str, *, limit: int | None = None, dead_letter_queue: str | None = None
    ) -> int:
        """Move dead letters (oldest first; all, or `limit`) back to `channel`; return how many.

        Each batch of up to 100 moves atomically (Lua REPLAY); replayed messages start again with
        delivery count 0 and keep their payload, headers and content type.
        """
        self._require_client()
        dead = self.dead_letter_stream(channel)
        if dead is None:
            return 0
        self._check_one_slot(channel)
        key = self.stream_key(channel)
        moved = 0
        while limit is None or moved < limit:
            step = 100 if limit is None else min(100, limit - moved)
            try:
                done = int(await self._replay_script(keys=[dead, key], args=[step]))
            except RedisError as exc:
                raise self._error(exc, f"replaying dead letters of {channel!r}") from None
            moved += done
            if done < step:
                break
        return moved

    async def purge_dead_letters(
        self, channel: str, *, dead_letter_queue: str | None = None
    ) -> int:
        """Delete `channel`'s dead-letter stream; return how many dead letters it held."""
        client = self._require_client()
        dead = self.dead_letter_stream(channel)
        if dead is None:
            return 0
        try:
            pipe = client.pipeline(transaction=True)
            pipe.xlen(dead)
            pipe.delete(dead)
            count, _ = await pipe.execute()
        except RedisError as exc:
            raise self._error(exc, f"purging dead letters of {channel!r}") from None
        return int(count)

    async def channel_stats(self, channel: str) -> ChannelStats:
        """Depth (entries not yet delivered to the group), in flight (delivered, not settled:
        the group's pending entries), dead letters, and consumers that read in the last
        `3 * block` seconds (at least 10 s; dead workers' consumers are not counted)."""
        client = self._require_client()
        key = self.stream_key(channel)
        group_name = self.keys.group(channel)
        dead_key = self.dead_letter_stream(channel)
        try:
            pipe = client.pipeline(transaction=False)
            pipe.xlen(key)
            if dead_key is not None:
                pipe.xlen(dead_key)
            length, *dead_length = await pipe.execute()
            dead: int | None = int(dead_length[0]) if dead_length else None
            groups: list[dict[Any, Any]] = []
            if length:
                raw_groups: Any = await client.xinfo_groups(key)
                groups = raw_groups
        except ResponseError as exc:
            if "no such key" not in str(exc).lower():
                raise self._error(exc, f"reading statistics of {channel!r}") from None
            groups = []
        except RedisError as exc:
            raise self._error(exc, f"reading statistics of {channel!r}") from None
        group = next((g for g in groups if _text(g.get("name")) == group_name), None)
        if group is None:
            return ChannelStats(
                channel=channel, depth=int(length), in_flight=0, dead_letters=dead, consumers=0
            )
        pending = int(group.get("pending") or 0)
        # Every entry still in the stream is either waiting or pending: acks delete entries.
        depth = max(0, int(length) - pending)
        consumers = 0
        if int(group.get("consumers") or 0):
            active_ms = max(10.0, 3 * self.block) * 1000
            try:
                raw_consumers: Any = await client.xinfo_consumers(key, group_name)
            except RedisError as exc:
                raise self._error(exc, f"reading consumers of {channel!r}") from None
            for consumer in raw_consumers:
                idle = consumer.get("idle")  # since its last read attempt (a blocked read counts)
                if idle is not None and 0 <= int(idle) < active_ms:
                    consumers += 1
        return ChannelStats(
            channel=channel,
            depth=depth,
            in_flight=pending,
            dead_letters=dead,
            consumers=consumers,
        )


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) or value is None else str(value)


def _grouped(items: list[tuple[Any, bytes]]) -> dict[Any, list[bytes]]:
    """Entry ids by their key, in order (one command per key for a coalesced batch)."""
    grouped: dict[Any, list[bytes]] = {}
    for key, entry_id in items:
        ids = grouped.get(key)
        if ids is None:
            grouped[key] = [entry_id]
        else:
            ids.append(entry_id)
    return grouped


def _unpack_for_retry(pieces: list[bytes]) -> list[Any]:
    """The arguments of a command packed by `_codec` (for redis-py's own command path): the
    command name as text (the cluster client looks it up), the rest as bytes."""
    args: list[Any] = []
    for piece in pieces[1:]:
        # Each piece is `$<len>\r\n<bytes>\r\n`.
        start = piece.index(b"\r\n") + 2
        args.append(piece[start:-2])
    if args:
        args[0] = args[0].decode()
    return args


def _ms_to_s(milliseconds: float) -> float:
    return milliseconds / 1000


def _fixed(name: str) -> ChannelNameStrategyT:
    def group_for(channel: str) -> str:
        return name

    return group_for


def _is_auth_reply(exc: RedisError) -> bool:
    text = str(exc)
    return text.startswith(("NOAUTH", "WRONGPASS")) or "already authenticated" in text
