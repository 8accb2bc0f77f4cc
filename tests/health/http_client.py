"""A raw-socket HTTP client for tests: send exact bytes, read until the server closes."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (for servers whose port we must name)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse(raw: bytes) -> RawResponse:
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, f"incomplete response: {raw[:200]!r}"
    lines = head.decode("latin-1").split("\r\n")
    version, status, _ = (lines[0].split(" ", 2) + [""])[:3]
    assert version == "HTTP/1.1", lines[0]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(status), headers, body)


async def exchange(
    port: int, data: bytes, *, host: str = "127.0.0.1", timeout: float = 10.0
) -> bytes:
    """Send `data`, then read everything until EOF (every response closes the connection)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def get(
    port: int, path: str = "/", *, method: str = "GET", host: str = "127.0.0.1"
) -> RawResponse:
    request = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: test\r\n\r\n"
    response = parse(await exchange(port, request.encode(), host=host))
    if method != "HEAD":
        assert len(response.body) == int(response.headers["content-length"])
    return response
