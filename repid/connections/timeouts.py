"""`timeout()`: `asyncio.timeout` on Python 3.11+, the same behaviour on Python 3.10.

    async with timeout(5.0) as cm:
        await work()
    # TimeoutError (the builtin) when the deadline passed; `cm.expired()` tells our deadline
    # from a TimeoutError raised by `work()` itself.

The Python 3.10 version cancels the running task at the deadline (no extra task, unlike
`asyncio.wait_for`) and turns that cancellation - and only that one - into `TimeoutError`.
"""

from __future__ import annotations

import asyncio
import sys
from types import TracebackType
from typing import Protocol

__all__ = ["TimeoutT", "timeout"]


class TimeoutT(Protocol):
    """What `timeout()` returns: an async context manager that knows whether it fired."""

    async def __aenter__(self) -> TimeoutT: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...

    def expired(self) -> bool: ...


class _Timeout310:
    """The Python 3.10 stand-in for `asyncio.Timeout` (only what Repid uses)."""

    __slots__ = ("_delay", "_fired", "_handle", "_task")

    def __init__(self, delay: float | None) -> None:
        self._delay = delay
        self._fired = False
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None

    async def __aenter__(self) -> _Timeout310:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - always inside a task
            raise RuntimeError("timeout() must be used inside a task")
        self._task = task
        if self._delay is not None:
            self._handle = asyncio.get_running_loop().call_later(
                max(self._delay, 0.0), self._expire
            )
        return self

    def _expire(self) -> None:
        self._fired = True
        assert self._task is not None
        self._task.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._fired and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc
        return None

    def expired(self) -> bool:
        return self._fired


if sys.version_info >= (3, 11):

    def timeout(delay: float | None) -> TimeoutT:
        """`asyncio.timeout(delay)`; None means no deadline."""
        return asyncio.timeout(delay)  # type: ignore[return-value,unused-ignore]

else:  # pragma: no cover - Python 3.10

    def timeout(delay: float | None) -> TimeoutT:
        """Like `asyncio.timeout(delay)` (Python 3.11); None means no deadline."""
        return _Timeout310(delay)
