"""Binding a `Connection` for the jobs, queues and workers created without `_connection=`.

`async with app.magic():` binds `app.connection` in a `ContextVar`, so concurrent asyncio tasks
may each run inside a different app's `magic()` (a task started inside inherits the binding).
`app.magic_connect()` also binds the connection process-wide, because frameworks such as
FastAPI run their startup hook in one task and request handlers in others; a ContextVar set in
the hook would not reach them. `magic()` sets the process-wide binding only when none exists
(and restores it on exit), so a plain `asyncio.run(main())` program works either way.

Lookup order: an explicit `_connection=`, then the task's `ContextVar`, then the process-wide
binding; nothing bound raises `ConnectionNotBoundError`.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from repid.jobs.errors import ConnectionNotBoundError

if TYPE_CHECKING:
    from repid.jobs.connection import Connection

__all__ = ["current_connection", "magic", "magic_connect", "magic_disconnect"]

_bound: contextvars.ContextVar[Connection | None] = contextvars.ContextVar(
    "repid_job_connection", default=None
)
_process_wide: list[Connection | None] = [None]


def current_connection(explicit: Connection | None = None) -> Connection:
    """`explicit`, else the connection bound by `magic()` / `magic_connect()`."""
    if explicit is not None:
        return explicit
    found = _bound.get() or _process_wide[0]
    if found is None:
        raise ConnectionNotBoundError(
            "no job connection: pass `_connection=Connection(...)`, or work inside "
            "`async with app.magic():` (or after `await app.magic_connect()`) of a "
            "`Repid(Connection(...))` app"
        )
    return found


def bound_connection() -> Connection | None:
    """The bound connection, if any (no error)."""
    return _bound.get() or _process_wide[0]


class HasConnectionT(Protocol):
    """What the job layer reads of an app: the `Connection` it was created with (`Repid(...)`).

    `Repid.magic()` calls into this module; typing the app by this protocol keeps the job
    layer from depending on the app's module and the app from depending on the job layer.
    """

    @property
    def connection(self) -> Any: ...


def _connection_of(app: HasConnectionT) -> Connection:
    connection = getattr(app, "connection", None)
    if connection is None:
        raise ConnectionNotBoundError(
            "this Repid app has no job connection: create it as `Repid(Connection(...))`"
        )
    return connection  # type: ignore[no-any-return]


@asynccontextmanager
async def magic(app: HasConnectionT, *, auto_disconnect: bool = False) -> AsyncIterator[Connection]:
    """Connect `app.connection` if needed and bind it inside the block (see module doc)."""
    connection = _connection_of(app)
    if not connection.is_open:
        await connection.connect()
    token = _bound.set(connection)
    took_process_wide = _process_wide[0] is None
    if took_process_wide:
        _process_wide[0] = connection
    try:
        yield connection
    finally:
        _bound.reset(token)
        if took_process_wide and _process_wide[0] is connection:
            _process_wide[0] = None
        if auto_disconnect:
            await connection.disconnect()


async def magic_connect(app: HasConnectionT) -> None:
    """Connect `app.connection` and bind it for this task and process-wide."""
    connection = _connection_of(app)
    if not connection.is_open:
        await connection.connect()
    _bound.set(connection)
    _process_wide[0] = connection


async def magic_disconnect(app: HasConnectionT) -> None:
    """Unbind `app.connection` (where it is bound) and disconnect it."""
    connection = _connection_of(app)
    if _bound.get() is connection:
        _bound.set(None)
    if _process_wide[0] is connection:
        _process_wide[0] = None
    await connection.disconnect()
