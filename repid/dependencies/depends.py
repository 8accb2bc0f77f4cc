"""`Depends`: inject the result of another function into an actor or dependency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Depends"]


class Depends:
    """Mark a parameter as provided by calling `fn` for each message.

    `fn` may be async (awaited), or sync (run in a thread pool, or in a process pool with
    `run_in_process=True`). Its own parameters are resolved the same way as an actor's: other
    `Depends`, `Header`, `Message`, or fields of the message payload.

        async def actor(db: Annotated[Database, Depends(get_database)]) -> None: ...
    """

    __slots__ = ("_fn", "_override", "run_in_process")

    def __init__(self, fn: Callable[..., Any], *, run_in_process: bool = False) -> None:
        if not callable(fn):
            raise TypeError(f"Depends() takes a callable, got {fn!r}")
        self._fn = fn
        self._override: Callable[..., Any] | None = None
        self.run_in_process = run_in_process

    @property
    def fn(self) -> Callable[..., Any]:
        """The function called for each message: the override if one is set."""
        return self._override if self._override is not None else self._fn

    def override(self, fn: Callable[..., Any] | None) -> None:
        """Replace the dependency globally (meant for tests); `None` removes the override.

        Workers and test clients compile their actors when they start, so override before
        starting them.
        """
        if fn is not None and not callable(fn):
            raise TypeError(f"Depends.override() takes a callable or None, got {fn!r}")
        self._override = fn

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"Depends({name}{', run_in_process=True' if self.run_in_process else ''})"
