"""Running the command's coroutine on the chosen event loop (`--loop auto|asyncio|uvloop`)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

from repid.errors import RepidError

__all__ = ["LoopName", "resolve_loop", "run_on_loop"]

T = TypeVar("T")
LoopName = Literal["auto", "asyncio", "uvloop"]


def resolve_loop(name: LoopName) -> Literal["asyncio", "uvloop"]:
    """`auto` is uvloop when it is installed (the `uvloop` extra), else asyncio."""
    if name == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if name == "uvloop":
            raise RepidError("--loop uvloop needs uvloop: pip install 'repid[uvloop]'") from None
        return "asyncio"
    return "uvloop"


def run_on_loop(main: Callable[[], Coroutine[Any, Any, T]], loop: LoopName = "auto") -> T:
    """`asyncio.run(main())` on the resolved loop."""
    if resolve_loop(loop) == "uvloop":
        import uvloop

        if sys.version_info >= (3, 11):
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(main())
        uvloop.install()  # pragma: no cover - Python 3.10
    return asyncio.run(main())
