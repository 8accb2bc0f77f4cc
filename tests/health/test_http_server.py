"""The shared HTTP server under hostile and ordinary input, over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repid.http import HttpLimits, HttpServer, Request, Response

from .http_client import exchange, get, parse

BIG = bytes(range(256)) * 20_000  # 5 MB


async def handler(request: Request) -> Response | None:
    if request.path == "/":
        return Response(200, b"hello\n")
    if request.path == "/echo":
        return Response(200, f"{request.method} {request.query}".encode())
    if request.path == "/big":
        return Response(200, BIG)
    if request.path == "/boom":
        raise RuntimeError("handler bug")
    return None


async def started(limits: HttpLimits) -> HttpServer:
    return await HttpServer(handler, address="127.0.0.1", port=0, limits=limits).start()


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    srv = await started(HttpLimits(read_timeout=0.5, max_connections=50))
    try:
        yield srv
    finally:
        await srv.close()


async def wait_until_idle(srv: HttpServer) -> None:
    for _ in range(200):
        if srv.active_connections == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{srv.active_connections} connections still open")


async def test_get_head_404_405_500(server: HttpServer) -> None:
    ok = await get(server.port, "/")
    assert (ok.status, ok.body) == (200, b"hello\n")
    assert ok.headers["connection"] == "close"
    assert ok.headers["content-type"].startswith("text/plain")
    head = await get(server.port, "/", method="HEAD")
    assert head.status == 200 and head.body == b"" and head.headers["content-length"] == "6"
    echo = await get(server.port, "/echo?a=1&b=2")
    assert echo.body == b"GET a=1&b=2"
    assert (await get(server.port, "/missing")).status == 404
    post = await get(server.port, "/", method="POST")
    assert post.status == 405 and post.headers["allow"] == "GET, HEAD"
    assert (await get(server.port, "/", method="DELETE")).status == 405
    assert (await get(server.port, "/boom")).status == 500
    # Absolute-form targets (as sent to proxies) are answered by path.
    absolute = await exchange(server.port, b"GET http://example/echo?x HTTP/1.1\r\nHost: e\r\n\r\n")
    assert parse(absolute).body == b"GET x"


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"\x00\x01\x02\xff\xfe\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
async def test_malformed_requests_get_400_and_close(server: HttpServer, raw: bytes) -> None:
    response = parse(await exchange(server.port, raw))
    assert response.status == 400
    assert response.headers["connection"] == "close"


async def test_unknown_http_version_gets_505(server: HttpServer) -> None:
    raw = b"GET / HTTP/9.9\r\nHost: x\r\n\r\n"
    assert parse(await exchange(server.port, raw)).status == 505


async def test_oversized_headers_get_431(server: HttpServer) -> None:
    raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    assert parse(await exchange(server.port, raw)).status == 431
    many = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 3000 + b"\r\n"
    assert parse(await exchange(server.port, many)).status == 431
    # Just under the 16 KiB default budget is fine.
    fits = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 15_000 + b"\r\n\r\n"
    assert parse(await exchange(server.port, fits)).status == 200


async def test_overlong_request_line_gets_414(server: HttpServer) -> None:
    raw = b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert parse(await exchange(server.port, raw)).status == 414


async def test_idle_client_is_disconnected(server: HttpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        # read_timeout is 0.5 s: the server closes without a word well before 10 s.
        assert await asyncio.wait_for(reader.read(), 10) == b""
    finally:
        writer.close()
    await wait_until_idle(server)


async def test_slow_client_gets_408(server: HttpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        await writer.drain()
        response = parse(await asyncio.wait_for(reader.read(), 10))
        assert response.status == 408
    finally:
        writer.close()


async def test_client_that_does_not_read_is_dropped() -> None:
    srv = await started(HttpLimits(read_timeout=5.0, write_timeout=0.5))
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await wait_until_idle(srv)  # gave up on the response after write_timeout
        assert (await get(srv.port, "/")).status == 200
    finally:
        writer.close()
        await srv.close()
    # A reading client gets the whole 5 MB body.
    srv = await started(HttpLimits())
    try:
        big = await get(srv.port, "/big")
        assert big.body == BIG
    finally:
        await srv.close()


async def test_connection_limit_answers_503_then_recovers() -> None:
    srv = await started(HttpLimits(read_timeout=30.0, max_connections=5))
    idle = []
    try:
        for _ in range(5):
            idle.append(await asyncio.open_connection("127.0.0.1", srv.port))
        for _ in range(200):  # wait for the server to have accepted all five
            if srv.active_connections == 5:
                break
            await asyncio.sleep(0.01)
        assert srv.active_connections == 5
        refused = await get(srv.port, "/")
        assert refused.status == 503
        for _, writer in idle:
            writer.close()
        await wait_until_idle(srv)
        assert (await get(srv.port, "/")).status == 200
    finally:
        for _, writer in idle:
            writer.close()
        await srv.close()


async def test_200_concurrent_clients() -> None:
    srv = await started(HttpLimits(read_timeout=5.0, max_connections=100))
    try:
        results = await asyncio.gather(*(get(srv.port, "/") for _ in range(200)))
        statuses = [r.status for r in results]
        assert set(statuses) <= {200, 503}
        assert statuses.count(200) >= 100
        await wait_until_idle(srv)
        assert (await get(srv.port, "/")).status == 200
    finally:
        await srv.close()
    roomy = await started(HttpLimits(read_timeout=5.0, max_connections=250))
    try:
        results = await asyncio.gather(*(get(roomy.port, "/") for _ in range(200)))
        assert [r.status for r in results] == [200] * 200
    finally:
        await roomy.close()


async def test_binds_only_the_given_address(server: HttpServer) -> None:
    # All of 127.0.0.0/8 reaches the loopback interface; a socket bound to 127.0.0.1 must not
    # accept connections addressed to 127.0.0.2.
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.2", server.port)


async def test_close_drops_open_connections() -> None:
    srv = await started(HttpLimits(read_timeout=30.0))
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    for _ in range(200):
        if srv.active_connections == 1:
            break
        await asyncio.sleep(0.01)
    await asyncio.wait_for(srv.close(), 10)
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", srv.port)


request_bytes = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda method, target, headers: (
            method + b" " + target + b" HTTP/1.1\r\n" + headers + b"\r\n\r\n"
        ),
        st.sampled_from([b"GET", b"HEAD", b"POST", b"G\x00T", b""]),
        st.binary(max_size=60),
        st.binary(max_size=120),
    ),
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=request_bytes)
async def test_arbitrary_bytes_never_break_the_server(server: HttpServer, raw: bytes) -> None:
    answer = await exchange(server.port, raw + b"\r\n\r\n")
    if answer:
        assert parse(answer).status in {200, 400, 404, 405, 408, 414, 431, 505}
    assert (await get(server.port, "/")).status == 200
