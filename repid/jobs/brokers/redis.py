"""Redis job brokers (need `pip install repid[redis]`).

`RedisMessageBroker` is the message layer's `RedisServer` (Redis Streams with a consumer
group) plus:

* queues: a queue is a stream; `declare_queue` creates it with its consumer group
  (`XGROUP CREATE ... MKSTREAM`), and `publish_job` publishes with `NOMKSTREAM`, so enqueueing
  to an undeclared queue fails with `QueueNotDeclaredError` at no extra round trip;
* delayed delivery (retries): a delayed message is stored in a hash
  `{repid:QUEUE}:delayed:ID` and its id in the sorted set `{repid:QUEUE}:delayed` scored by
  its due time (milliseconds, the publisher's clock); both are in the Redis Cluster slot of
  the queue's stream `repid:QUEUE` (see `repid.connections.redis.keys`). Once a worker
  subscribed to the queue (and until the broker disconnects), a task of the broker runs a Lua
  script every `delayed_poll_interval` seconds (default 0.5 s) that moves the due messages into
  the stream (XADD + DEL + ZREM, atomically). Due messages of a queue nobody consumes wait in
  Redis until a worker subscribes; nothing is lost in a crash;
* priorities are NOT honoured: a stream is first-in first-out. The job's priority travels in
  the `job-priority` header only;
* unique jobs are not deduplicated: enqueueing `Job(id_=...)` twice adds two entries (both
  with that job id).

`RedisBucketBroker` stores each bucket as a string `repid:bucket:ID` written with
`SET ... PX ttl`, so Redis itself expires it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from repid.connections.abc import DeliveryCapacity, MessageCallbackT
from repid.connections.base import redact_url
from repid.connections.redis import RedisServer, RedisServerError
from repid.connections.redis._codec import encode_fields
from repid.connections.redis.keys import bucket_key
from repid.connections.redis.subscriber import RedisSubscriber
from repid.data import MessageData
from repid.jobs.buckets import AnyBucketT, decode_bucket
from repid.jobs.errors import QueueNotDeclaredError
from repid.jobs.priorities import PrioritiesT

__all__ = ["RedisBucketBroker", "RedisMessageBroker"]

logger = logging.getLogger("repid.jobs")

# KEYS[1]: the sorted set of delayed ids, KEYS[2]: the stream.
# ARGV[1]: now (ms), ARGV[2]: how many to move at most, ARGV[3]: the hash key prefix.
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  local key = ARGV[3] .. id
  local fields = redis.call('HGETALL', key)
  if #fields > 0 then
    redis.call('XADD', KEYS[2], '*', unpack(fields))
  end
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], id)
end
return #due
"""

_MOVE_BATCH = 100


class RedisMessageBroker(RedisServer):
    """A job-layer message broker on Redis Streams (see the module docstring).

    `dsn` is the Redis URL; every other keyword goes to `RedisServer`.
    """

    supports_delayed_publish = True
    supports_priorities = False

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
        self._move_due_script: Any = None

    async def connect(self) -> None:
        await super().connect()
        if self._move_due_script is None:
            self._move_due_script = self._require_client().register_script(_MOVE_DUE)

    async def disconnect(self) -> None:
        mover, self._mover = self._mover, None
        if mover is not None:
            mover.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await mover
        self._delayed_channels.clear()
        self._move_due_script = None
        await super().disconnect()

    # -- queues -------------------------------------------------------------------------------

    async def declare_queue(self, name: str) -> None:
        await self._ensure_group(self.stream_key(name), self.keys.group(name))

    async def is_declared(self, name: str) -> bool:
        try:
            return bool(await self._require_client().exists(self.stream_key(name)))
        except RedisError as exc:
            raise self._error(exc, f"checking queue {name!r}") from None

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
            await self._publish_delayed(queue, message, delay)
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

    async def _publish_delayed(self, queue: str, message: MessageData, delay: float) -> None:
        client = self._require_client()
        if not await self.is_declared(queue):
            raise QueueNotDeclaredError(queue)
        entry = uuid.uuid4().hex
        zset = self.keys.delayed(queue)
        due_ms = int((time.time() + delay) * 1000)
        fields = encode_fields(
            message.payload, message.headers, message.content_type, message.reply_to
        )
        try:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hset(self.keys.delayed_entry_prefix(queue) + entry, mapping=fields)  # type: ignore[arg-type]
                pipe.zadd(zset, {entry: due_ms})
                await pipe.execute()
        except RedisError as exc:
            raise self._error(exc, f"scheduling a delayed message on {queue!r}") from None

    async def move_due(self, queue: str) -> int:
        """Move `queue`'s delayed messages that are due into its stream now; return how many."""
        self._require_client()
        keys = [self.keys.delayed(queue), self.stream_key(queue)]
        prefix = self.keys.delayed_entry_prefix(queue)
        moved = 0
        while True:
            try:
                done = int(
                    await self._move_due_script(
                        keys=keys, args=[int(time.time() * 1000), _MOVE_BATCH, prefix]
                    )
                )
            except RedisError as exc:
                raise self._error(exc, f"moving due messages of {queue!r}") from None
            moved += done
            if done < _MOVE_BATCH:
                return moved

    async def _move_loop(self) -> None:
        while True:
            for queue in list(self._delayed_channels):
                try:
                    await self.move_due(queue)
                except Exception as exc:  # a connection blip: try again on the next tick
                    logger.warning(
                        "redis.delayed_move_failed: %s: %s",
                        queue,
                        exc,
                        extra={"channel": queue, "error": type(exc).__name__},
                    )
            await asyncio.sleep(self.delayed_poll_interval)

    async def subscribe(
        self,
        *,
        channels_to_callbacks: dict[str, MessageCallbackT],  # type: ignore[override]
        capacity: DeliveryCapacity,
    ) -> RedisSubscriber:
        subscriber = await super().subscribe(
            channels_to_callbacks=channels_to_callbacks, capacity=capacity
        )
        # While anyone consumes these queues, keep moving their due delayed messages in.
        self._delayed_channels.update(channels_to_callbacks)
        if self._mover is None or self._mover.done():
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
        self._dsn = dsn
        self._safe_dsn = redact_url(dsn)
        self._client: Redis | None = None

    def __repr__(self) -> str:
        return f"RedisBucketBroker({self._safe_dsn!r}, use_result_bucket={self.use_result_bucket})"

    @property
    def is_connected(self) -> bool:
        return self._client is not None

    async def connect(self) -> None:
        if self._client is None:
            client = Redis.from_url(self._dsn, decode_responses=False, socket_connect_timeout=5.0)
            try:
                await client.ping()
            except RedisError as exc:
                await client.aclose()
                raise ConnectionError(
                    f"cannot connect to {self._safe_dsn}: {type(exc).__name__}"
                ) from None
            self._client = client

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _require(self) -> Redis:
        if self._client is None:
            raise ConnectionError(f"{self!r} is not connected: call `await connect()` first")
        return self._client

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
