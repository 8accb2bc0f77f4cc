"""Helpers for running seed 002's examples: stopping a blocking worker with a real signal, and
an event loop with virtual time so the examples' 10-120 s timeouts run verbatim at once."""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


async def wait_until(predicate: Callable[[], bool], what: str, attempts: int = 2000) -> None:
    """Yield to the loop until `predicate()` holds (bounded: fails after `attempts` tries)."""
    for _ in range(attempts):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"gave up waiting for {what}")


@contextmanager
def signal_guard(sig: signal.Signals) -> Iterator[list[int]]:
    """Catch `sig` in a fallback handler while the block runs, so a worker that failed to
    install its own handler fails the test instead of killing pytest. The yielded list records
    signals that reached the fallback (empty when the worker handled them)."""
    hits: list[int] = []
    previous = signal.signal(sig, lambda signum, frame: hits.append(signum))
    try:
        yield hits
    finally:
        signal.signal(sig, previous)


def send_signal(sig: signal.Signals = signal.SIGTERM) -> None:
    """Send `sig` to this process, as an orchestrator would to a worker."""
    os.kill(os.getpid(), sig)


class _VirtualClock:
    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0.0


class _VirtualTimeSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Never sleeps while a timer is pending: when nothing is ready, the clock jumps to the
    next timer. Ordering depends only on loop time, never on how busy the machine is."""

    def __init__(self, clock: _VirtualClock) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> Any:
        ready = super().select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        if timeout is None:  # no timer at all: wait for real I/O (a signal, a thread)
            return super().select(None)
        self._clock.now += timeout
        return ready


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual = _VirtualClock()
        super().__init__(_VirtualTimeSelector(self._virtual))

    def time(self) -> float:
        return self._virtual.now


def run_with_fast_clock(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `coro_fn()` on a loop with virtual time: when no callback is ready, the clock jumps
    to the next timer, so `asyncio.sleep(20)` returns at once and timers keep their order
    whatever the machine's load. Only for code without threads or subprocesses doing work the
    loop waits for with a timer."""
    loop = _VirtualTimeLoop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro_fn())
    finally:
        # Like asyncio.run: cancel what is left (e.g. an abandoned actor cleanup), then close.
        leftovers = asyncio.all_tasks(loop)
        for task in leftovers:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()
