"""A TCP proxy that partitions the network without closing sockets.

    proxy = PartitionProxy("127.0.0.1", 6379)
    proxy.start()                       # its own thread and event loop; proxy.port is set
    ... point a client at 127.0.0.1:proxy.port ...
    proxy.partition()                   # traffic stops, in both directions; sockets stay open
    proxy.heal()                        # new connections work again
    proxy.close()

Two kinds of partition, because a userspace proxy cannot replay what TCP would retransmit:

* `blackhole` (the default, the half-open case): every connection open when the partition
  starts, and every one accepted during it, is dead for good. Its bytes are read and dropped
  in both directions, nothing is ever closed by the proxy, so the client's socket looks alive
  and only an application-level heartbeat or timeout can tell. After `heal()` a dead
  connection stays silent, and whichever side writes to it next gets a TCP reset: the path
  lost the connection's state, as a NAT, firewall or load balancer does when it fails over.
  A client that sends nothing (no heartbeat) waits on it forever; a broker learns at its next
  heartbeat or delivery. New connections after the heal are relayed normally.
* `hold`: nothing is dropped; the proxy stops relaying and lets the kernel buffers fill
  (the sender is flow-controlled, as by TCP retransmission timeouts), and relays everything
  when healed. This is a cable pulled and plugged back in before TCP gave up.

The proxy's own kernel acknowledges every segment, so TCP keepalive on the client never sees a
partition: only the protocols' own heartbeats (AMQP idle-time-out, HTTP/2 PING, a Redis
command timeout) can, which is what the partition scenario measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["PartitionMode", "PartitionProxy", "ProxyConnection"]

PartitionMode = Literal["blackhole", "hold"]

_CHUNK = 256 * 1024


@dataclass
class ProxyConnection:
    """One client connection through the proxy (times are `time.monotonic()`)."""

    number: int
    accepted_at: float
    closed_at: float | None = None
    dead: bool = False
    """Dropped by a blackhole partition: never relays again."""
    bytes_up: int = 0
    bytes_down: int = 0
    reset: bool = False
    """The client wrote to it after the heal and got a TCP reset."""
    client: asyncio.StreamWriter | None = field(default=None, repr=False)
    upstream: asyncio.StreamWriter | None = field(default=None, repr=False)


class PartitionProxy:
    """Relays 127.0.0.1:`port` to `target_host`:`target_port`; see the module docstring."""

    def __init__(self, target_host: str, target_port: int, *, listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self._listen_port = listen_port
        self.port = 0
        self.connections: list[ProxyConnection] = []
        self.partitioned = False
        self.mode: PartitionMode = "blackhole"
        self.partitions: list[tuple[float, float | None, PartitionMode]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._healed: asyncio.Event | None = None
        self._started = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- control (from any thread) --------------------------------------------------------------

    def start(self) -> None:
        """Start the proxy in a thread of its own; returns once it listens."""
        self._thread = threading.Thread(target=self._main, name="partition-proxy", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the partition proxy did not start")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def partition(self, mode: PartitionMode = "blackhole") -> None:
        """Stop all traffic (see the module docstring for the two modes)."""
        self._call(self._partition, mode)

    def heal(self) -> None:
        """End the partition: new connections are relayed (and, in `hold` mode, old ones)."""
        self._call(self._heal)

    def close(self) -> None:
        """Close every connection and stop the thread."""
        loop = self._loop
        if loop is None or self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        with contextlib.suppress(Exception):
            future.result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._loop = None

    def accepted_since(self, since: float) -> int:
        """Connections accepted at or after monotonic time `since` (reconnects)."""
        return sum(1 for c in list(self.connections) if c.accepted_at >= since)

    def live_connections(self) -> int:
        return sum(1 for c in list(self.connections) if c.closed_at is None and not c.dead)

    def _call(self, function: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the proxy is not running")

        async def run() -> None:
            function(*args)

        asyncio.run_coroutine_threadsafe(run(), loop).result(10)

    # -- the proxy's own loop -------------------------------------------------------------------

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._listen())
            self._started.set()
            loop.run_forever()
        finally:
            loop.close()

    async def _listen(self) -> None:
        self._healed = asyncio.Event()
        self._healed.set()
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self._listen_port, limit=_CHUNK
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    def _partition(self, mode: PartitionMode) -> None:
        assert self._healed is not None
        if self.partitioned:
            return
        self.partitioned = True
        self.mode = mode
        self.partitions.append((time.monotonic(), None, mode))
        self._healed.clear()
        if mode == "blackhole":
            for connection in self.connections:
                if connection.closed_at is None:
                    connection.dead = True

    def _heal(self) -> None:
        assert self._healed is not None
        if not self.partitioned:
            return
        self.partitioned = False
        start, _, mode = self.partitions[-1]
        self.partitions[-1] = (start, time.monotonic(), mode)
        self._healed.set()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = ProxyConnection(len(self.connections) + 1, time.monotonic(), client=writer)
        self.connections.append(connection)
        if self.partitioned and self.mode == "blackhole":
            # Accepted by the kernel but never answered: a connect into a dead network path.
            connection.dead = True
            await self._drop_until_closed(connection, reader)
            return
        if self.partitioned:
            assert self._healed is not None
            await self._healed.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target, limit=_CHUNK)
        except OSError:
            _reset(writer)
            connection.closed_at = time.monotonic()
            return
        connection.upstream = up_writer
        self._spawn(self._pump(connection, up_reader, writer, downstream=True))
        await self._pump(connection, reader, up_writer, downstream=False)

    async def _drop_until_closed(
        self, connection: ProxyConnection, reader: asyncio.StreamReader
    ) -> None:
        """A dead connection that never reached the broker: drop what the client sends."""
        writer = connection.client
        assert writer is not None
        while True:
            try:
                data = await reader.read(_CHUNK)
            except OSError:
                break
            if not data:
                break
            if not self.partitioned:
                connection.reset = True
                _reset(writer)
                break
        connection.closed_at = connection.closed_at or time.monotonic()
        writer.close()

    async def _pump(
        self,
        connection: ProxyConnection,
        source: asyncio.StreamReader,
        target: asyncio.StreamWriter,
        *,
        downstream: bool,
    ) -> None:
        healed = self._healed
        assert healed is not None
        try:
            while True:
                data = await source.read(_CHUNK)
                if not data:
                    break
                if self.partitioned and self.mode == "hold" and not connection.dead:
                    await healed.wait()
                if connection.dead:
                    if not self.partitioned:
                        # A side wrote to a connection whose state the path lost: reset it.
                        connection.reset = True
                        side = connection.upstream if downstream else connection.client
                        if side is not None:
                            _reset(side)
                        break
                    continue  # dropped on the floor
                if downstream:
                    connection.bytes_down += len(data)
                else:
                    connection.bytes_up += len(data)
                target.write(data)
                await target.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # A dead connection's end goes nowhere: the other side is never told.
            if not connection.dead:
                with contextlib.suppress(Exception):
                    target.close()
            elif downstream is False and connection.client is not None:
                connection.client.close()
            if not downstream:
                connection.closed_at = connection.closed_at or time.monotonic()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in self.connections:
            for writer in (connection.client, connection.upstream):
                if writer is not None:
                    writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
