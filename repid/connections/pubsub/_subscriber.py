"""StreamingPull consumption: streams per subscription, flow control, leases, reconnects.

Per subscription (`PubsubSubscription`) these tasks run:

* one reader per stream (`PubsubServer.pull_streams` of them, at most one per task slot): it
  opens a StreamingPull stream, reads responses into the subscription's one local buffer and,
  on a broken stream, reopens it with exponential backoff and jitter. Readers stop reading
  while the buffer holds `max_outstanding` messages, so the HTTP/2 window pushes back on the
  server even where the server ignores `max_outstanding_messages` (the emulator does). Several
  streams because the server paces each one: the emulator sends a stream 100 messages about
  every 50 ms (~2,000/s), whatever the flow control allows;
* the deliverer (the shared `DeliveryLoop`) hands buffered messages to the worker's callback, one
  at a time, in order, and only while the worker has a free slot (`capacity.free > 0`).

Settlement uses unary Acknowledge / ModifyAckDeadline calls rather than the stream, so a
message delivered before a stream broke can still be acked afterwards (ack ids stay valid
across streams), and the caller learns whether the broker took the ack. Concurrent
settlements are coalesced into one call per batch.

Every message read and not yet settled is "leased": the server's keep-alive loop extends its
ack deadline every third of a deadline so long-running actors are not redelivered, up to
`max_lease` seconds: a delivered message held unsettled that long is handed back (deadline 0)
and logged. While a stream of the subscription is broken the subscription is RECOVERING; it is
ACTIVE again once every stream is re-established. Undelivered buffered messages are returned
(deadline 0) on pause and close, and so is whatever a stream still carries after pause/close
half-closed it (pause does not wait for the streams to end, close does, up to
`close_timeout`); a broken stream keeps its buffer, since ack ids outlive the stream. A crashed
process stops extending: Pub/Sub redelivers its messages once their ack deadline (the
stream's, default 10 s) passes.

Streams are ended with a half-close (`done_writing`) rather than a cancel: the Pub/Sub emulator
keeps delivering to cancelled streams until their gRPC deadline. With a `stream_lifetime` (the
emulator's default) every stream has such a deadline and is rotated before it: half-closed at a
random moment in the last 40% of its lifetime, read to its end (whatever the buffer holds) and
reopened at once, with no backoff and without the subscription turning RECOVERING. A killed
worker's streams thus end at their deadline instead of taking messages forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

from repid.connections.abc import DeliveryCapacity, MessageCallbackT
from repid.connections.backoff import Backoff
from repid.connections.base import BaseSubscriber
from repid.connections.coalesce import Coalescer
from repid.connections.delivery import DeliveryLoop, Leases, OpenedT
from repid.connections.pubsub import _proto
from repid.connections.pubsub._message import (
    CLOUDEVENTS_CONTENT_TYPE_ATTRIBUTE,
    CONTENT_TYPE_ATTRIBUTE,
    EMPTY_MARKER_ATTRIBUTE,
    PubsubReceivedMessage,
)

if TYPE_CHECKING:
    from repid.connections.pubsub._server import PubsubServer

__all__ = ["PubsubSubscriber", "PubsubSubscription", "PullCall"]

logger = logging.getLogger("repid.connections.pubsub")

# Errors after which a stream is simply reopened (logged as warnings). Others (NOT_FOUND,
# PERMISSION_DENIED, ...) are reopened too, with the same backoff, but logged as errors: the
# subscription may be created or the permission granted while the worker runs.
TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.CANCELLED,
    }
)

PullCall = grpc.aio.StreamStreamCall[bytes, list[_proto.ReceivedMessage]]

# Pub/Sub caps a request at 512 KiB of ack ids; ack ids are ~100-200 bytes.
MAX_IDS_PER_REQUEST = 1000

# A stream that is still open this long after it was accepted counts as established.
_STREAM_SETTLE_SECONDS = 0.5


class _StreamEnded(Exception):
    """The server ended the stream without an error status."""


def _settlements(send: Callable[[list[str]], Awaitable[None]]) -> Coalescer[str, None]:
    """Ack ids submitted while a call is in flight go together in the next call (at most
    `MAX_IDS_PER_REQUEST`); each caller learns whether its own id was taken."""

    async def send_batch(ack_ids: list[str]) -> list[Exception | None] | None:
        try:
            await send(ack_ids)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.INVALID_ARGUMENT or len(ack_ids) == 1:
                raise
            # One stale ack id (the emulator rejects those; the service ignores them) fails the
            # whole call: settle the others one by one.
            results: list[Exception | None] = []
            for ack_id in ack_ids:
                try:
                    await send([ack_id])
                except Exception as one:
                    results.append(one)
                else:
                    results.append(None)
            return results
        return None

    return Coalescer(send_batch, take=lambda pending: MAX_IDS_PER_REQUEST)


class _Stream:
    """One StreamingPull stream of a subscription: opens, reads into the shared buffer, reopens.

    Its client id stays the same across reopens, as Pub/Sub asks, so the service can carry the
    old stream's state over to the new one.
    """

    __slots__ = (
        "_failing",
        "_wake",
        "call",
        "client_id",
        "ended",
        "ending",
        "max_outstanding",
        "state",
        "task",
    )

    def __init__(self, state: PubsubSubscription, client_id: str, max_outstanding: int) -> None:
        self.state = state
        self.client_id = client_id
        self.max_outstanding = max_outstanding
        self.call: PullCall | None = None
        # A call we half-closed ourselves (pause/close): its end is not a failure.
        self.ending: PullCall | None = None
        # True from a stream failure until a new stream is established; `is_connected` and the
        # subscription's state read it. A stream still opening does not count as failing.
        self._failing = False
        self.ended = asyncio.Event()  # set while no call is open
        self.ended.set()
        self.task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # interrupts a reconnect backoff sleep

    @property
    def failing(self) -> bool:
        return self._failing

    @failing.setter
    def failing(self, value: bool) -> None:
        if value != self._failing:
            self._failing = value
            self.state._stream_health_changed(self if value else None)

    def start(self, name: str) -> None:
        self.task = self.state._subscriber._spawn(self._read_loop(), name)

    def wake(self) -> None:
        self._wake.set()

    def half_close(self) -> PullCall | None:
        """End the open call with a half-close (no wait); it is cancelled if it lingers."""
        call = self.call
        if call is None or call is self.ending:
            return call
        self.ending = call
        asyncio.get_running_loop().call_later(self.state.server.close_timeout, _cancel, call)
        # The reader must read on to see the end of the stream.
        self.state._room.set()
        done_writing = asyncio.ensure_future(call.done_writing())
        done_writing.add_done_callback(_ignore_result)
        return call

    async def end(self) -> None:
        """Half-close the call and wait (up to `close_timeout`) until the server ended it."""
        call = self.half_close()
        if call is None:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.ended.wait(), self.state.server.close_timeout)
        if not call.done():
            call.cancel()

    async def _read_loop(self) -> None:
        state = self.state
        server = state.server
        running = state._running
        room = state._room
        take = state._take
        # Jitter spreads reconnecting workers: by default a delay in [ceiling/2, ceiling]; with
        # repid 2.x's reconnect_jitter_factor j, ceiling * (1 +- j).
        backoff = Backoff(
            server.initial_backoff, server.max_backoff, spread=server.reconnect_jitter_factor
        )
        while not state._closed:
            if not running.is_set():
                await running.wait()
                continue
            opened_at = time.monotonic()
            received_any = False
            channel = server._channel
            call = server.streaming_pull(state.path)
            self.call = call
            self.ended.clear()
            failure: Exception | None = None
            rotation: asyncio.TimerHandle | None = None
            try:
                await call.write(
                    _proto.encode_streaming_pull_request(
                        subscription=state.path,
                        stream_ack_deadline_seconds=server.ack_deadline,
                        client_id=self.client_id,
                        max_outstanding_messages=self.max_outstanding,
                    )
                )
                await call.wait_for_connection()
                server.note_answer()
                rotation = self._schedule_rotation(call, opened_at)
                # The emulator accepts a stream before it checks the subscription (NOT_FOUND
                # follows); it counts as established once it survived a moment or delivered.
                asyncio.get_running_loop().call_later(
                    _STREAM_SETTLE_SECONDS, self._mark_established, call
                )
                while True:
                    if self.ending is not call:
                        # An ending stream is read on to its end whatever the buffer holds:
                        # what it still carries is leased to this worker (its lease extended
                        # from the buffer) instead of waiting out a deadline unread.
                        await room.wait()
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        raise _StreamEnded
                    server.note_answer()
                    if not received_any:
                        received_any = True
                        self.failing = False
                        backoff.reset()
                    take(response)  # type: ignore[arg-type]  # EOF handled above
            except asyncio.CancelledError:
                # grpc.aio raises CancelledError from a call whose channel was closed: when the
                # server replaced a silent channel, that is this stream failing, not this task
                # being cancelled (the reader must go on, or the subscription is dead).
                if server._channel is channel or _cancelling():
                    raise
                failure = _StreamEnded("the connection was replaced")
            except Exception as exc:  # any failure of this stream: reopen it after a backoff
                failure = exc
            finally:
                if rotation is not None:
                    rotation.cancel()
                ended_by_us = self.ending is call
                if self.call is call:
                    self.call = None
                if ended_by_us:
                    self.ending = None
                if not call.done():
                    call.cancel()
                self.ended.set()
            if failure is None or state._closed or ended_by_us or not running.is_set():
                continue  # we ended it (pause/close)
            self.failing = True
            if received_any or time.monotonic() - opened_at > server.stability_threshold:
                backoff.reset()
            state._log_stream_error(failure, backoff.attempt)
            # Buffered messages stay: ack ids outlive the stream, so they are still
            # delivered (and their leases extended) while the stream is reopened.
            await self._sleep(backoff.next())

    def _schedule_rotation(self, call: PullCall, opened_at: float) -> asyncio.TimerHandle | None:
        """End `call` gracefully before its deadline (`PubsubServer.stream_lifetime`).

        Each stream picks its moment at random in the last 40% of the lifetime (counted from
        when the call was made, as its deadline is), so a worker's streams are not all
        reopened at once.
        """
        lifetime = self.state.server.stream_lifetime
        if lifetime is None:
            return None
        delay = lifetime * random.uniform(0.6, 1.0) - (time.monotonic() - opened_at)
        return asyncio.get_running_loop().call_later(max(delay, 0.0), self._rotate, call)

    def _rotate(self, call: PullCall) -> None:
        if self.call is call and not call.done():
            self.half_close()  # the read loop reads it to its end and opens the next one

    def _mark_established(self, call: PullCall) -> None:
        if self.call is call and not call.done():
            self.failing = False

    async def _sleep(self, delay: float) -> None:
        """Wait out a backoff delay; `wake()` cuts it short (resume, close)."""
        self._wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)


def _cancelling() -> bool:
    """True if the current task has been asked to cancel (Python 3.11+; else False)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


def _cancel(call: PullCall) -> None:
    if not call.done():
        call.cancel()


def _ignore_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: a failed half-close of a broken stream is expected


def _split(limit: int, streams: int) -> list[int]:
    """Share `limit` outstanding messages out over `streams` streams (at least 1 each)."""
    streams = max(1, min(streams, limit))
    base, extra = divmod(limit, streams)
    return [base + (1 if i < extra else 0) for i in range(streams)]


class PubsubSubscription:
    """One subscription: its streams, buffer, leases and settlement batches.

    Several StreamingPull streams (`PubsubServer.pull_streams`) read into one buffer: a stream
    is paced by the server (the emulator sends 100 messages per stream every ~50 ms), so more
    streams raise the ceiling. The worker's slots are shared out among them as
    `max_outstanding_messages`, and the shared buffer's read stop bounds them all together.
    """

    def __init__(
        self,
        *,
        server: PubsubServer,
        subscriber: PubsubSubscriber,
        channel: str,
        path: str,
        callback: MessageCallbackT,
        capacity: DeliveryCapacity,
    ) -> None:
        self.server = server
        self._subscriber = subscriber
        self.channel = channel
        self.path = path
        self._callback = callback
        self._capacity = capacity
        limit = capacity.limit if capacity.limit is not None else capacity.unbounded_batch
        self._max_outstanding = limit
        client_id = uuid.uuid4().hex
        self._streams = [
            _Stream(self, f"{client_id}-{i}", share)
            for i, share in enumerate(_split(limit, server.pull_streams))
        ]
        # Deliveries after which Pub/Sub dead-letters a message on its own (the subscription's
        # dead-letter policy, read once at start; None: no policy, or it could not be read).
        self.delivery_limit: int | None = None
        # ack id -> monotonic time it was read; buffered and delivered-but-unsettled messages.
        self.leased: dict[str, float] = {}
        # The delivered ones, by ack id, oldest delivery first (the max lease counts from there).
        self.delivered: Leases[str, PubsubReceivedMessage] = Leases()
        self._delivery: DeliveryLoop[_proto.ReceivedMessage] = DeliveryLoop(
            capacity, self._open, source="pubsub"
        )
        self._buffer = self._delivery.buffer
        self._room = asyncio.Event()
        self._room.set()
        self._running = asyncio.Event()  # set while not paused
        self._running.set()
        self._closed = False
        self._acks = _settlements(self._send_acks)
        self._returns = _settlements(self._send_returns)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        for i, stream in enumerate(self._streams):
            stream.start(f"pubsub-read:{self.channel}:{i}")
        self._subscriber._spawn(self._delivery.run(), f"pubsub-deliver:{self.channel}")
        self._subscriber._spawn(self._read_delivery_limit(), f"pubsub-policy:{self.channel}")

    async def _read_delivery_limit(self) -> None:
        # The worker logs an unroutable message once, when it gives it up; with a dead-letter
        # policy Pub/Sub may give it up first, so the worker must know when that will be.
        try:
            self.delivery_limit = await self.server.delivery_limit(self.path)
        except Exception as exc:
            reason = repr(exc)
            if isinstance(exc, grpc.aio.AioRpcError):
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    return  # the streams report a missing subscription
                reason = f"{exc.code().name}: {exc.details()}"
            logger.warning(
                "pubsub.policy_unknown: could not read the dead-letter policy of %s (%s); a "
                "message no actor takes may be dead-lettered by Pub/Sub without a log line",
                self.path,
                reason,
                extra={"subscription": self.path},
            )

    @property
    def failing(self) -> bool:
        """A stream failed and has not been re-established yet."""
        return any(stream.failing for stream in self._streams)

    def _stream_health_changed(self, failed: _Stream | None) -> None:
        if failed is not None:
            self._subscriber._mark_recovering(f"a StreamingPull stream of {self.path} broke")
        else:
            self._subscriber._check_recovered()

    @property
    def is_active(self) -> bool:
        return not self._closed and self._running.is_set()

    async def pause(self) -> None:
        """Stop delivering; half-close the streams without waiting for them to end.

        Whatever the streams still carry before they end is handed straight back (deadline 0),
        so there is nothing to wait for here; `close` waits for the ends.
        """
        if self._closed or not self._running.is_set():
            return
        self._running.clear()
        self._delivery.pause()
        for stream in self._streams:
            stream.half_close()
        await self._return_buffered()

    async def resume(self) -> None:
        if self._closed:
            return
        self._running.set()
        self._delivery.resume()
        for stream in self._streams:
            stream.wake()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._running.set()  # let waiting loops observe `_closed`
        self._delivery.close()
        for stream in self._streams:
            stream.wake()
        await asyncio.gather(*(stream.end() for stream in self._streams))
        tasks = [stream.task for stream in self._streams]
        for task in tasks:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._return_buffered()
        for stream in self._streams:
            stream.failing = False

    # -- reading -------------------------------------------------------------------------------

    def _take(self, response: list[_proto.ReceivedMessage]) -> None:
        now = time.monotonic()
        leased = self.leased
        if self._closed or not self._running.is_set():
            # Read while pausing/closing: give it straight back.
            for received in response:
                leased[received.ack_id] = now
                self._spawn_return(received.ack_id)
            return
        for received in response:
            leased[received.ack_id] = now
        self._buffer.extend(response)
        if len(self._buffer) >= self._max_outstanding:
            self._room.clear()
        self._delivery.wake()

    def _log_stream_error(self, exc: BaseException, attempt: int) -> None:
        if isinstance(exc, grpc.aio.AioRpcError):
            code, details = exc.code(), exc.details()
            level = logging.WARNING if code in TRANSIENT_CODES else logging.ERROR
        elif isinstance(exc, _StreamEnded):
            code, details, level = None, str(exc) or "stream ended by the server", logging.WARNING
        else:
            code, details, level = None, repr(exc), logging.ERROR
        extra = {
            "subscription": self.path,
            "code": code.name if code is not None else None,
            "details": details,
            "attempt": attempt,
        }
        if code == grpc.StatusCode.NOT_FOUND:
            logger.error(
                "pubsub.subscription_not_found: the subscription %s does not exist (create it "
                "and its topic first: Repid does not create Pub/Sub resources); retrying",
                self.path,
                extra=extra,
            )
            return
        logger.log(
            level,
            "pubsub.stream_lost: subscription %s: %s%s; reopening the stream",
            self.path,
            code.name if code is not None else "error",
            f" ({details})" if details else "",
            extra=extra,
        )

    # -- delivering ----------------------------------------------------------------------------

    def _open(self, received: _proto.ReceivedMessage) -> OpenedT | None:
        if len(self._buffer) < self._max_outstanding:
            self._room.set()
        if received.ack_id not in self.leased:
            return None  # lease given up in the meantime (held longer than max_lease)
        message = self._wrap(received)
        self.delivered.add(received.ack_id, message)
        return message, self._callback

    def _wrap(self, received: _proto.ReceivedMessage) -> PubsubReceivedMessage:
        msg = received.message
        attributes = msg.attributes
        content_type = None
        if attributes:
            content_type = attributes.pop(CONTENT_TYPE_ATTRIBUTE, None)
            if content_type is None:
                content_type = attributes.pop(CLOUDEVENTS_CONTENT_TYPE_ATTRIBUTE, None)
            attributes.pop(EMPTY_MARKER_ATTRIBUTE, None)
        return PubsubReceivedMessage(
            state=self,
            ack_id=received.ack_id,
            payload=msg.data,
            headers=attributes or None,
            content_type=content_type,
            message_id=msg.message_id or None,
            delivery_attempt=received.delivery_attempt,
        )

    # -- settling ------------------------------------------------------------------------------

    async def settle_ack(self, ack_id: str) -> None:
        self.leased.pop(ack_id, None)
        self.delivered.discard(ack_id)
        await self._acks.submit(ack_id)

    async def settle_return(self, ack_id: str) -> None:
        self.leased.pop(ack_id, None)
        self.delivered.discard(ack_id)
        await self._returns.submit(ack_id)

    def _spawn_return(self, ack_id: str) -> None:
        future = self._returns.submit_nowait(ack_id)
        self.leased.pop(ack_id, None)
        future.add_done_callback(_consume_exception)

    async def _return_buffered(self) -> None:
        """Give undelivered messages back (deadline 0) so another consumer gets them now."""
        if not self._buffer:
            return
        ids = [received.ack_id for received in self._buffer if received.ack_id in self.leased]
        self._buffer.clear()
        self._room.set()
        for ack_id in ids:
            self.leased.pop(ack_id, None)
        if not ids:
            return
        try:
            await self.server.modify_ack_deadline(
                self.path, ids, 0, timeout=self.server.close_timeout
            )
        except Exception as exc:  # their deadline expires on its own: redelivered later
            logger.warning(
                "pubsub.return_failed",
                extra={"subscription": self.path, "count": len(ids), "error": repr(exc)},
            )

    async def _send_acks(self, ack_ids: list[str]) -> None:
        await self.server.acknowledge(self.path, ack_ids)

    async def _send_returns(self, ack_ids: list[str]) -> None:
        await self.server.modify_ack_deadline(self.path, ack_ids, 0)

    # -- keep-alive ----------------------------------------------------------------------------

    async def _extend_one_by_one(self, ack_ids: list[str], timeout: float) -> None:
        """Extend leases singly after a batch failed; stop leasing ids refused as invalid."""
        for ack_id in ack_ids:
            try:
                await self.server.modify_ack_deadline(
                    self.path, [ack_id], self.server.ack_deadline, timeout=timeout
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    self.leased.pop(ack_id, None)  # stale (e.g. the broker restarted)
                else:
                    self._log_extension_failure([ack_id], exc)
                    return  # the broker is unreachable: the next tick tries again

    def _log_extension_failure(self, ack_ids: list[str], exc: Exception) -> None:
        logger.warning(
            "pubsub.lease_extension_failed",
            extra={"subscription": self.path, "count": len(ack_ids), "error": repr(exc)},
        )

    async def keep_alive(self) -> None:
        """Extend the deadline of leased messages; send a heartbeat on the open stream."""
        # Bounded by half a deadline: during an outage the next tick tries again.
        timeout = self.server.ack_deadline / 2
        max_lease = self.server.max_lease
        if self.leased and max_lease is not None:
            # A buffered message waiting longer than max_lease is not extended any more (Pub/Sub
            # redelivers it); delivered ones are given back by the subscription's lease watch.
            cutoff = time.monotonic() - max_lease
            delivered = self.delivered
            expired = [
                ack_id
                for ack_id, since in self.leased.items()
                if since < cutoff and ack_id not in delivered
            ]
            for ack_id in expired:
                del self.leased[ack_id]
        if self.leased:
            ids = list(self.leased)
            for start in range(0, len(ids), MAX_IDS_PER_REQUEST):
                chunk = ids[start : start + MAX_IDS_PER_REQUEST]
                try:
                    await self.server.modify_ack_deadline(
                        self.path, chunk, self.server.ack_deadline, timeout=timeout
                    )
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                        # A stale id fails the whole call: find it, keep extending the rest.
                        await self._extend_one_by_one(chunk, timeout)
                    else:
                        self._log_extension_failure(chunk, exc)
                except Exception as exc:
                    self._log_extension_failure(chunk, exc)
        for stream in self._streams:
            call = stream.call
            if call is not None and not call.done() and call is not stream.ending:
                # An empty request keeps an idle stream from being closed by the service.
                with contextlib.suppress(Exception):
                    await call.write(_HEARTBEAT)


_HEARTBEAT = _proto.encode_streaming_pull_request()


def _consume_exception(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.warning("pubsub.return_failed", extra={"error": repr(future.exception())})


class PubsubSubscriber(BaseSubscriber):
    """The handle `PubsubServer.subscribe` returns: pause, resume and close every stream."""

    def __init__(
        self,
        server: PubsubServer,
        callbacks: dict[str, MessageCallbackT],
        capacity: DeliveryCapacity,
    ) -> None:
        super().__init__(
            capacity=capacity, channels=callbacks, max_lease=server.max_lease, log_name="pubsub"
        )
        self._server = server
        self._subscriptions = [
            PubsubSubscription(
                server=server,
                subscriber=self,
                channel=channel,
                path=server.subscription_path(channel),
                callback=callback,
                capacity=capacity,
            )
            for channel, callback in callbacks.items()
        ]

    def start(self) -> None:
        for subscription in self._subscriptions:
            subscription.start()
        self._start_lease_watch()

    def _check_recovered(self) -> None:
        if not any(subscription.failing for subscription in self._subscriptions):
            self._mark_recovered()

    async def _on_pause(self) -> None:
        await asyncio.gather(*(s.pause() for s in self._subscriptions))

    async def _on_resume(self) -> None:
        await asyncio.gather(*(s.resume() for s in self._subscriptions))

    async def _on_close(self) -> None:
        await asyncio.gather(*(s.close() for s in self._subscriptions))

    def _lease_tables(self) -> Iterable[Leases[str, PubsubReceivedMessage]]:
        return [s.delivered for s in self._subscriptions]

    @property
    def subscriptions(self) -> list[PubsubSubscription]:
        """One per channel: its streams, buffer and leases."""
        return self._subscriptions
