"""The health check server for Kubernetes-style liveness and readiness probes."""

from repid.health.settings import HealthCheckServerSettings

__all__ = ["HealthCheckServerSettings"]
