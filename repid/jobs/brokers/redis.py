"""Redis job brokers (need `pip install repid[redis]`).

`RedisMessageBroker` is the message layer's `RedisServer` (Redis Streams with a consumer
group) plus:

* queues: a queue is a stream; `declare_queue` creates it with its consumer group
  (`XGROUP CREATE ... MKSTREAM`), and `publish_job` publishes with `NOMKSTREAM`, so enqueueing
  to an undeclared queue fails with `QueueNotDeclaredError` at no extra round trip;
* delayed delivery (deferred jobs, retries): a delayed job is stored in a hash
  `{repid:QUEUE}:delayed:JOB_ID` and its id in the sorted set `{repid:QUEUE}:delayed`, scored by
  its due time in Redis's own clock (`TIME`: producers' and workers' clocks do not matter);
  both are in the Redis Cluster slot of the queue's stream `repid:QUEUE` (see
  `repid.connections.redis.keys`). Once a worker subscribed to the queue (and until the broker
  disconnects), a task of the broker runs a Lua script that moves the due jobs into the stream
  (XADD + DEL + ZREM, atomically), waking when the next one is due and at least every
  `delayed_poll_interval` seconds (default 0.5 s). Due jobs of a queue nobody consumes wait in
  Redis until a worker subscribes. Delays survive worker crashes, and Redis restarts as far as
  Redis persists (AOF or RDB);
* job state (`repid.jobs.state`) in the same Redis: a unique job's claim
  `{repid:QUEUE}:unique:JOB_ID` is taken by the same Lua script that adds the job to the stream
  or the delayed set (a duplicate raises `DuplicateJobError`, nothing is added); its value
  `TOKEN:d` (delayed) or `TOKEN:s:ENTRY` (in the stream) says where the job is; scheduler
  ticks `{repid:QUEUE}:schedule:KEY`, cancellation marks `{repid:QUEUE}:cancelled`;
* cancellation (`withdraw_job`): a delayed job is removed; a queued unique job is removed from
  the stream (its claim records its entry) unless a worker already read it; anything else is
  marked, and the worker drops or stops it;
* priorities are NOT honoured: a stream is first-in first-out. The job's priority travels in
  the `job-priority` header only.

`RedisBucketBroker` stores each bucket as a string `repid:bucket:ID` written with
`SET ... PX ttl`, so Redis itself expires it. It also keeps job state for a message broker
that has none (`RabbitMessageBroker`), under `{repid-state:QUEUE}:unique:ID`,
`{repid-state:QUEUE}:schedule:KEY` and `{repid-state:QUEUE}:cancelled`. Each bucket is one
key, so on a Redis Cluster buckets spread over the masters by their id.

Both take the URLs `RedisServer` takes: one node, any node of a Redis Cluster (found out on
connect), or `redis+sentinel://` (see `repid.connections.redis._client`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from repid.connections.abc import DeliveryCapacity, MessageCallbackT, MessageData, SubscriberT
from repid.connections.base import redact_url
from repid.connections.redis import RedisServer, RedisServerError, encode_fields
from repid.connections.redis._client import (
    ClientSettings,
    close_client,
    open_client,
    parse_redis_url,
)
from repid.connections.redis.keys import KeyLayout, bucket_key, default_job_state_name
from repid.jobs.brokers.redis_state import RedisJobState
from repid.jobs.buckets import AnyBucketT, decode_bucket
from repid.jobs.errors import DuplicateJobError, QueueNotDeclaredError
from repid.jobs.headers import UNIQUE
from repid.jobs.priorities import PrioritiesT
from repid.jobs.state import unique_name

__all__ = ["RedisBucketBroker", "RedisMessageBroker"]

logger = logging.getLogger("repid.jobs")

# The Redis clock, in milliseconds.
_NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS[1]: the sorted set of delayed ids, KEYS[2]: the stream.
# ARGV[1]: how many to move at most, ARGV[2]: the hash key prefix, ARGV[3]: the claim prefix.
# -> {moved, milliseconds until the next one is due (-1: none)}
_MOVE_DUE = (
    _NOW_MS
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(due) do
  local key = ARGV[2] .. id
  local fields = redis.call('HGETALL', key)
  if #fields > 0 then
    local entry = redis.call('XADD', KEYS[2], '*', unpack(fields))
    local claim = ARGV[3] .. id
    local owner = redis.call('GET', claim)
    if owner then
      local token = string.match(owner, '^([^:]*):d$')
      if token then
        redis.call('SET', claim, token .. ':s:' .. entry)
      end
    end
  end
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], id)
end
local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #next == 0 then
  return {#due, -1}
end
return {#due, math.max(0, tonumber(next[2]) - now)}
"""
)

# KEYS[1]: the stream, KEYS[2]: the delayed set, KEYS[3]: the job's hash, KEYS[4]: its claim.
# ARGV[1]: the delay (ms), ARGV[2]: the job id, ARGV[3]: the claim's token ('' for a job that
# is not unique), ARGV[4...]: the entry's fields.
# -> 1 done, 0 the id is claimed (a duplicate), -1 no such queue.
_PUBLISH_DELAYED = (
    _NOW_MS
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if ARGV[3] ~= '' and not redis.call('SET', KEYS[4], ARGV[3] .. ':d', 'NX') then
  return 0
end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], unpack(ARGV, 4))
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), ARGV[2])
return 1
"""
)

# KEYS[1]: the stream, KEYS[2]: the claim. ARGV[1]: the claim's token, ARGV[2...]: the
# entry's fields. -> 1 done, 0 the id is claimed (a duplicate), -1 no such queue.
_PUBLISH_UNIQUE = """
if not redis.call('SET', KEYS[2], ARGV[1] .. ':q', 'NX') then
  return 0
end
local entry = redis.call('XADD', KEYS[1], 'NOMKSTREAM', '*', unpack(ARGV, 2))
if not entry then
  redis.call('DEL', KEYS[2])
  return -1
end
redis.call('SET', KEYS[2], ARGV[1] .. ':s:' .. entry)
return 1
"""

# KEYS[1]: the delayed set, KEYS[2]: the job's hash, KEYS[3]: its claim, KEYS[4]: the stream.
# ARGV[1]: the job id, ARGV[2]: the consumer group. -> 1 removed, 0 not found waiting.
_WITHDRAW = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2], KEYS[3])
  return 1
end
local claim = redis.call('GET', KEYS[3])
local entry = claim and string.match(claim, '^[^:]*:s:(.+)$')
if entry then
  local pending = redis.pcall('XPENDING', KEYS[4], ARGV[2], entry, entry, 1)
  if type(pending) == 'table' and #pending == 0 and redis.call('XDEL', KEYS[4], entry) == 1 then
    redis.call('DEL', KEYS[3])
    return 1
  end
end
return 0
"""

_MOVE_BATCH = 100


def _flat(message: MessageData) -> list[Any]:
    fields = encode_fields(message.payload, message.headers, message.content_type, message.reply_to)
    flat: list[Any] = []
    for name, value in fields.items():
        flat += [name, value]
    return flat


def _token(message: MessageData) -> str:
    """The unique claim's token a job's message carries (`job-unique`)."""
    return (message.headers or {}).get(UNIQUE) or "-"


class RedisMessageBroker(RedisServer):
    """A job-layer message broker on Redis Streams (see the module docstring).

    `dsn` is the Redis URL; every other keyword goes to `RedisServer`.
    """

    supports_delayed_publish = True
    supports_priorities = False
    supports_unique_jobs = True

    def __init__(
        self,
        dsn: str = "redis://localhost:6379/0",
        *,
        delayed_poll_interval: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(dsn, **kwargs)
        if delayed_poll_interval <= 0:
            raise ValueError("delayed_poll_interval must be positive")
        self.delayed_poll_interval = delayed_poll_interval
        self._delayed_channels: set[str] = set()
        self._mover: asyncio.Task[None] | None = None
        self._mover_wake: asyncio.Event | None = None
        self._mover_next = 0.0  # when (loop time) the mover looks next
        self._scripts: dict[str, Any] = {}
        self._job_state = RedisJobState(lambda: self.client, self.keys, self.command_error)

    @property
    def job_state(self) -> RedisJobState:
        """Job state in this broker's Redis (see `repid.jobs.state`)."""
        return self._job_state

    async def connect(self) -> None:
        await super().connect()
        if not self._scripts:
            client = self.client
            self._scripts = {
                "move": client.register_script(_MOVE_DUE),
                "delayed": client.register_script(_PUBLISH_DELAYED),
                "unique": client.register_script(_PUBLISH_UNIQUE),
                "withdraw": client.register_script(_WITHDRAW),
            }

    async def disconnect(self) -> None:
        mover, self._mover = self._mover, None
        if mover is not None:
            # redis-py sends a command inside `asyncio.wait_for`, which before Python 3.12
            # drops a cancellation that arrives just as the send completes: the mover then
            # ends on its own at its next look (it is no longer `self._mover`), and is
            # cancelled again meanwhile, never awaited unbounded.
            while not mover.done():
                mover.cancel()
                await asyncio.wait([mover], timeout=0.5)
            if not mover.cancelled():
                mover.exception()  # (retrieved: it ended, nothing to report)
        self._delayed_channels.clear()
        self._scripts = {}
        await super().disconnect()

    # -- queues -------------------------------------------------------------------------------

    async def declare_queue(self, name: str) -> None:
        await self.ensure_group(name)

    async def is_declared(self, name: str) -> bool:
        try:
            return bool(await self.client.exists(self.stream_key(name)))
        except RedisError as exc:
            raise self.command_error(exc, f"checking queue {name!r}") from None

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
        if delay is not None and delay > 0:
            await self._publish_delayed(queue, message, delay, message_id, unique)
            return
        if unique:
            await self._publish_unique(queue, message, message_id)
            return
        try:
            await self.publish(
                channel=queue, message=message, server_specific_parameters={"nomkstream": True}
            )
        except RedisServerError:
            # NOMKSTREAM refused it, or something else failed: tell the two apart.
            if not await self.is_declared(queue):
                raise QueueNotDeclaredError(queue) from None
            raise

    def _script(self, name: str) -> Any:
        _ = self.client  # raises RedisNotConnectedError before connect()
        return self._scripts[name]

    async def _publish_delayed(
        self, queue: str, message: MessageData, delay: float, job_id: str, unique: bool
    ) -> None:
        keys = [
            self.stream_name_for(queue),
            self.keys.delayed(queue),
            self.keys.delayed_entry_prefix(queue) + job_id,
            self.keys.job_state(queue, unique_name(job_id)),
        ]
        token = _token(message) if unique else ""
        args = [math.ceil(delay * 1000), job_id, token, *_flat(message)]
        try:
            done = int(await self._script("delayed")(keys=keys, args=args))
        except RedisError as exc:
            raise self.command_error(exc, f"scheduling a delayed message on {queue!r}") from None
        self._answer(done, queue, job_id)
        wake = self._mover_wake
        if (
            wake is not None
            and queue in self._delayed_channels
            and asyncio.get_running_loop().time() + delay < self._mover_next
        ):
            wake.set()  # due before the mover's next look

    async def _publish_unique(self, queue: str, message: MessageData, job_id: str) -> None:
        keys = [self.stream_name_for(queue), self.keys.job_state(queue, unique_name(job_id))]
        try:
            done = int(
                await self._script("unique")(keys=keys, args=[_token(message), *_flat(message)])
            )
        except RedisError as exc:
            raise self.command_error(exc, f"publish to {queue!r}") from None
        self._answer(done, queue, job_id)

    @staticmethod
    def _answer(done: int, queue: str, job_id: str) -> None:
        if done == 0:
            raise DuplicateJobError(job_id, queue)
        if done < 0:
            raise QueueNotDeclaredError(queue)

    async def withdraw_job(self, queue: str, job_id: str) -> bool:
        """Remove the delayed job `job_id`, or the queued unique one nobody read yet (and its
        claim); True if it was removed."""
        keys = [
            self.keys.delayed(queue),
            self.keys.delayed_entry_prefix(queue) + job_id,
            self.keys.job_state(queue, unique_name(job_id)),
            self.stream_name_for(queue),
        ]
        try:
            done = await self._script("withdraw")(keys=keys, args=[job_id, self.keys.group(queue)])
        except RedisError as exc:
            raise self.command_error(exc, f"cancelling job {job_id!r} on {queue!r}") from None
        return bool(done)

    # -- moving due delayed jobs --------------------------------------------------------------

    async def move_due(self, queue: str) -> int:
        """Move `queue`'s delayed messages that are due into its stream now; return how many."""
        moved, _ = await self._move_due(queue)
        return moved

    async def _move_due(self, queue: str) -> tuple[int, float | None]:
        """(how many moved, seconds until the next one is due or None)."""
        keys = [self.keys.delayed(queue), self.stream_name_for(queue)]
        args = [
            _MOVE_BATCH,
            self.keys.delayed_entry_prefix(queue),
            self.keys.job_state(queue, "unique:"),
        ]
        moved = 0
        while True:
            try:
                done, wait_ms = await self._script("move")(keys=keys, args=args)
            except RedisError as exc:
                raise self.command_error(exc, f"moving due messages of {queue!r}") from None
            moved += int(done)
            if int(done) < _MOVE_BATCH:
                return moved, None if int(wait_ms) < 0 else int(wait_ms) / 1000

    async def _move_loop(self) -> None:
        wake = self._mover_wake
        assert wake is not None
        me = asyncio.current_task()
        while self._mover is me:  # (`disconnect` clears it)
            wait = self.delayed_poll_interval
            for queue in list(self._delayed_channels):
                try:
                    _, next_due = await self._move_due(queue)
                except Exception as exc:  # a connection blip: try again on the next tick
                    logger.warning(
                        "redis.delayed_move_failed: %s: %s",
                        queue,
                        exc,
                        extra={"channel": queue, "error": type(exc).__name__},
                    )
                    continue
                if next_due is not None:
                    wait = min(wait, next_due)
            wake.clear()
            wait = max(wait, 0.001)
            self._mover_next = asyncio.get_running_loop().time() + wait
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), wait)

    async def subscribe(
        self,
        *,
        channels_to_callbacks: Mapping[str, MessageCallbackT],
        capacity: DeliveryCapacity,
    ) -> SubscriberT:
        subscriber: SubscriberT = await super().subscribe(
            channels_to_callbacks=channels_to_callbacks, capacity=capacity
        )
        # While anyone consumes these queues, keep moving their due delayed messages in.
        self._delayed_channels.update(channels_to_callbacks)
        if self._mover is None or self._mover.done():
            self._mover_wake = asyncio.Event()
            self._mover = asyncio.get_running_loop().create_task(
                self._move_loop(), name="repid-redis-delayed"
            )
        return subscriber


class RedisBucketBroker:
    """Buckets in Redis strings `repid:bucket:ID`, expiring by Redis TTL (`SET ... PX`).

    `use_result_bucket=True` marks the broker as the results store. Several instances on the
    same Redis database share the buckets, so a results broker and an arguments broker with
    the same `dsn` chain jobs.
    """

    def __init__(self, dsn: str = "redis://localhost:6379/0", use_result_bucket: bool = False):
        self.use_result_bucket = use_result_bucket
        self._target = parse_redis_url(dsn)
        self._safe_dsn = redact_url(dsn)
        self._client: Redis | RedisCluster | None = None
        self._sentinel: Sentinel | None = None
        self._job_state = RedisJobState(
            self._require, KeyLayout(stream_name=default_job_state_name), self._error
        )

    def __repr__(self) -> str:
        return f"RedisBucketBroker({self._safe_dsn!r}, use_result_bucket={self.use_result_bucket})"

    @property
    def is_connected(self) -> bool:
        return self._client is not None

    async def connect(self) -> None:
        if self._client is None:
            target = self._target
            settings = ClientSettings(
                username=target.username,
                password=target.password,
                max_connections=50,
                socket_timeout=30.0,
                retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=6),
            )
            try:
                opened = await open_client(target, settings)
            except RedisError as exc:
                raise ConnectionError(
                    f"cannot connect to {self._safe_dsn}: {type(exc).__name__}"
                ) from None
            except ValueError as exc:  # e.g. a database other than 0 on a Redis Cluster
                raise ConnectionError(f"cannot connect to {self._safe_dsn}: {exc}") from None
            self._client, self._sentinel = opened.client, opened.sentinel

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        sentinel, self._sentinel = self._sentinel, None
        if client is not None:
            await close_client(client, sentinel)

    def _require(self) -> Redis | RedisCluster:
        if self._client is None:
            raise ConnectionError(f"{self!r} is not connected: call `await connect()` first")
        return self._client

    def _error(self, exc: RedisError, doing: str) -> Exception:
        return ConnectionError(f"{self._safe_dsn}: {doing} failed: {type(exc).__name__}")

    @property
    def job_state(self) -> RedisJobState:
        """Job state in this Redis, for a message broker without its own (`RabbitMessageBroker`;
        see `repid.jobs.state`): keys `{repid-state:QUEUE}:...`, apart from any Redis queue's."""
        return self._job_state

    async def store_raw(self, id_: str, raw: bytes, ttl: float | None) -> None:
        px = None if ttl is None else max(1, int(ttl * 1000))
        await self._require().set(bucket_key(id_), raw, px=px)

    async def get_raw(self, id_: str) -> bytes | None:
        raw = await self._require().get(bucket_key(id_))
        return raw.encode() if isinstance(raw, str) else raw

    async def get(self, id_: str) -> AnyBucketT | None:
        raw = await self.get_raw(id_)
        return None if raw is None else decode_bucket(raw)

    async def delete(self, id_: str) -> None:
        await self._require().delete(bucket_key(id_))
