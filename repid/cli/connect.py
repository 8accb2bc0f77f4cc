"""Connecting an app's servers for a command, with errors that name the broker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from repid.app import Repid
from repid.cli.describe import describe_server
from repid.connections.abc import ServerT
from repid.errors import BrokerConnectionError, RepidError

__all__ = ["connect_server", "connected"]

logger = logging.getLogger("repid.cli")


async def connect_server(name: str, server: ServerT) -> None:
    """`server.connect()`; a failure that is not already a RepidError becomes a
    `BrokerConnectionError` naming the server (its text never holds credentials)."""
    try:
        await server.connect()
    except RepidError:
        raise
    except Exception as exc:
        raise BrokerConnectionError(
            f"cannot connect server {name!r} ({describe_server(server)}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc


async def disconnect_quietly(name: str, server: ServerT) -> None:
    if not server.is_connected:
        return
    try:
        await server.disconnect()
    except Exception:
        logger.exception(
            "cli.disconnect_failed: disconnecting server %r failed", name, extra={"server": name}
        )


@asynccontextmanager
async def connected(
    app: Repid, server_name: str | None, *, every_server: bool = False
) -> AsyncIterator[tuple[str, ServerT]]:
    """Connect the chosen server (or, with `every_server`, all of them: actors may send to
    any); yield (name, server); disconnect them all on exit."""
    name, server = app.servers.resolve(server_name)
    chosen = app.servers.items() if every_server else [(name, server)]
    opened: list[tuple[str, ServerT]] = []
    try:
        for each_name, each in chosen:
            await connect_server(each_name, each)
            opened.append((each_name, each))
        yield name, server
    finally:
        for each_name, each in reversed(opened):
            await disconnect_quietly(each_name, each)
