"""A small Chrome DevTools Protocol client: headless Chromium driven over its websocket.

Only what the site test needs: navigate, evaluate JavaScript, wait for a condition, take a
screenshot, and record every network request the page makes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

__all__ = ["Page", "chromium_binary", "open_chromium"]

_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")


def chromium_binary() -> str | None:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


class Page:
    """One browser tab."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._event_arrived = asyncio.Event()
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self._socket:
            message = json.loads(raw)
            if "id" in message:
                future = self._pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
                continue
            method, params = message.get("method", ""), message.get("params", {})
            if method == "Network.requestWillBeSent":
                self.requests.append(params["request"]["url"])
            elif method == "Runtime.exceptionThrown":
                self.console_errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
            self._events.append((method, params))
            self._event_arrived.set()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        await self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return dict(answer.get("result", {}))

    async def navigate(self, url: str, timeout: float = 30) -> None:
        self._events.clear()
        await self.send("Page.navigate", url=url)
        await self.wait_for_event("Page.loadEventFired", timeout)

    async def wait_for_event(self, method: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for name, params in self._events:
                if name == method:
                    return params
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {method} within {timeout} s")
            self._event_arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._event_arrived.wait(), remaining)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20) -> Any:
        """Poll `expression` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"not true within {timeout} s: {expression}")
            await asyncio.sleep(0.1)

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


async def _page_websocket(port: int) -> str:
    def list_targets() -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            return list(json.load(answer))

    deadline = time.monotonic() + 30
    while True:
        pages = [t for t in await asyncio.to_thread(list_targets) if t.get("type") == "page"]
        if pages:
            return str(pages[0]["webSocketDebuggerUrl"])
        if time.monotonic() > deadline:
            raise TimeoutError("Chromium opened no page")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def open_chromium(binary: str) -> AsyncIterator[Page]:
    """Headless Chromium with a fresh profile and no network but loopback; yields its tab."""
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            # Offline: every host name fails to resolve, so anything the site would fetch
            # from the internet fails (and shows up in Page.requests).
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
            f"--user-data-dir={profile}",
            "--window-size=1280,900",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        page: Page | None = None
        try:
            assert process.stderr is not None
            line = b""
            async with asyncio.timeout(30):
                while (match := _LISTENING.search(line)) is None:
                    line = await process.stderr.readline()
                    if not line:
                        raise RuntimeError("Chromium exited before opening its DevTools port")
            port = int(match.group(1).split(b":")[2].split(b"/")[0])
            # Keep draining stderr so that Chromium never blocks on a full pipe.
            drain = asyncio.create_task(process.stderr.read())
            async with connect(await _page_websocket(port), max_size=None) as socket:
                page = Page(socket)
                await page.send("Page.enable")
                await page.send("Network.enable")
                await page.send("Runtime.enable")
                yield page
        finally:
            if page is not None:
                await page.close()
            if process.returncode is None:
                process.kill()
            await process.wait()
            if "drain" in locals():
                drain.cancel()
