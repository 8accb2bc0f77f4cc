"""Coalescing of concurrent calls: what arrives while a round trip is out goes in the next one.

The worker settles and publishes from many concurrent tasks. One request per message would
cap throughput at one round trip per message; instead the first call starts a flush, the calls
arriving meanwhile queue up, and each flush sends everything queued (up to what one request
may carry) in one request. Every caller still waits for, and gets the outcome of, the request
that carried its item.

Used by the built-in servers for acks and settlements (Redis, Pub/Sub), pipelined publishes
(Redis) and PublishRequests (Pub/Sub).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

T = TypeVar("T")
R = TypeVar("R")

SendT = Callable[[list[T]], Awaitable["Sequence[R | Exception] | None"]]


class Coalescer(Generic[T, R]):
    """Sends queued items with `send(items)`, one request at a time.

    `send` returns one result per item (an `Exception` instance fails that item alone), or
    None when every item simply succeeded; if it raises, every item of the request fails with
    that exception. `take(pending)` says how many of the pending items fit in one request
    (default: all). With `inline=True` a call that finds nothing in flight yields one loop
    iteration, then sends its own item from the caller's task when it is still alone (no task
    or future for the common lone call), or hands everything queued meanwhile to a flush task;
    otherwise a flush task sends, so a cancelled caller never interrupts a request others share.
    """

    __slots__ = ("_inline", "_pending", "_send", "_sending", "_take", "_task")

    def __init__(
        self,
        send: SendT[T, R],
        *,
        take: Callable[[list[tuple[T, asyncio.Future[R]]]], int] | None = None,
        inline: bool = False,
    ) -> None:
        self._send = send
        self._take = take
        self._inline = inline
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self._sending = False

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing in flight."""
        return not self._pending and self._task is None and not self._sending

    async def submit(self, item: T) -> R:
        """Send `item` (with whatever else is queued) and return its result."""
        if self._inline and self.idle:
            return await self._send_inline(item)
        return await self.submit_nowait(item)

    def submit_nowait(self, item: T) -> asyncio.Future[R]:
        """Queue `item`; the returned future gets its result (never sent from this task)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if not self._sending:  # else the inline request in flight hands the queue on
            self._start_flush()
        return future

    async def wait_idle(self) -> None:
        """Wait until everything queued so far has been sent."""
        while self._task is not None:
            await asyncio.wait([self._task])

    async def _send_inline(self, item: T) -> R:
        self._sending = True
        try:
            # One loop iteration first: the callers one reply woke all run in this iteration,
            # and each sends its next item at once. They queue behind this one and share its
            # request, where sending this item alone would make them wait a round trip for it.
            await asyncio.sleep(0)
        except BaseException:  # cancelled before anything was sent
            self._sending = False
            self._start_flush()
            raise
        if self._pending:
            self._sending = False
            future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
            self._pending.insert(0, (item, future))
            self._start_flush()
            return await future
        try:
            results = await self._send([item])
        finally:
            self._sending = False
            # Hand what queued up behind this request to a flush task: this caller may be
            # cancelled, and it should not wait for others' requests.
            self._start_flush()
        result = results[0] if results is not None else None
        if isinstance(result, Exception):
            raise result
        return result  # type: ignore[return-value]

    def _start_flush(self) -> None:
        if self._pending and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                pending = self._pending
                count = len(pending) if self._take is None else max(1, self._take(pending))
                batch = pending[:count]
                del pending[:count]
                try:
                    results = await self._send([item for item, _ in batch])
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as exc:  # every waiter of this request learns of it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                if results is None:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)  # type: ignore[arg-type]
                    continue
                if len(results) != len(batch):
                    error = RuntimeError(
                        f"coalesced request returned {len(results)} results for {len(batch)} items"
                    )
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        except asyncio.CancelledError:
            for _, future in self._pending:
                future.cancel()
            self._pending.clear()
            raise
        finally:
            self._task = None
