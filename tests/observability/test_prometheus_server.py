"""A real Prometheus server scrapes `repid run --workers 2 --metrics`; the counters read back
through Prometheus' HTTP query API match the messages sent.

Prometheus is Debian's `prometheus` package (scripts/test.sh installs it), started here on
loopback with a 1 s scrape interval; the workers consume from the test Redis.
"""

from __future__ import annotations

import pytest

pytest.importorskip("prometheus_client")  # the prometheus extra

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from repid import Repid
from tests import brokers
from tests.health.http_client import free_port, get

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.redis


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        message = "the prometheus binary is missing (apt-get install prometheus)"
        if brokers.brokers_required():
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """(prometheus port, metrics port it scrapes)."""
    binary = prometheus_binary()
    metrics_port, port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: repid\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{metrics_port}']\n"
    )
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("w"),
    )
    try:
        yield port, metrics_port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def query(port: int, expression: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
    except OSError:
        return []  # not up yet
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


def scalar(port: int, expression: str) -> float | None:
    result = query(port, expression)
    return float(result[0]["value"][1]) if result else None  # type: ignore[index]


def by_label(port: int, expression: str, label: str) -> dict[str, float]:
    return {
        str(r["metric"][label]): float(r["value"][1])  # type: ignore[index]
        for r in query(port, expression)
    }


async def test_prometheus_scrapes_two_workers(prometheus: tuple[int, int], tmp_path: Path) -> None:
    from repid.connections.redis import RedisServer

    port, metrics_port = prometheus
    url = brokers.redis_url()
    channel = f"metrics-{uuid.uuid4().hex[:8]}"
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {
        **os.environ,
        "METRICS_TEST_CHANNEL": channel,
        "METRICS_TEST_PIDS": str(pids),
        "REPID_TEST_REDIS_URL": url,
    }
    health_port = free_port()
    command = [
        sys.executable, "-m", "repid", "run", "tests.observability.metrics_app:app",
        "--workers", "2", "--tasks-limit", "1", "--graceful-shutdown-time", "2",
        "--metrics", f"127.0.0.1:{metrics_port}", "--health", f"127.0.0.1:{health_port}",
        "--log-level", "warning",
    ]  # fmt: skip
    log = (tmp_path / "workers.log").open("w")
    supervisor = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    total = 40
    try:
        # Both workers consume before anything is sent, so that both take messages.
        deadline = time.monotonic() + 60
        while True:
            answer = None
            with contextlib.suppress(OSError):
                answer = await get(health_port, "/readyz")
            if answer is not None and answer.status == 200:
                break
            assert supervisor.poll() is None, (tmp_path / "workers.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "workers.log").read_text()[-3000:]
            await asyncio.sleep(0.2)
        app = Repid()
        app.servers.register_server("redis", RedisServer(url), is_default=True)
        async with app.servers.default.connection():
            for n in range(1, total + 1):
                await app.send_message_json(
                    channel=channel, payload={"n": n}, headers={"topic": "work"}
                )

        processed = f'sum(repid_messages_processed_total{{channel="{channel}"}})'
        deadline = time.monotonic() + 90
        while scalar(port, processed) != total:
            assert supervisor.poll() is None, (tmp_path / "workers.log").read_text()
            assert time.monotonic() < deadline, (
                f"Prometheus saw {scalar(port, processed)} of {total}; "
                + (tmp_path / "workers.log").read_text()[-3000:]
            )
            await asyncio.sleep(0.5)

        selector = f'{{channel="{channel}"}}'
        outcomes = by_label(
            port, f"sum by (outcome) (repid_messages_processed_total{selector})", "outcome"
        )
        assert outcomes == {"ack": total * 4 / 5, "nack": total / 5}
        errors = by_label(
            port, f"sum by (error_type) (repid_messages_failed_total{selector})", "error_type"
        )
        assert errors == {"ValueError": total / 5}
        assert scalar(port, f"sum(repid_messages_received_total{selector})") == total
        count = f"sum(repid_message_processing_seconds_count{selector})"
        assert scalar(port, count) == total
        assert scalar(port, f"sum(repid_messages_in_flight{selector})") == 0
        # The broker's channel statistics (Redis: XINFO) are there too.
        assert scalar(port, f"repid_queue_depth{selector}") is not None
        assert scalar(port, 'up{job="repid"}') == 1
        # Both processes took messages: the numbers above are the sum over two workers.
        counts = {p.name: len(p.read_text().splitlines()) for p in pids.iterdir()}
        assert len(counts) == 2 and sum(counts.values()) == total, counts
    finally:
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(timeout=30)
        except subprocess.TimeoutExpired:
            supervisor.kill()
            supervisor.wait()
        log.close()


async def test_one_process_serves_metrics_and_the_health_server_too(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from repid.connections.redis import RedisServer

    url = brokers.redis_url()
    channel = f"metrics-{uuid.uuid4().hex[:8]}"
    pids = tmp_path / "pids"
    pids.mkdir()
    metrics_port, health_port = free_port(), free_port()
    env = {
        **os.environ,
        "METRICS_TEST_CHANNEL": channel,
        "METRICS_TEST_PIDS": str(pids),
        "REPID_TEST_REDIS_URL": url,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [
        sys.executable, "-m", "repid", "run", "tests.observability.metrics_app:app",
        "--metrics", f"127.0.0.1:{metrics_port}", "--health", f"127.0.0.1:{health_port}",
        "--graceful-shutdown-time", "2", "--log-level", "warning",
    ]  # fmt: skip
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)

    def processed(text: str) -> float:
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "repid_messages_processed_total"
            and sample.labels.get("channel") == channel
        )

    try:
        app = Repid()
        app.servers.register_server("redis", RedisServer(url), is_default=True)
        async with app.servers.default.connection():
            for n in range(1, 11):
                await app.send_message_json(
                    channel=channel, payload={"n": n}, headers={"topic": "work"}
                )
        deadline = time.monotonic() + 60
        while True:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            answer = None
            with contextlib.suppress(OSError):
                answer = await get(metrics_port, "/metrics")
            if (
                answer is not None
                and answer.status == 200
                and processed(answer.body.decode()) == 10
            ):
                break
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            await asyncio.sleep(0.2)
        from_health = await get(health_port, "/metrics")
        assert from_health.status == 200 and processed(from_health.body.decode()) == 10
        assert (await get(metrics_port, "/readyz")).status == 404  # metrics only there
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
