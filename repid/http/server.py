"""A deliberately small asyncio HTTP/1.1 server for GET and HEAD (health probes, docs page).

It is meant for internal infrastructure only (Kubernetes probes, local docs), not the public
internet, and it is defensive about its input:

* it binds only the address it is given;
* the request line is at most `max_request_line` bytes (else 414) and the whole request head
  at most `max_header_bytes` (else 431); parsing is done by `h11`, anything malformed gets 400;
* the request head must arrive within `read_timeout` seconds in total (slow or idle clients
  are disconnected, with 408 if they sent something), responses must be taken within
  `write_timeout`;
* at most `max_connections` connections are served at once; extra ones get 503 and are closed;
* only GET and HEAD are allowed (else 405); unknown paths give 404; a handler error gives 500;
* every response carries `Connection: close` and the connection is closed after it. Request
  bodies are never read.

Memory per connection is bounded by the limits above plus the response being sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import h11

__all__ = ["HttpLimits", "HttpServer", "Request", "Response", "encode_head", "encode_response"]

logger = logging.getLogger("repid.http")


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Bounds on what one client can make the server do. The defaults suit probes and docs."""

    max_request_line: int = 8 * 1024
    max_header_bytes: int = 16 * 1024
    read_timeout: float = 10.0
    write_timeout: float = 30.0
    max_connections: int = 100


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request head: `path` without the query string, header names lower-cased."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Response:
    """What a handler returns; `Content-Length` and `Connection: close` are added for it."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = field(default=())


Handler = Callable[[Request], Awaitable[Response | None]]
"""Answers a GET/HEAD request, or returns None for 404."""

_ALLOWED_METHODS = ("GET", "HEAD")
_READ_CHUNK = 4096
_WRITE_CHUNK = 64 * 1024


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def encode_response(response: Response, *, head_only: bool = False) -> bytes:
    """The bytes of `response` with its framing headers (and no body for HEAD)."""
    head = encode_head(response)
    return head if head_only else head + response.body


def encode_head(response: Response) -> bytes:
    """The status line and headers of `response`, up to and including the blank line."""
    phrase = _reason(response.status)
    lines = [
        f"HTTP/1.1 {response.status} {phrase}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "Connection: close",
        "X-Content-Type-Options: nosniff",
    ]
    if not any(name.lower() == "cache-control" for name, _ in response.headers):
        lines.append("Cache-Control: no-store")  # probes and docs must never see stale answers
    for name, value in response.headers:
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _error(status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status, f"{status} {_reason(status)}: {reason}\n".encode(), headers=headers)


class HttpServer:
    """Serve `handler` on `address:port` until `close()`. `port=0` picks a free port."""

    def __init__(
        self,
        handler: Handler,
        *,
        address: str,
        port: int,
        limits: HttpLimits | None = None,
        name: str = "http",
    ) -> None:
        self._handler = handler
        self._address = address
        self._requested_port = port
        self.limits = limits or HttpLimits()
        self.name = name
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    @property
    def port(self) -> int:
        """The bound port (useful with `port=0`)."""
        if self._server is None or not self._server.sockets:
            return self._requested_port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active_connections(self) -> int:
        return len(self._connections)

    async def start(self) -> HttpServer:
        """Bind and start accepting connections."""
        self._server = await asyncio.start_server(
            self._on_connection,
            host=self._address,
            port=self._requested_port,
            limit=_READ_CHUNK * 4,
            # Room for a burst of probes/page loads beyond the served connections: refused
            # ones then get a prompt 503 instead of waiting on SYN retransmits.
            backlog=max(100, 2 * self.limits.max_connections),
        )
        url = f"http://{_host_for_url(self._address)}:{self.port}/"
        logger.info(
            "http.listening: %s on %s", self.name, url, extra={"server": self.name, "url": url}
        )
        return self

    async def close(self) -> None:
        """Stop accepting, drop open connections, wait for their tasks."""
        server = self._server
        if server is None:
            return
        self._server = None
        server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(server.wait_closed(), timeout=1.0)
        except asyncio.TimeoutError:
            logger.debug(
                "http.close_timeout: %s: the listener did not report closed in time",
                self.name,
                extra={"server": self.name},
            )

    async def __aenter__(self) -> HttpServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # One connection ----------------------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        over_limit = len(self._connections) >= self.limits.max_connections
        if task is not None:
            self._connections.add(task)
        try:
            if over_limit:
                await self._send(writer, _error(503, "too many connections"), head_only=False)
                await _linger(reader, writer)
                return
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away: nothing to answer
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception(
                "http.connection_failed: %s: unexpected error",
                self.name,
                extra={"server": self.name},
            )
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(asyncio.TimeoutError, OSError):
                await asyncio.wait_for(writer.wait_closed(), timeout=1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes)
        received = [0]
        try:
            request = await asyncio.wait_for(
                self._read_head(reader, parser, received), timeout=self.limits.read_timeout
            )
        except asyncio.TimeoutError:
            if received[0]:
                await self._send(writer, _error(408, "request head not received in time"))
            return
        except _BadRequest as exc:
            logger.debug(
                "http.bad_request: %s: %s",
                self.name,
                exc.reason,
                extra={"server": self.name, "status": exc.status},
            )
            await self._send(writer, _error(exc.status, exc.reason))
            return
        if request is None:
            return  # closed before sending a request
        head_only = request.method == "HEAD"
        if request.method not in _ALLOWED_METHODS:
            response = _error(405, "only GET and HEAD are allowed", (("Allow", "GET, HEAD"),))
        else:
            try:
                answer = await self._handler(request)
            except Exception:
                logger.exception(
                    "http.handler_failed: %s: %s %s",
                    self.name,
                    request.method,
                    request.path,
                    extra={"server": self.name, "method": request.method, "path": request.path},
                )
                answer = _error(500, "internal error")
            response = answer if answer is not None else _error(404, "not found")
        await self._send(writer, response, head_only=head_only)

    async def _read_head(
        self, reader: asyncio.StreamReader, parser: h11.Connection, received: list[int]
    ) -> Request | None:
        limits = self.limits
        line_done = False
        while True:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                if status == 431 and not line_done:
                    status = 414
                raise _BadRequest(status, str(exc) or "malformed request") from None
            if event is h11.NEED_DATA:
                if received[0] >= limits.max_header_bytes:
                    raise _BadRequest(
                        431 if line_done else 414,
                        "request head too large" if line_done else "request line too long",
                    )
                chunk = await reader.read(_READ_CHUNK)
                if not chunk:
                    if received[0]:
                        raise _BadRequest(400, "connection closed mid-request")
                    return None
                # h11 never sees more than the head budget: a head that does not fit in it is
                # refused above, whatever size the chunks arrive in.
                chunk = chunk[: limits.max_header_bytes - received[0]]
                if not line_done:
                    newline = chunk.find(b"\n")
                    end = received[0] + (newline if newline >= 0 else len(chunk))
                    if end > limits.max_request_line:
                        raise _BadRequest(414, "request line too long")
                    line_done = newline >= 0
                received[0] += len(chunk)
                parser.receive_data(chunk)
                continue
            if isinstance(event, h11.Request):
                return _to_request(event)
            if isinstance(event, h11.ConnectionClosed):
                return None
            raise _BadRequest(400, f"unexpected {type(event).__name__}")

    async def _send(
        self, writer: asyncio.StreamWriter, response: Response, *, head_only: bool = False
    ) -> None:
        try:
            await asyncio.wait_for(
                self._write(writer, response, head_only), timeout=self.limits.write_timeout
            )
        except asyncio.TimeoutError:
            logger.debug(
                "http.write_timeout: %s: the client did not read the response",
                self.name,
                extra={"server": self.name},
            )

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, response: Response, head_only: bool) -> None:
        writer.write(encode_head(response))
        body = response.body
        if not head_only and body:
            # Large bodies (the 3 MB docs bundle) go out in slices of the shared bytes, each
            # waiting for the client to take the previous one: a client that does not read
            # holds one slice of buffer, not a copy of the whole body.
            view = memoryview(body)
            for start in range(0, len(body), _WRITE_CHUNK):
                writer.write(view[start : start + _WRITE_CHUNK])
                await writer.drain()
        await writer.drain()


def _to_request(event: h11.Request) -> Request:
    if event.http_version not in (b"1.0", b"1.1"):
        raise _BadRequest(505, "only HTTP/1.0 and HTTP/1.1 are served")
    target = event.target.decode("ascii", "replace")
    if target.startswith(("http://", "https://")):
        # Absolute form (proxies): keep the path part only.
        after_scheme = target.split("://", 1)[1]
        slash = after_scheme.find("/")
        target = after_scheme[slash:] if slash >= 0 else "/"
    path, _, query = target.partition("?")
    path = path.split("#", 1)[0]
    if not path.startswith("/"):
        raise _BadRequest(400, "request target must be a path")
    headers = tuple(
        (name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in event.headers
    )
    return Request(
        method=event.method.decode("ascii", "replace"), path=path, query=query, headers=headers
    )


def _host_for_url(address: str) -> str:
    return f"[{address}]" if ":" in address else address


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Half-close and read what the client sent (briefly) before the socket is closed.

    Closing a socket with unread request bytes makes the kernel answer with a reset, and a
    reset can destroy the response the client has not read yet: the 503 would be lost.
    """
    with contextlib.suppress(OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()
    with contextlib.suppress(asyncio.TimeoutError, OSError, asyncio.IncompleteReadError):
        await asyncio.wait_for(reader.read(64 * 1024), timeout=0.5)
