"""/readyz and the runner's readiness extras (`is_ready`, `subscription_state`), without a
broker. (The broker-backed readiness tests are in test_readiness.py.)"""

from __future__ import annotations

import time

from repid import HealthCheckServerSettings
from repid.health.server import HealthCheckServer
from tests.health.http_client import get


class _Subscription:
    def __init__(self, value: str) -> None:
        self.value = value


class _Worker:
    """What the health server reads of a runner, with the readiness extras."""

    def __init__(self) -> None:
        self.is_running = True
        self.last_iteration = time.monotonic()
        self.is_ready = True
        self.subscription_state: _Subscription | None = _Subscription("active")

    def is_healthy(self, max_silence: float = 5.0) -> bool:
        return True


async def test_readyz_names_the_subscription_state() -> None:
    worker = _Worker()
    health = await HealthCheckServer(HealthCheckServerSettings(port=0), worker).start()
    try:
        answer = await get(health.port, "/readyz")
        assert answer.status == 200 and answer.json()["checks"]["subscription"] == "active"
        worker.is_ready = False
        worker.subscription_state = _Subscription("recovering")
        answer = await get(health.port, "/readyz")
        assert answer.status == 503
        assert answer.json()["reasons"] == ["subscription recovering"]
        assert (await get(health.port, "/livez")).status == 200  # the loop still iterates
        worker.subscription_state = None  # not subscribed yet
        answer = await get(health.port, "/readyz")
        assert answer.status == 503 and answer.json()["reasons"] == ["worker not ready"]
        worker.is_ready = True
        assert (await get(health.port, "/readyz")).status == 200
    finally:
        await health.close()
