"""Single publishes on one dedicated connection, coalesced while a round trip is out.

`RedisServer.publish` is the path every `send_message` takes, so it skips redis-py's generic
command machinery (connection pool checkout, argument encoding, retry wrapper): the command is
packed by `_codec.pack_xadd` and written on a connection this writer keeps. Publishes that
arrive while a round trip is in flight are written together in the next one (pipelining), and
each caller gets its own reply.

On a connection error the writer drops its connection (the next write reconnects) and reports
the error to the callers of that round trip; `RedisServer.publish` then retries once through
redis-py with its backoff. A message whose reply was lost may thus be added twice -
at-least-once, like every other path.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["CoalescingWriter"]


class CoalescingWriter:
    """Write packed commands on one connection; one reply (or error reply) per command."""

    __slots__ = ("_client", "_connection", "_queue", "_task")

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._connection: Any = None
        self._queue: list[tuple[list[bytes], asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None

    def submit(self, pieces: list[bytes]) -> asyncio.Future[Any]:
        """Queue one packed command; the future gets its reply (an error reply as a value)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((pieces, future))
        if self._task is None:
            self._task = loop.create_task(self._flush())
        return future

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    connection = self._connection
                    if connection is None:
                        pool = self._client.connection_pool
                        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
                        self._connection = connection
                    if len(batch) == 1:
                        await connection.send_packed_command(batch[0][0], check_health=False)
                    else:
                        await connection.send_packed_command(
                            [piece for pieces, _ in batch for piece in pieces], check_health=False
                        )
                    for _, future in batch:
                        try:
                            reply = await connection.read_response()
                        except ResponseError as exc:
                            reply = exc
                        if not future.done():
                            future.set_result(reply)
                except BaseException as exc:
                    await self._drop()
                    for _, future in batch:
                        if future.done():
                            continue
                        if isinstance(exc, Exception):
                            future.set_exception(exc)
                        else:
                            future.cancel()
                    if not isinstance(exc, Exception):
                        raise
        finally:
            self._task = None

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect(nowait=True)
            await self._client.connection_pool.release(connection)

    async def close(self) -> None:
        """Wait for queued writes, then give the connection back to the pool."""
        if self._task is not None:
            await asyncio.wait([self._task])
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._client.connection_pool.release(connection)
