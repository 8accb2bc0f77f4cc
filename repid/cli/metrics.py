"""`repid run --metrics HOST:PORT`: Prometheus metrics at `http://HOST:PORT/metrics`.

One process: the app is instrumented with `repid.prometheus.instrument` (unless it already
is) and its metrics are served on that address; with `--health` they are at the health
server's `/metrics` too.

`--workers N`: the supervisor makes a fresh multiprocess directory, hands it to every worker
(`PROMETHEUS_MULTIPROC_DIR`, with `REPID_METRICS=1`: instrument, do not serve), serves the
merged metrics of all of them, drops the live gauges of a worker that exits, and removes the
directory when it ends. Needs the `prometheus` extra.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from repid.errors import RepidError

if TYPE_CHECKING:
    from repid.app import Repid

__all__ = ["ENV_METRICS", "SupervisorMetrics", "require_prometheus", "start_worker_metrics"]

ENV_METRICS = "REPID_METRICS"
"""Set to "1" by the supervisor for its workers: record metrics, the supervisor serves them."""


def require_prometheus() -> None:
    """Fail early, with the install command, when prometheus_client is missing."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise RepidError(
            "--metrics needs prometheus_client: pip install 'repid[prometheus]'"
        ) from None


def _ensure_instrumented(app: Repid) -> Any:
    import repid.prometheus

    for observer in app.observers:
        if isinstance(observer, repid.prometheus.PrometheusObserver):
            return observer
    return repid.prometheus.instrument(app)


async def start_worker_metrics(app: Repid, address: tuple[str, int] | None) -> Any:
    """Instrument `app` when metrics are asked for; serve them at `address` if given.

    Returns the started server (close it at the end) or None.
    """
    supervised = os.environ.get(ENV_METRICS) == "1"
    if address is None and not supervised:
        return None
    require_prometheus()
    source = _ensure_instrumented(app)
    if address is None:
        return None
    from repid.prometheus.server import MetricsServer

    return await MetricsServer(source, address=address[0], port=address[1]).start()


class _SupervisorT(Protocol):
    """What `SupervisorMetrics` needs of the supervisor (typed so, it imports no supervisor)."""

    child_environment: dict[str, str]
    on_worker_exit: list[Callable[[int], None]]


class SupervisorMetrics:
    """The supervisor's half: the shared directory, the merged endpoint, clean-up."""

    def __init__(self, supervisor: _SupervisorT, address: tuple[str, int]) -> None:
        require_prometheus()
        from repid.prometheus.exposition import MULTIPROC_ENV
        from repid.prometheus.server import MultiprocessMetrics

        self.address = address
        self.directory = tempfile.mkdtemp(prefix="repid-metrics-")
        self.source = MultiprocessMetrics(self.directory)
        supervisor.child_environment[MULTIPROC_ENV] = self.directory
        supervisor.child_environment[ENV_METRICS] = "1"
        supervisor.on_worker_exit.append(self.source.process_exited)
        self._server: Any = None

    async def start(self) -> SupervisorMetrics:
        from repid.prometheus.server import MetricsServer

        host, port = self.address
        self._server = await MetricsServer(self.source, address=host, port=port).start()
        return self

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()
        shutil.rmtree(self.directory, ignore_errors=True)
