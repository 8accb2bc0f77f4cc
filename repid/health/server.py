"""`HealthCheckServer`: Kubernetes-style liveness and readiness probes for a running worker.

Endpoints (GET or HEAD), each answering 200 or 503 with a short JSON body naming the failed
checks, e.g. `{"status": "unavailable", "reasons": ["broker disconnected"], ...}`:

* `endpoint_name` (default `/healthz`): the worker runs, its event loop iterates and the broker
  connection is alive (`Runner.is_healthy`);
* `livez` beside it (`/livez` for `/healthz`): the event loop iterates. Use it as the liveness
  probe: it stays 200 while the worker starts or drains, so a graceful shutdown is not cut short;
* `readyz` beside it (`/readyz`): the loop iterates, the worker runs, the broker is connected
  and the subscription delivers (`Runner.is_ready`: its `SubscriptionState` is ACTIVE, so a
  consumer loop or stream that died, or a connection being re-established, answers 503 until
  the subscription is back; an idle one is ready). Use it as the readiness probe;
* `metrics_endpoint` (default `/metrics`), when the app is instrumented with
  `repid.prometheus.instrument`: the Prometheus metrics (text exposition format).

The server runs on the worker's own event loop: if the loop is blocked it cannot answer at all,
which a probe with a timeout also reports as a failure. Defaults (see
`HealthCheckServerSettings`): 127.0.0.1:8080, loop considered stalled after 5 s without a worker
heartbeat, 10 s to send a request, 100 concurrent connections.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from repid.http import HttpLimits, HttpServer, Request, Response

if TYPE_CHECKING:
    from repid.health.settings import HealthCheckServerSettings

__all__ = ["HealthCheckServer", "HealthSource", "MetricsSourceT"]


@runtime_checkable
class MetricsSourceT(Protocol):
    """What serves `/metrics` (`repid.prometheus.PrometheusObserver` has it)."""

    def metrics_exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """(body, content type) of one scrape; `accept` is the scraper's Accept header."""
        ...


class HealthSource(Protocol):
    """What the health server reads from a worker (`repid.worker.runner.Runner` has it).

    Optional extras it uses when present: `last_iteration` (a `time.monotonic()` timestamp of
    the last loop heartbeat), `server.is_connected`, `is_ready` (a bool: /readyz is 503 while
    it is False) and `subscription_state` (a `SubscriptionState`, named in the answers).
    """

    @property
    def is_running(self) -> bool: ...

    def is_healthy(self, max_silence: float = ...) -> bool: ...


class HealthCheckServer:
    """Answers probes about `runner` on `settings.address:settings.port`."""

    def __init__(
        self,
        settings: HealthCheckServerSettings,
        runner: HealthSource,
        metrics: MetricsSourceT | None = None,
    ) -> None:
        self.settings = settings
        self.runner = runner
        self.metrics = metrics
        endpoint = settings.endpoint_name or "/healthz"
        if not endpoint.startswith("/"):
            endpoint = "/" + endpoint
        endpoint = endpoint.rstrip("/") or "/"
        parent = endpoint.rsplit("/", 1)[0] + "/"
        self.paths = {
            parent + "livez": self._live,
            parent + "readyz": self._ready,
            endpoint: self._healthy,  # last: the configured endpoint wins a name clash
        }
        self.metrics_path = settings.metrics_endpoint if metrics is not None else None
        self._http = HttpServer(
            self._handle,
            address=settings.address,
            port=settings.port,
            limits=HttpLimits(
                read_timeout=settings.read_timeout, max_connections=settings.max_connections
            ),
            name="health_server",
        )

    @property
    def port(self) -> int:
        """The bound port (useful with `port=0`)."""
        return self._http.port

    async def start(self) -> HealthCheckServer:
        """Bind and serve."""
        await self._http.start()
        return self

    async def close(self) -> None:
        """Stop serving."""
        await self._http.close()

    # Checks ------------------------------------------------------------------------------

    def _loop_ok(self) -> bool:
        last = getattr(self.runner, "last_iteration", None)
        if not isinstance(last, int | float):
            return True  # nothing to judge by: the loop answering this request is the proof
        return time.monotonic() - last < self.settings.max_silence

    def _broker_ok(self) -> bool | None:
        server = getattr(self.runner, "server", None)
        connected = getattr(server, "is_connected", None)
        return connected if isinstance(connected, bool) else None

    def _subscription(self) -> str | None:
        state = getattr(self.runner, "subscription_state", None)
        value = getattr(state, "value", None)
        return value if isinstance(value, str) else None

    def _is_ready(self) -> bool | None:
        ready = getattr(self.runner, "is_ready", None)
        return ready if isinstance(ready, bool) else None

    def _checks(self) -> dict[str, str]:
        broker = self._broker_ok()
        checks = {
            "loop": "iterating" if self._loop_ok() else "stalled",
            "worker": "running" if self.runner.is_running else "not running",
            "broker": "unknown" if broker is None else "connected" if broker else "disconnected",
        }
        subscription = self._subscription()
        if subscription is not None:
            checks["subscription"] = subscription
        return checks

    def _live(self) -> tuple[bool, list[str]]:
        ok = self._loop_ok()
        return ok, [] if ok else ["loop stalled"]

    def _ready(self) -> tuple[bool, list[str]]:
        reasons = self._reasons()
        subscription = self._subscription()
        if subscription is not None and subscription != "active":
            reasons.append(f"subscription {subscription}")
        if self._is_ready() is False and not reasons:
            reasons.append("worker not ready")
        return not reasons, reasons

    def _healthy(self) -> tuple[bool, list[str]]:
        ok = bool(self.runner.is_healthy(self.settings.max_silence))
        reasons = self._reasons()
        if not ok and not reasons:
            reasons = ["worker reports unhealthy"]
        return ok, reasons if not ok else []

    def _reasons(self) -> list[str]:
        reasons = []
        if not self._loop_ok():
            reasons.append("loop stalled")
        if not self.runner.is_running:
            reasons.append("worker not running (starting or stopping)")
        if self._broker_ok() is False:
            reasons.append("broker disconnected")
        return reasons

    async def _handle(self, request: Request) -> Response | None:
        check = self.paths.get(request.path)
        if check is None:
            if self.metrics is not None and request.path == self.metrics_path:
                return metrics_response(self.metrics, request)
            return None
        ok, reasons = check()
        body: dict[str, Any] = {
            "status": "ok" if ok else "unavailable",
            "checks": self._checks(),
        }
        if reasons:
            body["reasons"] = reasons
        return Response(
            200 if ok else 503,
            json.dumps(body, separators=(",", ":")).encode() + b"\n",
            "application/json",
        )


def metrics_response(source: MetricsSourceT, request: Request) -> Response:
    """One scrape of `source` as a response (shared with `repid run --metrics`)."""
    accept = next((value for name, value in request.headers if name == "accept"), None)
    body, content_type = source.metrics_exposition(accept)
    return Response(200, body, content_type)
