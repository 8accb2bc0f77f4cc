"""gRPC channels to Pub/Sub: insecure to the emulator, TLS + Google credentials otherwise."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import grpc.aio

__all__ = ["PUBSUB_SCOPE", "UrllibRequest", "create_channel"]

PUBSUB_SCOPE = "https://www.googleapis.com/auth/pubsub"

ChannelOptions = Sequence[tuple[str, Any]]


class _UrllibResponse:
    """`google.auth.transport.Response` over a finished urllib exchange."""

    __slots__ = ("data", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self.status = status
        self.headers = dict(headers)
        self.data = data


class UrllibRequest:
    """A `google.auth.transport.Request` built on the standard library.

    google-auth needs an HTTP transport to refresh tokens (metadata server, OAuth token
    endpoint). Its own adapters need `requests` or `urllib3`, which the `pubsub` extra does not
    install, so this adapter is used when `requests` is missing. It is called from gRPC's
    credentials-plugin thread, never from the event loop, so blocking I/O is fine here.
    """

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _UrllibResponse:
        from google.auth import exceptions

        request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=timeout or 120) as response:
                return _UrllibResponse(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            # An HTTP error status is a response for google-auth to interpret, not a failure.
            with exc:
                return _UrllibResponse(exc.code, dict(exc.headers), exc.read())
        except (OSError, ValueError) as exc:
            raise exceptions.TransportError(  # type: ignore[no-untyped-call]
                f"{method} {url} failed: {exc}"
            ) from exc


def _auth_request() -> Any:
    try:
        from google.auth.transport.requests import Request

        return Request()
    except ImportError:
        return UrllibRequest()


async def create_channel(
    *,
    target: str,
    insecure: bool,
    credentials: Any | None,
    options: ChannelOptions,
    authenticate: bool = True,
) -> grpc.aio.Channel:
    """Open a channel; on the real service, attach OAuth tokens from `credentials` or ADC.

    `authenticate=False` opens TLS without call credentials (a Pub/Sub-compatible endpoint
    that needs none; repid 2.x's `https://` dsn without `use_google_auth`).
    """
    if insecure:
        return grpc.aio.insecure_channel(target, options=options)
    if not authenticate and credentials is None:
        return grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(), options=options)
    try:
        import google.auth
        from google.auth.transport.grpc import AuthMetadataPlugin
    except ImportError as exc:
        raise ImportError(
            "PubsubServer needs google-auth to authenticate to Google Cloud (it is not needed "
            "for the emulator): pip install repid[pubsub]"
        ) from exc
    if credentials is None:
        # google.auth.default() may probe the GCE metadata server: keep it off the event loop.
        credentials, _ = await asyncio.to_thread(google.auth.default, scopes=[PUBSUB_SCOPE])

    plugin = AuthMetadataPlugin(credentials, _auth_request())  # type: ignore[no-untyped-call]
    channel_credentials = grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials(), grpc.metadata_call_credentials(plugin)
    )
    return grpc.aio.secure_channel(target, channel_credentials, options=options)
