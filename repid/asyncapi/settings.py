"""Settings of the embedded AsyncAPI documentation server."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AsyncAPIServerSettings"]


@dataclass(frozen=True, slots=True)
class AsyncAPIServerSettings:
    """Serve the AsyncAPI docs page while the worker runs (`run_worker(asyncapi_server=...)`).

    Binds only `address` (loopback by default; use "0.0.0.0" deliberately). The page is at
    `endpoint_name`; the raw document at `<endpoint>/asyncapi.json` and `.../asyncapi.yaml`.
    """

    address: str = "127.0.0.1"
    port: int = 8081
    endpoint_name: str = "/"
