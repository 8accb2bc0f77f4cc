"""`RedisJobState`: the job state of `repid.jobs.state` in Redis (needs `repid[redis]`).

Keys (built by `repid.connections.redis.keys.KeyLayout`, all in one Redis Cluster slot per
queue): `{BASE}:unique:ID` and `{BASE}:schedule:KEY` are strings (a claim: `SET ... NX`; a tick:
"set if greater" by a Lua script), `{BASE}:cancelled` a sorted set of marks scored by their
expiry (milliseconds). BASE is the queue's stream `repid:QUEUE` for `RedisMessageBroker` (the
slot of the stream), and `repid-state:QUEUE` for `RedisBucketBroker` (state it keeps for
`RabbitMessageBroker`'s queues).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from repid.connections.redis.keys import KeyLayout

__all__ = ["RedisJobState"]

# KEYS[1]: the counter. ARGV[1]: the new value. -> {1 if set, the previous value or false}
_ADVANCE = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then
  return {0, current}
end
redis.call('SET', KEYS[1], ARGV[1])
return {1, current}
"""

# KEYS[1]: the counter. ARGV[1]: the value to undo, ARGV[2]: the previous one ('' = unset).
_REWIND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
"""


# KEYS[1]: the claim. ARGV[1]: the prefix its value must start with.
_RELEASE_OWNED = """
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, #ARGV[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _text(value: Any) -> str | None:
    if value is None or value is False:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisJobState:
    """A `JobStateStoreT` in Redis (see the module docstring).

    `client` returns the connected client (raising when not connected); `error` turns a
    `RedisError` into the owner's error type (without credentials).
    """

    def __init__(
        self,
        client: Callable[[], Redis | RedisCluster],
        layout: KeyLayout,
        error: Callable[[RedisError, str], Exception],
    ) -> None:
        self._client = client
        self._keys = layout
        self._error = error
        self._scripts: tuple[Redis | RedisCluster, Any, Any, Any] | None = None

    def _with_scripts(self) -> tuple[Redis | RedisCluster, Any, Any, Any]:
        client = self._client()
        scripts = self._scripts
        if scripts is None or scripts[0] is not client:
            scripts = (
                client,
                client.register_script(_ADVANCE),
                client.register_script(_REWIND),
                client.register_script(_RELEASE_OWNED),
            )
            self._scripts = scripts
        return scripts

    async def claim(self, queue: str, name: str, value: str, ttl: float | None = None) -> bool:
        """`SET key value NX [PX ttl]`."""
        px = None if ttl is None else max(1, int(ttl * 1000))
        try:
            done = await self._client().set(
                self._keys.job_state(queue, name), value, nx=True, px=px
            )
        except RedisError as exc:
            raise self._error(exc, f"claiming {name!r} on {queue!r}") from None
        return bool(done)

    async def get(self, queue: str, name: str) -> str | None:
        """`GET key`."""
        try:
            return _text(await self._client().get(self._keys.job_state(queue, name)))
        except RedisError as exc:
            raise self._error(exc, f"reading {name!r} on {queue!r}") from None

    async def release(self, queue: str, name: str, *, owner: str | None = None) -> None:
        """`DEL key` (with `owner`: a Lua script that compares the value first)."""
        key = self._keys.job_state(queue, name)
        try:
            if owner is None:
                await self._client().delete(key)
            else:
                await self._with_scripts()[3](keys=[key], args=[owner])
        except RedisError as exc:
            raise self._error(exc, f"releasing {name!r} on {queue!r}") from None

    async def advance(self, queue: str, name: str, value: int) -> tuple[bool, int | None]:
        """Set if greater, by a Lua script."""
        advance = self._with_scripts()[1]
        try:
            done, previous = await advance(keys=[self._keys.job_state(queue, name)], args=[value])
        except RedisError as exc:
            raise self._error(exc, f"advancing {name!r} on {queue!r}") from None
        text = _text(previous)
        return bool(done), None if text is None else int(text)

    async def rewind(self, queue: str, name: str, value: int, previous: int | None) -> bool:
        """Compare-and-set back, by a Lua script."""
        rewind = self._with_scripts()[2]
        try:
            done = await rewind(
                keys=[self._keys.job_state(queue, name)],
                args=[value, "" if previous is None else previous],
            )
        except RedisError as exc:
            raise self._error(exc, f"rewinding {name!r} on {queue!r}") from None
        return bool(done)

    async def mark_cancelled(self, queue: str, mark: str, expires: float) -> None:
        """`ZADD` the mark and drop the expired ones, in one transaction."""
        key = self._keys.cancelled(queue)
        try:
            async with self._client().pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, "-inf", int(time.time() * 1000))
                pipe.zadd(key, {mark: int(expires * 1000)})
                await pipe.execute()
        except RedisError as exc:
            raise self._error(exc, f"marking {mark!r} cancelled on {queue!r}") from None

    async def cancelled(self, queue: str) -> frozenset[str]:
        """`ZRANGEBYSCORE key now +inf`."""
        try:
            found = await self._client().zrangebyscore(
                self._keys.cancelled(queue), int(time.time() * 1000), "+inf"
            )
        except RedisError as exc:
            raise self._error(exc, f"reading the cancelled jobs of {queue!r}") from None
        return frozenset(t for t in (_text(item) for item in found) if t is not None)

    async def unmark_cancelled(self, queue: str, mark: str) -> None:
        """`ZREM key mark`."""
        try:
            await self._client().zrem(self._keys.cancelled(queue), mark)
        except RedisError as exc:
            raise self._error(exc, f"unmarking {mark!r} on {queue!r}") from None
