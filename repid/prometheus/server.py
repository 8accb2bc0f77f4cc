"""`MetricsServer`: `/metrics` on an address of its own (`repid run --metrics HOST:PORT`).

`MultiprocessMetrics` is the source the `--workers N` supervisor serves: it never imports the
app and holds no metrics of its own, it merges what the worker processes wrote to the
multiprocess directory (see `repid.prometheus.exposition`).
"""

from __future__ import annotations

from prometheus_client.multiprocess import mark_process_dead

from repid.health.server import MetricsSourceT, metrics_response
from repid.http import HttpServer, Request, Response
from repid.prometheus.exposition import exposition

__all__ = ["MetricsServer", "MultiprocessMetrics"]


class MultiprocessMetrics:
    """Every worker process's metrics, merged from `path` at each scrape."""

    def __init__(self, path: str) -> None:
        self.path = path

    def metrics_exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        return exposition(None, accept, multiprocess_path=self.path)

    def process_exited(self, pid: int) -> None:
        """Drop the live gauges (in-flight messages) of a worker process that ended."""
        mark_process_dead(pid, self.path)  # type: ignore[no-untyped-call]


class MetricsServer:
    """Serves `source` at `/metrics` on `address:port` (`port=0` picks a free one)."""

    def __init__(self, source: MetricsSourceT, *, address: str, port: int) -> None:
        self.source = source
        self._http = HttpServer(self._handle, address=address, port=port, name="metrics_server")

    @property
    def port(self) -> int:
        return self._http.port

    async def start(self) -> MetricsServer:
        await self._http.start()
        return self

    async def close(self) -> None:
        await self._http.close()

    async def _handle(self, request: Request) -> Response | None:
        if request.path != "/metrics":
            return None
        return metrics_response(self.source, request)
