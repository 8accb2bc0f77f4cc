"""Google Cloud Pub/Sub server (`pip install repid[pubsub]`): raw async gRPC, no client library.

Importing this package needs `grpcio` (and `google-auth` to connect to the real service);
`import repid` itself never imports gRPC.
"""

from __future__ import annotations

try:
    import grpc
    import grpc.aio  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "PubsubServer needs the gRPC runtime, which is not installed: pip install repid[pubsub]"
    ) from exc

from repid.connections.pubsub._server import (
    ChannelOverride,
    PubsubMessageTooLargeError,
    PubsubServer,
)

__all__ = ["ChannelOverride", "PubsubMessageTooLargeError", "PubsubServer"]
