"""Settings of the embedded AsyncAPI documentation server."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AsyncAPIServerSettings"]


@dataclass(frozen=True, slots=True)
class AsyncAPIServerSettings:
    """Serve the AsyncAPI docs page while the worker runs (`run_worker(asyncapi_server=...)`).

    Binds only `address` (127.0.0.1 by default; use "0.0.0.0" deliberately) on `port` (8081).
    The page is at `endpoint_name` ("/"); the raw document at `<endpoint>asyncapi.json` and
    `<endpoint>asyncapi.yaml` (YAML needs PyYAML); the React component's files at
    `<endpoint>static/...`. `read_timeout` (10 s) bounds how long a client may take to send
    its request, `write_timeout` (30 s) how long it may take to read the answer;
    `max_connections` (100) bounds concurrent connections (extra ones get 503).

    `sidebar` ... `expand_message_examples` choose the sections the page shows, as in
    `Repid.asyncapi_html` (repid 2.x's settings fields).
    """

    address: str = "127.0.0.1"
    port: int = 8081
    endpoint_name: str = "/"
    read_timeout: float = 10.0
    write_timeout: float = 30.0
    max_connections: int = 100
    sidebar: bool = True
    info: bool = True
    servers: bool = True
    operations: bool = True
    messages: bool = True
    schemas: bool = True
    errors: bool = True
    expand_message_examples: bool = True
