"""`RedisSubscriber`: the XREADGROUP loop, crash recovery (XAUTOCLAIM) and keep-alive (XCLAIM).

One task reads every subscribed channel in one call and delivers the entries, in order, by
awaiting the channel's callback. A read is the FETCH script (a non-blocking XREADGROUP per
channel, each through the channel's own consumer group, whose reply comes packed in one string,
cheap to parse) while entries are waiting, and a blocking XREADGROUP (up to `block` seconds)
when there were none. Channels read through different groups (the default: one group per
channel) cannot share one blocking XREADGROUP, so then the wait is a blocking XREAD on every
stream past the ids FETCH saw last, and the next FETCH takes what arrived.

Flow control: it never delivers while `capacity.free == 0` and asks for
`COUNT = capacity.free // number_of_channels` (at least 1, at most `batch_size`); when only a
few slots are free while tasks run, it pauses 2 ms so that the next read fetches a batch rather
than a message at a time.
XREADGROUP applies COUNT per stream, so with several channels one read can return up to
`number_of_channels - 1` entries more than the free slots; those wait in a small local buffer
(kept alive like in-flight ones) and are delivered as slots free up.

Entries that this consumer holds but has not delivered (the buffer, or a read whose reply was lost
to a cancellation or a dropped connection) are released on `close`: each goes back to the end of
its stream as a copy, in one atomic Lua step, so other workers get it at once. Anything that
escapes even that (the process dies) is reclaimed by other workers after `claim_idle`.

A delivered entry stays this consumer's, kept alive by the keep-alive task, until it is settled
or until it was held for `max_lease` seconds: then it goes back to the end of its stream (with
its delivery count raised) and the event is logged, so that a message nobody settles does not
stay with one worker forever. State: a failed read makes the subscription RECOVERING until a
read succeeds again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisPyConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisPyTimeoutError

from repid.connections.abc import DeliveryCapacity, MessageCallbackT
from repid.connections.backoff import Backoff
from repid.connections.base import BaseSubscriber
from repid.connections.delivery import DeliveryLoop, Leases, OpenedT
from repid.connections.redis._codec import (
    ORIGIN_ID,
    MalformedEntryError,
    decode_entry,
    parse_packed,
)
from repid.connections.redis._errors import scrub
from repid.connections.redis.message import RedisReceivedMessage

if TYPE_CHECKING:
    from repid.connections.redis.server import RedisServer

__all__ = ["ChannelState", "RedisSubscriber"]

logger = logging.getLogger("repid.connections.redis")

_BACKOFF_BASE = 0.05
_RELEASE_PAGE = 1000
_REFILL_PAUSE = 0.002  # seconds; see the read loop


class ChannelState:
    """Per-channel bookkeeping of one subscription."""

    __slots__ = (
        "callback",
        "claim_cursor",
        "dead_key",
        "group",
        "held",
        "in_flight",
        "key",
        "name",
    )

    def __init__(
        self,
        name: str,
        callback: MessageCallbackT,
        *,
        key: bytes,
        group: str,
        dead_key: bytes | None,
    ) -> None:
        self.name = name
        self.key = key
        """The channel's stream."""
        self.group = group
        """The consumer group it is read through."""
        self.dead_key = dead_key
        """Its dead-letter stream (None: nacked messages are dropped)."""
        self.callback = callback
        self.in_flight: Leases[bytes, RedisReceivedMessage] = Leases()
        """Delivered to the worker and not settled yet, by entry id, oldest first."""
        self.held: set[bytes] = set()
        """Read from Redis, waiting in the buffer for a free slot."""
        self.claim_cursor: bytes = b"0-0"


# (channel, entry id, fields or None for a deleted entry, times delivered by Redis)
_Entry = tuple[ChannelState, bytes, "dict[bytes, bytes] | None", int]
# The stream keys of one hash slot and their consumer groups, in the same order.
_Shard = tuple[list[bytes], list[str]]


def _shards(channels: list[ChannelState], *, by_slot: bool) -> list[_Shard]:
    """Group the channels' streams by Redis Cluster slot (all together when not `by_slot`)."""
    shards: dict[int, _Shard] = {}
    for state in channels:
        keys, groups = shards.setdefault(key_slot(state.key) if by_slot else 0, ([], []))
        keys.append(state.key)
        groups.append(state.group)
    return list(shards.values())


def next_entry_id(entry_id: bytes) -> bytes:
    """The smallest stream id after `entry_id` (`ms-seq` -> `ms-(seq+1)`)."""
    ms, _, seq = entry_id.partition(b"-")
    return b"%b-%d" % (ms, int(seq or b"0") + 1)


class RedisSubscriber(BaseSubscriber):
    """A running subscription of `RedisServer` (implements `SubscriberT`)."""

    def __init__(
        self,
        *,
        server: RedisServer,
        channels_to_callbacks: Mapping[str, MessageCallbackT],
        capacity: DeliveryCapacity,
        consumer: str,
        max_lease: float | None = None,
    ) -> None:
        super().__init__(
            capacity=capacity,
            channels=channels_to_callbacks,
            max_lease=max_lease,
            log_name="redis",
        )
        self._server = server
        self.consumer = consumer
        keys = server.keys
        self._channels = []
        for name, callback in channels_to_callbacks.items():
            dead = keys.dead_letters(name)
            self._channels.append(
                ChannelState(
                    name,
                    callback,
                    key=server.stream_key(name),
                    group=keys.group(name),
                    dead_key=None if dead is None else dead.encode(),
                )
            )
        self._by_key = {state.key: state for state in self._channels}
        if len(self._by_key) < len(self._channels):
            raise ValueError("two of the subscribed channels map to the same Redis stream")
        self._streams: dict[Any, Any] = {state.key: b">" for state in self._channels}
        self._keys = [state.key for state in self._channels]
        self._groups = [state.group for state in self._channels]
        self._shards = _shards(self._channels, by_slot=server.is_cluster)
        """The channels by Redis Cluster hash slot (one shard when not on a Cluster): a script
        or a multi-stream XREAD may only touch the keys of one slot."""
        self._single_group = len(set(self._groups)) == 1 and len(self._shards) == 1
        """All channels share one consumer group (and one slot): one blocking XREADGROUP can
        wait on all."""
        self._wakers: dict[int, asyncio.Task[Any]] = {}
        """Per shard, a blocking XREAD waiting for its streams to grow (several shards)."""
        self._wake_ids: dict[Any, Any] = {state.key: b"$" for state in self._channels}
        self._fast_fetch = True
        self._drained = False  # see _run: the last blocking read came back short
        self._delivery: DeliveryLoop[_Entry] = DeliveryLoop(
            capacity, self._open_entry, source="redis"
        )
        self._buffer = self._delivery.buffer
        self._active = asyncio.Event()
        self._active.set()
        self._need_groups = False
        self._claim_due = 0.0  # claim at once on start: pick up what dead workers left
        self._prune_due = 0.0
        self._task: asyncio.Task[None] | None = None
        # Malformed entries are dead-lettered by background tasks, in the order they were read.
        self._malformed_order = asyncio.Lock()

    # -- SubscriberT ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Create missing consumer groups, then start the read loop and the keep-alive."""
        for state in self._channels:
            await self._server._ensure_group(state.key, state.group)
        self._task = self._spawn(self._run(), f"repid-redis-read-{self.consumer}")
        self._spawn(self._keepalive(), f"repid-redis-keepalive-{self.consumer}")
        self._start_lease_watch()

    async def _on_pause(self) -> None:
        """Stop reading; a read already in progress is buffered until `resume`."""
        self._active.clear()
        self._delivery.pause()

    async def _on_resume(self) -> None:
        self._delivery.resume()
        self._active.set()

    async def _on_close(self) -> None:
        """Stop reading and release every held but undelivered message back to its stream.

        Messages already delivered stay this consumer's (and are kept alive) until the worker
        settles them, or until the server disconnects.
        """
        self._delivery.close()
        self._active.set()
        task = self._task
        if task is not None and not task.done():
            # Never cancel in the middle of a callback (a half-handed message); every Redis call
            # is safe to cancel because `_release_undelivered` sweeps this consumer's entries.
            if not self._delivery.delivering:
                task.cancel()
            await asyncio.wait([task])
        await self._stop_wakers()
        self._buffer.clear()
        for state in self._channels:
            state.held.clear()
        await self._release_undelivered()

    def _lease_tables(self) -> Iterable[Leases[bytes, RedisReceivedMessage]]:
        return [state.in_flight for state in self._channels]

    # -- the read loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        server = self._server
        capacity = self._capacity
        delivery = self._delivery
        backoff = Backoff(_BACKOFF_BASE, server.retry_delay)
        while not self._closed:
            try:
                if not self._active.is_set():
                    await self._active.wait()
                    continue
                if self._buffer:
                    await delivery.deliver_available()
                    if self._buffer and not self._closed and self._active.is_set():
                        await capacity.wait_for_free()
                    continue
                free = capacity.free
                if free <= 0:
                    await capacity.wait_for_free()
                    continue
                limit = capacity.limit
                if limit is not None and capacity.in_use and free < limit >> 2:
                    # Only a few slots are free and tasks are running: a short pause lets more
                    # of them finish, so the next read fetches a batch instead of a message or
                    # two (one round trip per message would cap throughput at 1/RTT).
                    await asyncio.sleep(_REFILL_PAUSE)
                    free = capacity.free
                    if free <= 0:
                        continue
                client = server._require_client()
                if self._need_groups:
                    for state in self._channels:
                        await server._ensure_group(state.key, state.group)
                    self._need_groups = False
                per_stream = max(1, free // len(self._channels))
                if server.batch_size is not None and per_stream > server.batch_size:
                    per_stream = server.batch_size
                if server.claims_enabled and time.monotonic() >= self._claim_due:
                    more = await self._claim(per_stream)
                    if not more:
                        self._claim_due = time.monotonic() + server.claim_interval
                    if self._buffer:
                        continue
                if server.prune_idle is not None and time.monotonic() >= self._prune_due:
                    await self._prune(server.prune_idle)
                if self._fast_fetch and self._drained:
                    # The last blocking read got less than it asked for: the stream was empty
                    # then, so block again at once (XREADGROUP > returns whatever arrived in
                    # between) instead of a FETCH round trip that would find nothing - at low
                    # rates that halves the round trips, and the latency, per message.
                    self._drained = False
                elif self._fast_fetch and len(self._shards) > 1:
                    if await self._fetch_shards(per_stream):
                        self._read_succeeded(backoff)
                        continue
                elif self._fast_fetch:
                    # Most reads find entries waiting: take them packed (see FETCH), and block
                    # only when there is nothing.
                    packed = await self._fetch(per_stream)
                    if packed[:1] == b"!":
                        self._wake_ids = dict(zip(self._keys, packed[1:].split(b","), strict=True))
                    elif packed:
                        self._buffer_packed(packed)
                        self._read_succeeded(backoff)
                        continue
                elif not self._single_group:
                    each = await self._read_each_group(client, per_stream)
                    if each:
                        self._buffer_response(each)
                        self._read_succeeded(backoff)
                        continue
                if self._single_group:
                    response: Any = await client.xreadgroup(
                        self._groups[0],
                        self.consumer,
                        self._streams,
                        count=per_stream,
                        block=int(server.block * 1000),
                    )
                    if response:
                        self._buffer_response(response)
                    self._drained = len(self._buffer) < per_stream
                elif len(self._shards) == 1:
                    # A wake-up only: what arrived is read through the groups by the next FETCH.
                    await client.xread(self._wake_ids, count=1, block=int(server.block * 1000))
                else:
                    await self._wait_shards(client)
                self._read_succeeded(backoff)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop must survive anything; it logs and backs off
                delay = backoff.next()
                self._log_failure(exc, delay)
                self._mark_recovering(f"{type(exc).__name__}: {self._scrub(exc)}")
                await asyncio.sleep(delay)

    def _read_succeeded(self, backoff: Backoff) -> None:
        self._server._connected = True
        backoff.reset()
        self._mark_recovered()

    def _scrub(self, exc: BaseException) -> str:
        return scrub(str(exc), self._server._password)

    def _log_failure(self, exc: Exception, delay: float) -> None:
        server = self._server
        text = scrub(str(exc), server._password)
        if isinstance(exc, ResponseError) and "NOGROUP" in text:
            self._need_groups = True
            logger.warning(
                "redis.group_missing: redis at %s lost the stream or group of %s; recreating it",
                server.host,
                self.channels,
                extra={"server": server.host, "channels": self.channels},
            )
        elif isinstance(exc, (RedisPyConnectionError, RedisPyTimeoutError, ConnectionError)):
            server._connected = False
            logger.warning(
                "redis.connection_lost: redis at %s: %s: %s; retrying in %.2f s",
                server.host,
                type(exc).__name__,
                text,
                delay,
                extra={"server": server.host, "error": type(exc).__name__},
            )
        else:
            logger.error(
                "redis.read_failed: redis at %s: %s: %s; retrying in %.2f s",
                server.host,
                type(exc).__name__,
                text,
                delay,
                extra={"server": server.host, "error": type(exc).__name__},
            )

    async def _read_each_group(self, client: Any, per_stream: int) -> list[Any]:
        """Non-blocking XREADGROUP per channel (when the server refuses the FETCH script).

        With nothing read, the wake-up ids become each group's last-delivered id: XREAD past
        it returns at once if anything arrived meanwhile, so nothing waits for the timeout.
        """
        response: list[Any] = []
        for state in self._channels:
            part = await client.xreadgroup(
                state.group, self.consumer, {state.key: b">"}, count=per_stream
            )
            if part:
                response.extend(part.items() if isinstance(part, dict) else part)
        if not response:
            pipe = client.pipeline(transaction=False)
            for state in self._channels:
                pipe.xinfo_groups(state.key)
            infos = await pipe.execute()
            for state, groups in zip(self._channels, infos, strict=True):
                for info in groups:
                    name = info["name"]
                    if (name.decode() if isinstance(name, bytes) else name) == state.group:
                        self._wake_ids[state.key] = info["last-delivered-id"]
        return response

    async def _fetch(self, per_stream: int, shard: _Shard | None = None) -> bytes:
        server = self._server
        want_ids = "0" if self._single_group else "1"
        keys, groups = (self._keys, self._groups) if shard is None else shard
        try:
            packed: bytes = await server._fetch_script(
                keys=keys, args=[self.consumer, per_stream, want_ids, *groups]
            )
        except ResponseError as exc:
            text = str(exc)
            if any(code in text for code in ("NOGROUP", "LOADING", "BUSY", "OOM")):
                raise
            # A server that refuses XREADGROUP inside scripts: plain XREADGROUP from now on.
            self._fast_fetch = False
            logger.warning(
                "redis.fetch_script_refused: redis at %s: %s; reading without the script",
                server.host,
                scrub(text, server._password),
                extra={"server": server.host},
            )
            return b""
        return packed

    async def _fetch_shards(self, per_stream: int) -> bool:
        """FETCH every shard at once (each slot may be on another master); buffer what came.

        Entries read from healthy shards are buffered even when another shard failed (they
        are this consumer's now); that failure is raised afterwards. True if anything came.
        """
        results = await asyncio.gather(
            *(self._fetch(per_stream, shard) for shard in self._shards), return_exceptions=True
        )
        got = False
        failure: BaseException | None = None
        for shard, result in zip(self._shards, results, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
            elif result[:1] == b"!":
                self._wake_ids.update(zip(shard[0], result[1:].split(b","), strict=True))
            elif result:
                self._buffer_packed(result)
                got = True
        if failure is not None and not got:
            raise failure
        if failure is not None:
            logger.debug(
                "redis.fetch_partial: reading one slot's channels failed: %s",
                scrub(str(failure), self._server._password),
                extra={"channels": self.channels, "error": type(failure).__name__},
            )
        return got

    async def _wait_shards(self, client: Any) -> None:
        """Block until a stream of any shard grows (or `block` passes).

        One XREAD per shard, in parallel; those still waiting when another one returns keep
        waiting into the next round (cancelling them would cost their connections), and one
        whose ids are stale just returns at once: a wake-up is only a hint to FETCH again.
        """
        block_ms = int(self._server.block * 1000)
        for index, (keys, _) in enumerate(self._shards):
            if index not in self._wakers:
                streams = {key: self._wake_ids[key] for key in keys}
                self._wakers[index] = asyncio.ensure_future(
                    client.xread(streams, count=1, block=block_ms)
                )
        done, _ = await asyncio.wait(self._wakers.values(), return_when=asyncio.FIRST_COMPLETED)
        failure: BaseException | None = None
        for index, task in list(self._wakers.items()):
            if task in done:
                del self._wakers[index]
                failure = failure or task.exception()
        if failure is not None:
            raise failure

    async def _stop_wakers(self) -> None:
        wakers, self._wakers = self._wakers, {}
        for task in wakers.values():
            task.cancel()
        if wakers:
            await asyncio.wait(wakers.values())

    def _buffer_packed(self, packed: bytes) -> None:
        by_key = self._by_key
        buffer = self._buffer
        for key, entry_id, fields in parse_packed(packed):
            state = by_key[key]
            state.held.add(entry_id)
            buffer.append((state, entry_id, fields, 1))

    def _buffer_response(self, response: Any) -> None:
        by_key = self._by_key
        buffer = self._buffer
        items = response.items() if isinstance(response, dict) else response
        for key, entries in items:
            state = by_key[key]
            held = state.held
            if isinstance(entries, list) and len(entries) == 1 and isinstance(entries[0], list):
                entries = entries[0]  # RESP3 wraps each stream's entries once more
            for entry_id, fields in entries:
                held.add(entry_id)
                buffer.append((state, entry_id, fields, 1))

    def _open_entry(self, entry: _Entry) -> OpenedT | None:
        """A buffered entry as a message for the worker (None: nothing to deliver)."""
        state, entry_id, fields, times = entry
        state.held.discard(entry_id)
        if fields is None:
            return None  # deleted (trimmed) entry: nothing to deliver
        try:
            payload, headers, content_type, earlier, reply_to = decode_entry(fields)
        except MalformedEntryError as exc:
            self._spawn(
                self._dead_letter_malformed(state, entry_id, str(exc)),
                f"repid-redis-dead-letter-{entry_id.decode()}",
            )
            return None
        message = RedisReceivedMessage(
            server=self._server,
            state=state,
            entry_id=entry_id,
            payload=payload,
            headers=headers,
            content_type=content_type,
            delivery_count=earlier + times - 1,
            origin_id=fields.get(ORIGIN_ID),
            reply_to=reply_to,
        )
        state.in_flight.add(entry_id, message)
        return message, state.callback

    async def _dead_letter_malformed(self, state: ChannelState, entry_id: bytes, why: str) -> None:
        async with self._malformed_order:
            await self._move_malformed(state, entry_id, why)

    async def _move_malformed(self, state: ChannelState, entry_id: bytes, why: str) -> None:
        logger.error(
            "redis.malformed_entry: entry %s on channel %r is not a Repid message (%s); %s",
            entry_id.decode(),
            state.name,
            why,
            "dropping it (no dead-letter stream)"
            if state.dead_key is None
            else f"moving it to {state.dead_key.decode()!r}",
            extra={"channel": state.name},
        )
        try:
            await self._server._move_entries(
                state.key,
                state.group,
                state.dead_key,
                [entry_id],
                extra_deliveries=0,
                reason=f"malformed: {why}",
            )
        except Exception as exc:
            logger.error(
                "redis.dead_letter_failed: could not move entry %s of %r: %s; it stays pending "
                "and will be retried after the claim idle time",
                entry_id.decode(),
                state.name,
                exc,
                extra={"channel": state.name, "error": type(exc).__name__},
            )

    # -- recovery -------------------------------------------------------------------------------

    async def _claim(self, per_stream: int) -> bool:
        """XAUTOCLAIM entries idle for `claim_idle`; return True if a scan is not finished."""
        server = self._server
        client = server._require_client()
        idle_ms = int(server.claim_idle * 1000)
        more = False
        for state in self._channels:
            cursor, entries = await self._autoclaim(client, state, idle_ms, per_stream)
            state.claim_cursor = cursor
            if cursor not in (b"0-0", "0-0"):
                more = True
            claimed = [
                (entry_id, fields)
                for entry_id, fields in entries
                if entry_id is not None
                and entry_id not in state.in_flight
                and entry_id not in state.held
            ]
            if not claimed:
                continue
            for entry_id, _ in claimed:
                state.held.add(entry_id)
            # XAUTOCLAIM does not say how often an entry was delivered; XPENDING does.
            pipe = client.pipeline(transaction=False)
            for entry_id, _ in claimed:
                pipe.xpending_range(
                    state.key, state.group, entry_id, entry_id, 1, consumername=self.consumer
                )
            infos = await pipe.execute()
            for (entry_id, fields), info in zip(claimed, infos, strict=True):
                times = int(info[0]["times_delivered"]) if info else 1
                self._buffer.append((state, entry_id, fields, times))
            logger.info(
                "redis.claimed: took over %d idle message(s) on channel %r",
                len(claimed),
                state.name,
                extra={"channel": state.name},
            )
        return more

    async def _prune(self, prune_idle: float) -> None:
        """Drop long-idle consumers that hold nothing (see the PRUNE script); log, never raise."""
        server = self._server
        self._prune_due = time.monotonic() + max(server.claim_interval, min(600.0, prune_idle / 4))
        for state in self._channels:
            try:
                removed = await server._prune_script(
                    keys=[state.key], args=[state.group, int(prune_idle * 1000), self.consumer]
                )
            except Exception as exc:
                logger.warning(
                    "redis.prune_failed: redis at %s: %s: %s",
                    server.host,
                    type(exc).__name__,
                    scrub(str(exc), server._password),
                    extra={"server": server.host, "error": type(exc).__name__},
                )
                continue
            if removed:
                logger.info(
                    "redis.pruned: removed %d idle consumer(s) with nothing pending from %r",
                    removed,
                    state.name,
                    extra={"channel": state.name},
                )

    async def _autoclaim(
        self, client: Any, state: ChannelState, idle_ms: int, count: int
    ) -> tuple[bytes, list[Any]]:
        """XAUTOCLAIM (Redis >= 6.2), or the same with XPENDING + XCLAIM on older servers."""
        server = self._server
        if server._has_xautoclaim:
            try:
                response = await client.xautoclaim(
                    state.key,
                    state.group,
                    self.consumer,
                    idle_ms,
                    start_id=state.claim_cursor,
                    count=count,
                )
                return response[0], response[1]
            except ResponseError as exc:
                if "unknown command" not in str(exc).lower():
                    raise
                server._has_xautoclaim = False
                logger.info(
                    "redis.no_xautoclaim: redis at %s predates XAUTOCLAIM (6.2); claiming with "
                    "XPENDING + XCLAIM",
                    server.host,
                    extra={"server": server.host},
                )
        pending = await client.xpending_range(
            state.key, state.group, state.claim_cursor, "+", count
        )
        if not pending:
            return b"0-0", []
        idle = [p["message_id"] for p in pending if p["time_since_delivered"] >= idle_ms]
        cursor = b"0-0" if len(pending) < count else next_entry_id(pending[-1]["message_id"])
        if not idle:
            return cursor, []
        # XCLAIM re-checks the idle time, so an entry refreshed meanwhile stays with its owner.
        entries = await client.xclaim(state.key, state.group, self.consumer, idle_ms, idle)
        return cursor, entries

    async def _keepalive(self) -> None:
        """Reset the idle time of held and in-flight entries so no other worker claims them.

        With nothing to refresh it sends a PING instead, so that `is_connected` follows the
        broker even while the read loop waits for free slots.
        """
        server = self._server
        interval = server.keepalive_interval
        while True:
            await asyncio.sleep(interval)
            busy = [state for state in self._channels if state.in_flight or state.held]
            if not busy and self._closed:
                return  # nothing left to keep alive (a disconnect stops it in any case)
            try:
                client = server._require_client()
                if busy:
                    pipe = client.pipeline(transaction=False)
                    for state in busy:
                        pipe.xclaim(
                            state.key,
                            state.group,
                            self.consumer,
                            0,
                            [*state.in_flight, *state.held],
                            justid=True,
                        )
                    await pipe.execute()
                else:
                    await client.ping()
                server._connected = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, (RedisPyConnectionError, RedisPyTimeoutError, ConnectionError)):
                    server._connected = False
                logger.warning(
                    "redis.keepalive_failed: redis at %s: %s: %s",
                    server.host,
                    type(exc).__name__,
                    scrub(str(exc), server._password),
                    extra={"server": server.host, "error": type(exc).__name__},
                )

    async def _release_undelivered(self) -> None:
        """Put back every entry this consumer holds that the worker never got."""
        server = self._server
        try:
            client = server._require_client()
        except ConnectionError:
            return
        for state in self._channels:
            try:
                while True:
                    pending = await client.xpending_range(
                        state.key,
                        state.group,
                        "-",
                        "+",
                        _RELEASE_PAGE + len(state.in_flight),
                        consumername=self.consumer,
                    )
                    ids = [
                        bytes(p["message_id"])  # type: ignore[arg-type]
                        for p in pending
                        if p["message_id"] not in state.in_flight
                    ]
                    if not ids:
                        break
                    released = await server._move_entries(
                        state.key,
                        state.group,
                        state.key,
                        ids,
                        extra_deliveries=0,
                        reason="",
                        consumer=self.consumer,
                    )
                    logger.info(
                        "redis.released: put %d undelivered message(s) back on channel %r",
                        released,
                        state.name,
                        extra={"channel": state.name},
                    )
                if not pending and not state.in_flight:
                    # Nothing of ours is pending: drop the consumer so the group stays tidy.
                    await client.xgroup_delconsumer(state.key, state.group, self.consumer)
            except Exception as exc:
                logger.warning(
                    "redis.release_failed: redis at %s: %s: %s; the messages stay pending and "
                    "other workers reclaim them after %s s",
                    server.host,
                    type(exc).__name__,
                    scrub(str(exc), server._password),
                    server.claim_idle,
                    extra={"server": server.host, "error": type(exc).__name__},
                )
