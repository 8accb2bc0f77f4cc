"""Single publishes on one dedicated connection, coalesced while a round trip is out.

`RedisServer.publish` is the path every `send_message` takes, so it skips redis-py's generic
command machinery (connection pool checkout, argument encoding, retry wrapper): the command is
packed by `_codec.pack_xadd` and written on a connection this writer keeps. Publishes that
arrive while a round trip is in flight are written together in the next one (pipelining, see
`repid.connections.coalesce`), and each caller gets its own reply.

On a connection error the writer drops its connection (the next write reconnects) and reports
the error to the callers of that round trip; `RedisServer.publish` then lets the client find
the broker again and writes once more. A message whose reply was lost may thus be added twice -
at-least-once, like every other path.

With `replicas` (`RedisServer(wait_replicas=N)`) every round trip ends with `WAIT N timeout` on
the same connection: Redis answers once N replicas have every write of that connection (or the
timeout passed, with how many did), so a caller returns only when its message is on N replicas,
and gets `RedisReplicationError` when fewer confirmed it.

The connections come from a pool: the client's, or on a Redis Cluster one master's
(`NodeConnections`), so a cluster has one writer per master.
"""

from __future__ import annotations

import asyncio
import math
import sys
from typing import TYPE_CHECKING, Any, Protocol

from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisPyTimeoutError

from repid.connections.coalesce import Coalescer
from repid.connections.redis._codec import pack_command
from repid.connections.redis._errors import RedisReplicationError

if TYPE_CHECKING:
    from redis.asyncio.cluster import ClusterNode

__all__ = ["CoalescingWriter", "ConnectionSource", "NodeConnections"]


class ConnectionSource(Protocol):
    """What the writer needs of a pool (redis-py's asyncio pools have it)."""

    async def get_connection(self) -> Any: ...

    async def release(self, connection: Any) -> None: ...


class NodeConnections:
    """A Redis Cluster node's own connections, as a `ConnectionSource`.

    They are the cluster client's (no retries of their own: a failure reaches the caller, which
    lets the cluster client recover, see `RedisServer._write`).
    """

    __slots__ = ("node",)

    def __init__(self, node: ClusterNode) -> None:
        self.node = node

    async def get_connection(self) -> Any:
        return self.node.acquire_connection()

    async def release(self, connection: Any) -> None:
        self.node.release(connection)


async def _read_replies(connection: Any, count: int, extra: float = 0.0) -> list[Any]:
    """`count` replies (error replies as values) under one deadline for the round trip (the
    connection's socket timeout, plus `extra` seconds the server may take on purpose).

    redis-py's default is a timeout per reply, which cost more than parsing the replies.
    """
    deadline = connection.socket_timeout
    if deadline is not None:
        deadline += extra

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

    __slots__ = ("_coalescer", "_connection", "_pool", "_replicas", "_wait", "_wait_timeout")

    def __init__(self, pool: ConnectionSource, replicas: int = 0, timeout: float = 1.0) -> None:
        self._pool = pool
        self._replicas = replicas
        self._wait_timeout = timeout
        self._wait: list[bytes] | None = (
            pack_command(b"WAIT", b"%d" % replicas, b"%d" % int(timeout * 1000))
            if replicas
            else None
        )
        """`WAIT replicas timeout`, packed, to end every round trip with (or None)."""
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
                connection = await self._pool.get_connection()
                self._connection = connection
            wait = self._wait
            if len(batch) == 1 and wait is None:
                await connection.send_packed_command(batch[0], check_health=False)
            else:
                pieces = [piece for pieces in batch for piece in pieces]
                if wait is not None:
                    pieces += wait
                await connection.send_packed_command(pieces, check_health=False)
            if wait is None:
                return await _read_replies(connection, len(batch))
            # WAIT's reply comes last, after up to `timeout` (added to the round trip's deadline).
            replies = await _read_replies(connection, len(batch) + 1, self._wait_timeout)
            confirmed = replies.pop()
            if isinstance(confirmed, Exception):
                raise confirmed
            if int(confirmed) < self._replicas:
                shortfall = RedisReplicationError(
                    f"{confirmed} of {self._replicas} replicas confirmed the write in time "
                    "(the master has it; see wait_replicas)"
                )
                replies = [r if isinstance(r, Exception) else shortfall for r in replies]
            return replies
        except BaseException:
            await self._drop()
            raise

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect(nowait=True)
            await self._pool.release(connection)

    async def close(self) -> None:
        """Wait for queued writes, then give the connection back to the pool."""
        await self._coalescer.wait_idle()
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._pool.release(connection)
