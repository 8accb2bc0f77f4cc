"""Settings of the health check server."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HealthCheckServerSettings"]


@dataclass(frozen=True, slots=True)
class HealthCheckServerSettings:
    """Serve liveness/readiness probes beside the worker (`run_worker(health_check_server=...)`).

    Binds only `address` (127.0.0.1 by default; use "0.0.0.0" deliberately, e.g. in a pod) on
    `port` (8080). Endpoints, all GET/HEAD, answering 200 or 503 with a short JSON body:

    - `endpoint_name` (default "/healthz"): the worker runs, its loop iterates and the broker
      connection is alive;
    - `livez` next to it ("/livez"): the event loop iterates (restart the pod if not);
    - `readyz` next to it ("/readyz"): the loop iterates, the worker runs (not starting or
      stopping) and the broker is connected;
    - `metrics_endpoint` ("/metrics"): Prometheus metrics, when the app is instrumented with
      `repid.prometheus.instrument` (None: not served here).

    The loop counts as stalled after `max_silence` seconds (5) without a worker heartbeat.
    `read_timeout` (10 s) bounds how long a client may take to send its request;
    `max_connections` (100) bounds concurrent connections (extra ones get 503).
    """

    address: str = "127.0.0.1"
    port: int = 8080
    endpoint_name: str = "/healthz"
    max_silence: float = 5.0
    read_timeout: float = 10.0
    max_connections: int = 100
    metrics_endpoint: str | None = "/metrics"
