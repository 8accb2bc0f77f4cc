"""Prometheus metrics for Repid workers and producers (extra `prometheus`: prometheus_client).

    import repid.prometheus

    repid.prometheus.instrument(app)          # before the worker starts
    await app.run_worker(health_check_server=HealthCheckServerSettings(...))
    # -> GET /metrics on the health server (or `repid run --metrics HOST:PORT`)

`instrument(app, registry=None)` adds `PrometheusProducerMiddleware` (publishes, publish
errors) and `PrometheusObserver` (received, processed by actor/channel/outcome, failures,
processing time, in-flight, unrouted, poison; queue depth, unacked, consumer lag, dead letters
and consumers per channel where the broker can tell; broker reconnects). The metrics and their
labels are listed in `repid.prometheus.metrics`. They go to `registry` (default:
prometheus_client's global `REGISTRY`); several apps instrumented on one registry share the
metrics.

Several worker processes (`repid run --workers N`): prometheus_client's multiprocess mode, see
`repid.prometheus.exposition`.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from repid.prometheus.exposition import exposition, multiprocess_dir
from repid.prometheus.metrics import RepidMetrics
from repid.prometheus.observer import PrometheusObserver
from repid.prometheus.producer import PrometheusProducerMiddleware

__all__ = [
    "PrometheusObserver",
    "PrometheusProducerMiddleware",
    "RepidMetrics",
    "exposition",
    "instrument",
    "metrics_for",
    "multiprocess_dir",
]

logger = logging.getLogger("repid.prometheus")

_BY_REGISTRY: dict[int, RepidMetrics] = {}


def metrics_for(registry: CollectorRegistry | None = None) -> RepidMetrics:
    """Repid's metrics in `registry` (default `REGISTRY`), created on first use."""
    target = REGISTRY if registry is None else registry
    found = _BY_REGISTRY.get(id(target))
    if found is None or found.registry is not target:
        found = _BY_REGISTRY[id(target)] = RepidMetrics(target)
    return found


def instrument(
    app: Any, *, registry: CollectorRegistry | None = None, stats_interval: float = 15.0
) -> PrometheusObserver:
    """Add Prometheus metrics to `app` (a `repid.Repid`); see the module docstring.

    `stats_interval`: seconds between two reads of the broker's channel statistics while a
    worker runs (0 turns them off). Call it before the worker starts; instrumenting an app
    twice raises `RuntimeError`. Returns the observer (`observer.metrics` has the collectors).
    """
    if any(isinstance(o, PrometheusObserver) for o in app.observers):
        raise RuntimeError(f"{app!r} is already instrumented with Prometheus")
    metrics = metrics_for(registry)
    observer = PrometheusObserver(metrics, stats_interval=stats_interval)
    app.observers.append(observer)
    app.producer_middlewares.append(PrometheusProducerMiddleware(metrics))
    logger.info(
        "prometheus.instrumented: metrics registered%s",
        " (multiprocess mode)" if multiprocess_dir() else "",
        extra={"multiprocess": multiprocess_dir() is not None},
    )
    return observer
