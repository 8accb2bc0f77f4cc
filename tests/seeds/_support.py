"""Helpers for running seed 002's examples: stopping a blocking worker with a real signal, and
an event loop whose clock runs fast so the examples' 10-120 s timeouts run verbatim in
milliseconds."""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

CLOCK_SPEED = 1000.0
"""Seconds of loop time per real second under `run_with_fast_clock`."""


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


class _FastSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    def select(self, timeout: float | None = None) -> Any:
        # The loop computes timeouts in its (fast) time; wait the real equivalent.
        return super().select(None if timeout is None else timeout / CLOCK_SPEED)


class _FastClockLoop(asyncio.SelectorEventLoop):
    def time(self) -> float:
        return super().time() * CLOCK_SPEED


def run_with_fast_clock(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `coro_fn()` on a loop whose clock runs `CLOCK_SPEED` times faster than real time:
    `asyncio.sleep(20)` takes 20 ms, timers keep their order. Threads and processes run in
    real time."""
    with asyncio.Runner(loop_factory=lambda: _FastClockLoop(_FastSelector())) as runner:
        return runner.run(coro_fn())
