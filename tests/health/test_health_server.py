"""The health check server: 200/503 on /healthz, /livez and /readyz, alone and in a worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from repid import HealthCheckServerSettings, InMemoryServer, Repid, Router
from repid.health.server import HealthCheckServer

from .http_client import RawResponse, free_port, get


@dataclass
class FakeBroker:
    is_connected: bool = True


@dataclass
class FakeRunner:
    """Implements what the health server reads from `repid.worker.runner.Runner`."""

    is_running: bool = True
    last_iteration: float = field(default_factory=time.monotonic)
    server: FakeBroker = field(default_factory=FakeBroker)

    def is_healthy(self, max_silence: float = 5.0) -> bool:
        return (
            self.is_running
            and time.monotonic() - self.last_iteration < max_silence
            and self.server.is_connected
        )


@pytest.fixture
async def probe() -> AsyncIterator[tuple[HealthCheckServer, FakeRunner]]:
    runner = FakeRunner()
    settings = HealthCheckServerSettings(port=0, max_silence=5.0, read_timeout=1.0)
    server = await HealthCheckServer(settings, runner).start()
    try:
        yield server, runner
    finally:
        await server.close()


async def statuses(port: int) -> dict[str, RawResponse]:
    return {path: await get(port, path) for path in ("/healthz", "/livez", "/readyz")}


async def test_healthy_worker_answers_200_everywhere(
    probe: tuple[HealthCheckServer, FakeRunner],
) -> None:
    server, _ = probe
    answers = await statuses(server.port)
    for path, answer in answers.items():
        assert answer.status == 200, path
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["status"] == "ok"
    assert answers["/healthz"].json()["checks"] == {
        "loop": "iterating",
        "worker": "running",
        "broker": "connected",
    }
    head = await get(server.port, "/healthz", method="HEAD")
    assert head.status == 200 and head.body == b""
    assert (await get(server.port, "/other")).status == 404
    assert (await get(server.port, "/healthz", method="POST")).status == 405


async def test_broker_disconnected(probe: tuple[HealthCheckServer, FakeRunner]) -> None:
    server, runner = probe
    runner.server.is_connected = False
    answers = await statuses(server.port)
    assert answers["/healthz"].status == 503
    assert answers["/healthz"].json()["reasons"] == ["broker disconnected"]
    assert answers["/readyz"].status == 503
    assert answers["/livez"].status == 200  # restarting the pod would not reconnect sooner


async def test_loop_stalled(probe: tuple[HealthCheckServer, FakeRunner]) -> None:
    server, runner = probe
    runner.last_iteration = time.monotonic() - 60
    answers = await statuses(server.port)
    assert {a.status for a in answers.values()} == {503}
    assert answers["/livez"].json()["reasons"] == ["loop stalled"]
    assert answers["/healthz"].json()["checks"]["loop"] == "stalled"


async def test_stopping_worker_is_not_ready_but_live(
    probe: tuple[HealthCheckServer, FakeRunner],
) -> None:
    server, runner = probe
    runner.is_running = False
    answers = await statuses(server.port)
    assert answers["/healthz"].status == 503
    assert answers["/readyz"].status == 503
    assert "worker not running" in answers["/readyz"].json()["reasons"][0]
    assert answers["/livez"].status == 200


async def test_custom_endpoint_paths() -> None:
    runner = FakeRunner()
    settings = HealthCheckServerSettings(port=0, endpoint_name="/probes/health")
    server = await HealthCheckServer(settings, runner).start()
    try:
        assert (await get(server.port, "/probes/health")).status == 200
        assert (await get(server.port, "/probes/livez")).status == 200
        assert (await get(server.port, "/probes/readyz")).status == 200
        assert (await get(server.port, "/healthz")).status == 404
    finally:
        await server.close()


async def wait_for_status(port: int, path: str, status: int) -> RawResponse:
    answer = None
    for _ in range(250):
        try:
            answer = await get(port, path)
        except OSError:
            answer = None  # not listening yet
        if answer is not None and answer.status == status:
            return answer
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never answered {status} (last: {answer})")


async def test_health_server_in_a_real_worker() -> None:
    app = Repid(title="Health")
    broker = InMemoryServer()
    app.servers.register_server("default", broker, is_default=True)
    router = Router()

    @router.actor(channel="jobs")
    async def job() -> None:
        return None

    app.include_router(router)
    port = free_port()
    async with broker.connection():
        worker = asyncio.create_task(
            app.run_worker(
                health_check_server=HealthCheckServerSettings(port=port),
                messages_limit=1,
                register_signals=[],
            )
        )
        try:
            healthy = await wait_for_status(port, "/healthz", 200)
            assert healthy.json()["checks"]["broker"] == "connected"
            assert (await get(port, "/readyz")).status == 200
            # The broker connection drops: health and readiness fail, liveness holds.
            await broker.disconnect()
            sick = await wait_for_status(port, "/healthz", 503)
            assert sick.json()["reasons"] == ["broker disconnected"]
            assert (await get(port, "/readyz")).status == 503
            assert (await get(port, "/livez")).status == 200
        finally:
            worker.cancel()
            with pytest.raises(asyncio.CancelledError):
                await worker
    # The server shares the worker's lifecycle: it is gone once run_worker returns.
    with pytest.raises(OSError):
        await get(port, "/healthz")


async def test_health_server_stops_with_the_worker() -> None:
    app = Repid()
    broker = InMemoryServer()
    app.servers.register_server("default", broker)
    router = Router()

    @router.actor(channel="jobs")
    async def job() -> None:
        return None

    app.include_router(router)
    port = free_port()
    async with broker.connection():
        worker = asyncio.create_task(
            app.run_worker(
                health_check_server=HealthCheckServerSettings(port=port),
                messages_limit=1,
                register_signals=[],
            )
        )
        await wait_for_status(port, "/healthz", 200)
        await app.send_message_json(payload={}, channel="jobs", headers={"topic": "job"})
        info = await asyncio.wait_for(worker, 10)
        assert info.processed == 1
    with pytest.raises(OSError):
        await get(port, "/healthz")
