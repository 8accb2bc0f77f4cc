"""`SyncProducer`: send messages from synchronous code (WSGI apps such as Django or Flask,
scripts, threads) through an app's servers and producer middlewares.

    from repid import SyncProducer

    producer = SyncProducer(app)          # nothing connects until the first send

    @flask_app.post("/orders")
    def create_order():
        producer.send_message_json(
            channel="orders", payload=request.get_json(), headers={"topic": "charge"}
        )
        return "", 202

How it works: the producer owns one background thread running an event loop, which owns the
connections of the app's servers; every `send_*` call hands a coroutine to that loop and waits
for its result (`app.send_message*`, so the producer middlewares run as usual). Any number of
threads may send at once: their messages are published concurrently on the shared connections
(which batch them where the server can).

* The thread and the connections start on the first send (or `start()`), so a module that
  builds the producer at import time is safe under pre-forking servers (gunicorn, uWSGI): each
  worker process connects on its first request. A process forked after the producer started
  starts a fresh one on its next send.
* A send waits at most `timeout` seconds (default 30), then raises TimeoutError; errors of the
  publish (a broker that is down, a missing queue) are raised in the calling thread.
* `close()` (also on leaving `with SyncProducer(app) as producer:` and at interpreter exit)
  disconnects the servers and stops the thread.
* The app's server objects then belong to the producer's loop: do not use the same app object
  from async code (a worker, `async with server.connection()`) in the same process at the same
  time. Async code should `await app.send_message_json(...)` instead; calling a `SyncProducer`
  from inside a running event loop raises RuntimeError rather than blocking that loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from repid.app import Repid

__all__ = ["SyncProducer"]

logger = logging.getLogger("repid.sync")

T = TypeVar("T")

_OPEN: weakref.WeakSet[SyncProducer] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:  # pragma: no cover - runs at interpreter exit
    for producer in list(_OPEN):
        producer.close()


class SyncProducer:
    """Thread-safe, blocking sends through `app` (see the module docstring)."""

    def __init__(self, app: Repid, *, timeout: float = 30.0) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.app = app
        self.timeout = timeout
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._connected: dict[str, asyncio.Lock] = {}

    # Lifecycle -----------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        """The background thread runs (in this process)."""
        thread = self._thread
        return thread is not None and thread.is_alive() and self._pid == os.getpid()

    def start(self) -> None:
        """Start the background thread now (the first send does it otherwise)."""
        self._ensure_loop()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is not None and self._pid == os.getpid() and self.is_running:
                return self._loop
            if self._pid is not None and self._pid != os.getpid():
                # Forked: the parent's thread and connections did not come along.
                logger.debug(
                    "sync_producer.forked: starting a fresh loop in pid %d",
                    os.getpid(),
                    extra={"pid": os.getpid()},
                )
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name="repid-sync-producer", daemon=True)
            thread.start()
            ready.wait()
            self._loop, self._thread, self._pid = loop, thread, os.getpid()
            self._connected = {}
            _OPEN.add(self)
            return loop

    def close(self) -> None:
        """Disconnect the servers this producer connected and stop its thread (idempotent)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is None or thread is None or self._pid != os.getpid():
                self._loop = self._thread = None
                return
            self._loop = self._thread = None
        if thread.is_alive():
            names = list(self._connected)
            future = asyncio.run_coroutine_threadsafe(self._disconnect(names), loop)
            try:
                future.result(self.timeout)
            except Exception:
                logger.exception("sync_producer.close_failed: disconnecting failed", extra={})
            loop.call_soon_threadsafe(loop.stop)
            thread.join(self.timeout)
        if not loop.is_running():
            loop.close()
        _OPEN.discard(self)

    def __enter__(self) -> SyncProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Sending -------------------------------------------------------------------------------

    def send_message(
        self,
        *,
        payload: bytes,
        channel: str | None = None,
        operation_id: str | None = None,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
        server_name: str | None = None,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None:
        """`app.send_message(...)`, from synchronous code."""
        self._run(
            server_name,
            lambda: self.app.send_message(
                payload=payload,
                channel=channel,
                operation_id=operation_id,
                headers=headers,
                content_type=content_type,
                server_name=server_name,
                server_specific_parameters=server_specific_parameters,
            ),
        )

    def send_message_json(
        self,
        *,
        payload: Any,
        channel: str | None = None,
        operation_id: str | None = None,
        headers: dict[str, str] | None = None,
        server_name: str | None = None,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None:
        """`app.send_message_json(...)`, from synchronous code."""
        self._run(
            server_name,
            lambda: self.app.send_message_json(
                payload=payload,
                channel=channel,
                operation_id=operation_id,
                headers=headers,
                server_name=server_name,
                server_specific_parameters=server_specific_parameters,
            ),
        )

    def _run(self, server_name: str | None, send: Callable[[], Awaitable[T]]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "SyncProducer was called from a running event loop; it would block the loop: "
                "use `await app.send_message_json(...)` in async code"
            )
        loop = self._ensure_loop()
        if threading.current_thread() is self._thread:  # pragma: no cover - defensive
            raise RuntimeError("SyncProducer cannot be called from its own loop")

        async def connect_and_send() -> T:
            await self._connect(server_name)
            return await send()

        future = asyncio.run_coroutine_threadsafe(connect_and_send(), loop)
        try:
            return future.result(self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"the send did not finish within {self.timeout} s") from None

    async def _connect(self, server_name: str | None) -> None:
        name, server = self.app.servers.resolve(server_name)
        lock = self._connected.get(name)
        if lock is None:
            lock = self._connected[name] = asyncio.Lock()
        if server.is_connected:
            return
        async with lock:
            if not server.is_connected:
                await server.connect()

    async def _disconnect(self, names: list[str]) -> None:
        for name in names:
            server = self.app.servers.get_server(name)
            try:
                await server.disconnect()
            except Exception:
                logger.exception(
                    "sync_producer.disconnect_failed: server %r", name, extra={"server": name}
                )
