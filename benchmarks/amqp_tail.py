"""Diagnostic: where RabbitMQ's latency tail comes from, at a steady send rate.

    bash scripts/brokers.sh start rabbitmq && source .brokers/env
    .venv/bin/python benchmarks/amqp_tail.py --rate 10000 --seconds 10

A worker process and a producer process, as in `compare.py`'s latency workload, but each
message's latency (send call to actor start) is split in two:

- arrival: from the send call until the worker's AMQP client handed the delivery to the
  subscriber (producer, broker and the sockets);
- internal: from there until the actor started (the worker's own queueing: decoding, the
  delivery loop, the task start).

To time the arrival, the worker wraps `AmqpSubscriber._on_delivery`, a private method: this
is a diagnostic, not a benchmark (figures for claims come from `compare.py`). Deliveries reach
the actor in the order they arrived (one channel, no retries), so the i-th arrival belongs to
the i-th actor call. Latency spikes (over 5 ms) are grouped into events 50 ms apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR / "peers"))

import _common  # noqa: E402  (the steady-rate loop and payloads of compare.py's adapters)
import run as harness  # noqa: E402  (queue declaration through the management API)

QUEUE = "amqp-tail"


def _app() -> Any:
    import repid

    app = repid.Repid(title="amqp tail")
    server = repid.AmqpServer(os.environ["REPID_TEST_AMQP_URL"])
    app.servers.register_server("bench", server, is_default=True)
    return app


async def _worker(n: int, out: str, ready: str) -> None:
    import repid
    from repid.connections.amqp import subscriber

    arrivals: list[float] = []
    original = subscriber.AmqpSubscriber._on_delivery

    def timed(self: Any, *args: Any) -> None:
        arrivals.append(time.monotonic())
        original(self, *args)

    subscriber.AmqpSubscriber._on_delivery = timed  # type: ignore[method-assign]
    app = _app()
    router = repid.Router()
    records: list[tuple[float, float, float]] = []
    done = asyncio.Event()

    @router.actor(channel=QUEUE)
    async def noop(i: int, t: float, w: int) -> None:
        now = time.monotonic()
        if w:  # a warm-up message: the producer starts its schedule once one got through
            arrivals.pop(0)
            if not os.path.exists(ready):
                Path(ready).write_text("1")
            return
        k = len(records)
        records.append((t, now - t, arrivals[k] - t if k < len(arrivals) else 0.0))
        if len(records) >= n:
            done.set()

    app.include_router(router)
    async with app.servers.default.connection():
        task = asyncio.create_task(app.run_worker())
        await done.wait()
        task.cancel()
    with open(out, "w") as file:
        json.dump(records, file)
    os._exit(0)  # the records are saved; no need to wait for a graceful shutdown


async def _producer(rate: float, seconds: float, ready: str) -> None:
    app = _app()

    async def send(payload: dict[str, Any]) -> None:
        await app.send_message_json(channel=QUEUE, payload=payload, headers={"topic": "noop"})

    async with app.servers.default.connection():
        await _common.send_at_rate(send, rate, seconds, ready)


def _percentiles(values: list[float]) -> str:
    values = sorted(values)
    if not values:
        return "no values"
    marks = [values[min(len(values) - 1, int(len(values) * q))] * 1000 for q in (0.5, 0.9, 0.99)]
    return "p50 {:.2f} p90 {:.2f} p99 {:.2f} max {:.2f} ms".format(*marks, values[-1] * 1000)


def run_pair(consumer: list[str], producer: list[str]) -> Any:
    """On a fresh QUEUE, start `consumer + [out, ready]`, run `producer + [ready]` to its end,
    wait for the consumer and return the JSON it wrote to `out` (amqp_floor.py uses it too)."""
    url = os.environ["REPID_TEST_AMQP_URL"]
    harness.amqp_delete(url, QUEUE)
    harness.amqp_declare(url, QUEUE, "classic")
    with tempfile.TemporaryDirectory() as tmp:
        out, ready = os.path.join(tmp, "records.json"), os.path.join(tmp, "ready")
        worker = subprocess.Popen([*consumer, out, ready])
        subprocess.run([*producer, ready], check=True)
        worker.wait(120)
        with open(out) as file:
            return json.load(file)


def _run(rate: float, seconds: float) -> None:
    n = int(rate * seconds)
    records = [
        tuple(r)
        for r in run_pair(
            [sys.executable, __file__, "worker", str(n)],
            [sys.executable, __file__, "producer", str(rate), str(seconds)],
        )
    ]
    print(f"rate {rate:,.0f}/s for {seconds:.0f} s, {len(records):,} messages")
    print("  latency ", _percentiles([r[1] for r in records]))
    print("  arrival ", _percentiles([r[2] for r in records]))
    print("  internal", _percentiles([r[1] - r[2] for r in records]))
    t0 = min(r[0] for r in records)
    events: list[list[float]] = []  # [first, last, worst, count]
    for sent, latency in sorted((r[0] - t0, r[1]) for r in records if r[1] > 0.005):
        if events and sent - events[-1][1] < 0.05:
            events[-1][1] = sent
            events[-1][2] = max(events[-1][2], latency)
            events[-1][3] += 1
        else:
            events.append([sent, sent, latency, 1])
    print(f"  {len(events)} spikes over 5 ms; the worst five:")
    for first, last, worst, count in sorted(events, key=lambda e: -e[2])[:5]:
        print(
            f"    at {first:6.2f}-{last:6.2f} s: {count:5.0f} messages, worst {worst * 1000:.1f} ms"
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        asyncio.run(_worker(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "producer":
        asyncio.run(_producer(float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
    else:
        parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
        parser.add_argument("--rate", type=float, action="append")
        parser.add_argument("--seconds", type=float, default=10.0)
        args = parser.parse_args()
        for rate in args.rate or [5000.0, 10000.0]:
            _run(rate, args.seconds)


if __name__ == "__main__":
    main()
