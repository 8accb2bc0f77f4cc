"""Credentials plumbing for the real service (no Google endpoint is reachable from here)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import grpc.aio
import pytest
from google.auth import exceptions
from google.oauth2.credentials import Credentials

from repid.connections.pubsub import PubsubServer
from repid.connections.pubsub._auth import PUBSUB_SCOPE, UrllibRequest, create_channel


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.path == "/missing":
            self.send_response(404)
            self.send_header("X-Why", "absent")
            self.end_headers()
            self.wfile.write(b"nope")
            return
        self.send_response(200)
        self.send_header("X-Echo", self.headers.get("X-Test", ""))
        self.end_headers()
        self.wfile.write(b"hello")

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body[::-1])

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_urllib_request_get_post_and_error_status(http_base: str) -> None:
    request = UrllibRequest()
    ok = request(f"{http_base}/x", headers={"X-Test": "t"}, timeout=5)
    assert (ok.status, ok.data, ok.headers["X-Echo"]) == (200, b"hello", "t")
    posted = request(f"{http_base}/p", method="POST", body=b"abc", timeout=5)
    assert posted.data == b"cba"
    # An error status is returned for google-auth to interpret, not raised.
    missing = request(f"{http_base}/missing", timeout=5)
    assert (missing.status, missing.data, missing.headers["X-Why"]) == (404, b"nope", "absent")


def test_urllib_request_connection_failure_is_a_transport_error() -> None:
    with pytest.raises(exceptions.TransportError, match="failed"):
        UrllibRequest()("http://127.0.0.1:9/", timeout=2)


async def test_explicit_credentials_give_a_secure_channel() -> None:
    channel = await create_channel(
        target="pubsub.googleapis.com:443",
        insecure=False,
        credentials=Credentials(token="token"),
        options=[],
    )
    try:
        assert isinstance(channel, grpc.aio.Channel)
    finally:
        await channel.close()


async def test_application_default_credentials_are_asked_for_the_pubsub_scope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No Google endpoint or metadata server exists here, so google.auth.default is replaced
    # to observe the call; everything after it is the real code path.
    asked: list[Any] = []

    def fake_default(scopes: list[str] | None = None, **_: Any) -> tuple[Credentials, str]:
        asked.append(scopes)
        return Credentials(token="token"), "project"

    monkeypatch.setattr("google.auth.default", fake_default)
    channel = await create_channel(
        target="pubsub.googleapis.com:443", insecure=False, credentials=None, options=[]
    )
    await channel.close()
    assert asked == [[PUBSUB_SCOPE]]


def test_credentials_never_appear_in_repr_or_asyncapi_fields() -> None:
    server = PubsubServer("proj", credentials=Credentials(token="secret-token"), emulator_host=None)
    text = " ".join(
        str(value)
        for value in (repr(server), server.host, server.pathname, server.variables, server.security)
    )
    assert "secret-token" not in text
