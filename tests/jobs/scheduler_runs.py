"""Running several `repid run ... --scheduler` processes and reading what they enqueued.

Shared by tests/jobs/test_scheduler_processes.py (a short run) and
benchmarks/scheduler_processes.py (the two-minute run).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.jobs._scheduler_app:app"


def offset_to_minute(lead: float) -> float:
    """A clock offset that puts "now" `lead` seconds before a minute boundary."""
    now = time.time()
    return math.ceil(now / 60) * 60 - lead - now


class SchedulerProcess:
    """One `python -m repid run tests.jobs._scheduler_app:app --scheduler` process, its log
    read as it comes (by a thread)."""

    def __init__(
        self, queue: str, kinds: list[str], offset: float, *, log_level: str = "info"
    ) -> None:
        env = dict(
            os.environ,
            REPID_SCHEDULER_QUEUE=queue,
            REPID_SCHEDULER_KINDS=",".join(kinds),
            REPID_SCHEDULER_OFFSET=repr(offset),
        )
        self.kinds = kinds
        self.process = subprocess.Popen(
            [sys.executable, "-m", "repid", "run", APP, "--scheduler", "--log-level", log_level],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.decode(errors="replace"))

    @property
    def ready(self) -> bool:
        """Every scheduler of the process has started."""
        return sum("scheduler.started" in line for line in self.lines) >= len(self.kinds)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code


async def wait_ready(processes: list[SchedulerProcess], timeout: float = 90.0) -> float:
    """Wait until every process's schedulers started; return when (Unix time)."""
    deadline = time.monotonic() + timeout
    while not all(p.ready for p in processes):
        if time.monotonic() > deadline or any(p.process.poll() is not None for p in processes):
            raise AssertionError(
                "scheduler processes did not start:\n" + "".join(p.log for p in processes)
            )
        await asyncio.sleep(0.05)
    return time.time()


async def enqueued_ticks(kind: str, queue: str) -> dict[str, list[int]]:
    """The `job-tick` of every message on `queue`, by actor, in queue order (removing them
    from RabbitMQ, leaving them on Redis)."""
    headers: list[dict[str, str]] = []
    if kind == "redis":
        import redis.asyncio as aioredis

        from repid.connections.redis.keys import KeyLayout
        from tests.jobs.conftest import redis_jobs_url

        client = aioredis.Redis.from_url(redis_jobs_url())
        try:
            for _, fields in await client.xrange(KeyLayout().stream(queue)):
                headers.append(json.loads(fields[b"headers"]))
        finally:
            await client.aclose()
    else:
        from tests import brokers

        while True:
            batch = await asyncio.to_thread(brokers.rabbitmq_get_messages, queue, 500)
            if not batch:
                break
            headers += [item["properties"].get("headers", {}) for item in batch]
    found: dict[str, list[int]] = {}
    for header in headers:
        found.setdefault(header["topic"], []).append(int(header["job-tick"]))
    return found


def duplicates(ticks: list[int]) -> list[int]:
    return sorted(t for t, n in Counter(ticks).items() if n > 1)


def gaps(ticks: list[int], period_ms: int) -> list[tuple[int, int]]:
    ordered = sorted(set(ticks))
    return [(a, b) for a, b in zip(ordered, ordered[1:]) if b - a != period_ms]


def summary(found: dict[str, list[int]]) -> dict[str, Any]:
    seconds = found.get("every_second", [])
    minutes = found.get("every_minute", [])
    return {
        "every_second": len(seconds),
        "every_second_duplicates": duplicates(seconds),
        "every_second_gaps": gaps(seconds, 1000),
        "every_minute": len(minutes),
        "every_minute_duplicates": duplicates(minutes),
    }
