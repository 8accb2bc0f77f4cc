"""Single publishes on one dedicated connection, coalesced while a round trip is out.

`RedisServer.publish` is the path every `send_message` takes, so it skips redis-py's generic
command machinery (connection pool checkout, argument encoding, retry wrapper): the command is
packed by `_codec.pack_xadd` and written on a connection this writer keeps. Publishes that
arrive while a round trip is in flight are written together in the next one (pipelining, see
`repid.connections.coalesce`), and each caller gets its own reply.

On a connection error the writer drops its connection (the next write reconnects) and reports
the error to the callers of that round trip; `RedisServer.publish` then retries once through
redis-py with its backoff. A message whose reply was lost may thus be added twice -
at-least-once, like every other path.
"""

from __future__ import annotations

import asyncio
import math
import sys
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisPyTimeoutError

from repid.connections.coalesce import Coalescer

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["CoalescingWriter"]


async def _read_replies(connection: Any, count: int) -> list[Any]:
    """`count` replies (error replies as values) under one deadline for the round trip.

    redis-py's default is a timeout per reply, which cost more than parsing the replies.
    """
    deadline = connection.socket_timeout

    async def read() -> list[Any]:
        replies: list[Any] = []
        for _ in range(count):
            try:
                replies.append(await connection.read_response(timeout=math.inf))
            except ResponseError as exc:
                replies.append(exc)
        return replies

    try:
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(deadline):
                return await read()
        return await asyncio.wait_for(read(), deadline)
    except (TimeoutError, asyncio.TimeoutError):
        raise RedisPyTimeoutError(f"no reply to {count} publishes within {deadline} s") from None


class CoalescingWriter:
    """Write packed commands on one connection; one reply (an error reply as a value) each."""

    __slots__ = ("_client", "_coalescer", "_connection")

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._connection: Any = None
        # Inline: a lone publish writes from its caller's task (no task per round trip).
        self._coalescer: Coalescer[list[bytes], Any] = Coalescer(self._write, inline=True)

    async def submit(self, pieces: list[bytes]) -> Any:
        """Send one packed command and return its reply (an error reply is raised)."""
        return await self._coalescer.submit(pieces)

    async def _write(self, batch: list[list[bytes]]) -> list[Any]:
        try:
            connection = self._connection
            if connection is None:
                pool = self._client.connection_pool
                connection = await pool.get_connection()  # type: ignore[no-untyped-call]
                self._connection = connection
            if len(batch) == 1:
                await connection.send_packed_command(batch[0], check_health=False)
            else:
                await connection.send_packed_command(
                    [piece for pieces in batch for piece in pieces], check_health=False
                )
            return await _read_replies(connection, len(batch))
        except BaseException:
            await self._drop()
            raise

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect(nowait=True)
            await self._client.connection_pool.release(connection)

    async def close(self) -> None:
        """Wait for queued writes, then give the connection back to the pool."""
        await self._coalescer.wait_idle()
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._client.connection_pool.release(connection)
