"""Settings of the health check server."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HealthCheckServerSettings"]


@dataclass(frozen=True, slots=True)
class HealthCheckServerSettings:
    """Serve liveness/readiness probes beside the worker (`run_worker(health_check_server=...)`).

    `endpoint_name` answers 200 while the worker loop iterates and the broker connection is
    alive, 503 otherwise. Binds only `address` (loopback by default).
    """

    address: str = "127.0.0.1"
    port: int = 8080
    endpoint_name: str = "/healthz"
