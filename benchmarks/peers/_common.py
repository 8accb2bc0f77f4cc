"""What every peer adapter shares: the command line, the recorder and the steady-rate loop.

Standard library only: each adapter runs in its peer's own virtual environment
(`.bench/peers/NAME`, see `install.sh`) with this directory on `sys.path`, and nothing of
Repid is importable there.

An adapter is a small file that uses only its peer's public API and calls `main(Adapter)`:

    python benchmarks/peers/arq_adapter.py send --url redis://... --queue Q --n 20000
    python benchmarks/peers/arq_adapter.py worker --url ... --queue Q --n 20000 --out r.json

Subcommands (each prints one JSON line on stdout; `benchmarks/peers.py` drives them):

- `send`: N awaited sends shared by `--concurrency` coroutines (threads' worth of nothing for
  a synchronous client: it sends one after the other and says so in `mode`);
- `batch`: N messages through the peer's batch API in batches of `--batch-size`; exit status
  3 when the peer has none;
- `worker`: consume until N messages were seen, timing from the first to the last actor call;
  with `--latency`, each call also records now - the `t` its payload carries;
- `rate`: send at a steady `--rate` for `--seconds` (after warm-up messages that wait for the
  worker's `--ready` file), each payload stamped with `time.monotonic()` at the send call.

Payloads are `{"i": int, "t": float, "w": 0|1}` (`w`: warm-up, not counted). CLOCK_MONOTONIC is
one clock for every process of the machine, so a worker can compare its own `monotonic()` with
the producer's stamp.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

NOT_SUPPORTED = 3


class Recorder:
    """Counts actor calls; writes `out` (atomically) once `n` counted calls were seen."""

    def __init__(self, n: int, out: str, latency: bool, ready: str | None = None) -> None:
        self.n = n
        self.out = out
        self.latency = latency
        self.ready = ready
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None
        self.latencies_ms: list[float] = []
        self.done = False
        # The runner may lower `n` afterwards (a producer that could not send at the asked
        # rate): it writes the number it sent to `out + ".expect"`, watched by this thread.
        if out:
            threading.Thread(target=self._watch_expect, daemon=True).start()

    def _watch_expect(self) -> None:
        path = self.out + ".expect"
        while not self.done:
            time.sleep(0.05)
            if os.path.exists(path):
                with open(path) as handle:
                    text = handle.read().strip()
                if text:
                    self.n = int(text)
                    if self.count >= self.n and not self.done:
                        self.done = True
                        self.last = time.monotonic()
                        self._write()

    def hit(self, payload: Any) -> None:
        """Call at the very start of the actor with the message's payload (a dict)."""
        now = time.monotonic()
        if isinstance(payload, dict) and payload.get("w"):
            if self.ready and not os.path.exists(self.ready):
                with open(self.ready, "w") as handle:
                    handle.write("1")
            return
        if self.first is None:
            self.first = now
        self.count += 1
        if self.latency:
            self.latencies_ms.append((now - float(payload["t"])) * 1000.0)
        if self.count >= self.n and not self.done:
            self.last = now
            self.done = True
            self._write()

    def _write(self) -> None:
        document = {
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "seconds": (self.last or 0.0) - (self.first or 0.0),
            "latencies_ms": self.latencies_ms if self.latency else None,
        }
        tmp = self.out + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(document, handle)
        os.replace(tmp, self.out)


def payload(i: int, warmup: bool = False) -> dict[str, Any]:
    return {"i": i, "t": time.monotonic(), "w": 1 if warmup else 0}


async def send_concurrently(
    send: Callable[[dict[str, Any]], Awaitable[Any]], n: int, concurrency: int
) -> float:
    """N awaited `send(payload)` calls shared by `concurrency` coroutines; returns seconds."""
    counter = iter(range(n))

    async def sender() -> None:
        for i in counter:
            await send(payload(i))

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return time.perf_counter() - started


async def send_at_rate(
    send: Callable[[dict[str, Any]], Awaitable[Any]],
    rate: float,
    seconds: float,
    ready: str,
    *,
    warmup_timeout: float = 60.0,
) -> dict[str, Any]:
    """Warm up until the worker wrote `ready`, then send `rate` x `seconds` messages on time.

    Each message is its own task, started when it is due (the schedule is t0 + i / rate), so a
    slow confirmation never delays the next send; the tasks still run on one event loop, so a
    producer that cannot keep up falls behind, and `achieved_rate` shows it.
    """
    deadline = time.monotonic() + warmup_timeout
    warm = 0
    while not os.path.exists(ready):
        if time.monotonic() > deadline:
            raise RuntimeError("the worker never processed a warm-up message")
        await send(payload(warm, warmup=True))
        warm += 1
        await asyncio.sleep(0.05)
    total = int(rate * seconds)
    tasks: set[asyncio.Task[Any]] = set()
    errors: list[BaseException] = []

    def finished(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            errors.append(task.exception())  # type: ignore[arg-type]

    loop = asyncio.get_running_loop()
    durations: list[float] = []

    async def timed(body: dict[str, Any]) -> None:
        await send(body)
        durations.append(time.monotonic() - body["t"])

    started = time.monotonic()
    stop_at = started + seconds
    i = 0
    while i < total:
        now = time.monotonic()
        if now >= stop_at + 1.0:
            break  # cannot keep up: stop on time, the achieved rate says how far it got
        due = min(total, int((now - started) * rate) + 1)
        while i < due:
            task = loop.create_task(timed(payload(i)))
            tasks.add(task)
            task.add_done_callback(finished)
            i += 1
        next_at = started + i / rate
        delay = next_at - time.monotonic()
        await asyncio.sleep(delay if delay > 0 else 0)
    sent_s = time.monotonic() - started
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    if errors:
        raise RuntimeError(f"{len(errors)} sends failed, first: {errors[0]!r}")
    durations.sort()
    return {
        "sent": i,
        "seconds": sent_s,
        "achieved_rate": i / sent_s,
        "warmup": warm,
        # How long the send call itself took (to the broker's acceptance), for diagnosis.
        "send_p50_ms": durations[len(durations) // 2] * 1000 if durations else None,
        "send_p99_ms": durations[int(len(durations) * 0.99)] * 1000 if durations else None,
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=("send", "batch", "worker", "rate"))
    parser.add_argument("--broker", choices=("redis", "amqp"), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--out", default=None)
    parser.add_argument("--ready", default=None)
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    return parser.parse_args(argv)


def emit(document: dict[str, Any]) -> None:
    print(json.dumps(document), flush=True)


def version_of(*distributions: str) -> dict[str, str]:
    import importlib.metadata

    found = {}
    for name in distributions:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def python_tag() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
