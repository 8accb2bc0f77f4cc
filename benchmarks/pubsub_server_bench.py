"""Server-level Pub/Sub benchmark: `PubsubServer` alone against the emulator.

    source .brokers/env   # or: export REPID_TEST_PUBSUB_HOST=127.0.0.1:PORT
    PYTHONPATH=. .venv/bin/python benchmarks/pubsub_server_bench.py [--n 5000] [--capacity 1000]
        [--stream-lifetime default,none --reps 3]

Measures, on fresh topics/subscriptions (created through the emulator's REST API, deleted
afterwards):

* publish/s (single): N awaited `server.publish(...)` calls, one after the other;
* publish/s (concurrent): N `server.publish(...)` calls, at most `--concurrency` in flight;
* publish/s (batched): the same N messages through `server.publish_batch(...)` (one
  PublishRequest per 1,000 messages);
* consume/s: N no-op messages read by `server.subscribe(...)` with
  `DeliveryCapacity(--capacity)` and a callback that behaves like the worker (takes a slot,
  schedules a task that acks and gives the slot back), from subscribe until the last ack.

`--stream-lifetime` runs the whole set once per value (alternating, `--reps` times), to
compare the emulator's default stream rotation with none. Prints one human-readable line per
figure and a JSON line per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.request
import uuid

from repid.connections.abc import DeliveryCapacity, ReceivedMessageT
from repid.connections.pubsub import PubsubServer
from repid.data import MessageData

PROJECT = "repid-bench"


def _rest(host: str, method: str, path: str, body: dict[str, object] | None = None) -> None:
    request = urllib.request.Request(
        f"http://{host}/v1/{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def create_pair(host: str, name: str) -> None:
    _rest(host, "PUT", f"projects/{PROJECT}/topics/{name}", {})
    _rest(
        host,
        "PUT",
        f"projects/{PROJECT}/subscriptions/{name}",
        {"topic": f"projects/{PROJECT}/topics/{name}", "ackDeadlineSeconds": 60},
    )


def delete_pair(host: str, name: str) -> None:
    for kind in ("subscriptions", "topics"):
        try:
            _rest(host, "DELETE", f"projects/{PROJECT}/{kind}/{name}")
        except OSError as exc:
            print(f"cleanup of {kind}/{name} failed: {exc}", file=sys.stderr)


async def consume(server: PubsubServer, channel: str, n: int, limit: int) -> float:
    capacity = DeliveryCapacity(limit)
    done = asyncio.Event()
    acked = 0
    tasks: set[asyncio.Task[None]] = set()

    async def settle(message: ReceivedMessageT) -> None:
        nonlocal acked
        try:
            await message.ack()
        finally:
            capacity.release()
        acked += 1
        if acked >= n:
            done.set()

    async def callback(message: ReceivedMessageT) -> None:
        capacity.acquire()
        task = asyncio.create_task(settle(message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    started = time.perf_counter()
    subscriber = await server.subscribe(
        channels_to_callbacks={channel: callback}, capacity=capacity
    )
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - started
    await subscriber.close()
    return elapsed


async def run(
    host: str, n: int, limit: int, concurrency: int, stream_lifetime: float | str | None = "default"
) -> dict[str, float]:
    tag = uuid.uuid4().hex[:8]
    names = {kind: f"bench-{kind}-{tag}" for kind in ("single", "concurrent", "batch")}
    for name in names.values():
        create_pair(host, name)
    if stream_lifetime == "default":
        server = PubsubServer(PROJECT, emulator_host=host, ack_deadline=60)
    else:
        assert not isinstance(stream_lifetime, str)
        server = PubsubServer(
            PROJECT, emulator_host=host, ack_deadline=60, stream_lifetime=stream_lifetime
        )
    message = MessageData(b"{}", None, "application/json")
    results: dict[str, float] = {}
    try:
        async with server.connection():
            started = time.perf_counter()
            for _ in range(n):
                await server.publish(channel=names["single"], message=message)
            results["publish_single_per_s"] = n / (time.perf_counter() - started)

            semaphore = asyncio.Semaphore(concurrency)

            async def one() -> None:
                async with semaphore:
                    await server.publish(channel=names["concurrent"], message=message)

            started = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(n)))
            results["publish_concurrent_per_s"] = n / (time.perf_counter() - started)

            started = time.perf_counter()
            await server.publish_batch(channel=names["batch"], messages=[message] * n)
            results["publish_batch_per_s"] = n / (time.perf_counter() - started)

            results["consume_per_s"] = n / await consume(server, names["single"], n, limit)
    finally:
        for name in names.values():
            delete_pair(host, name)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--capacity", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--host", default=os.environ.get("REPID_TEST_PUBSUB_HOST"))
    parser.add_argument(
        "--stream-lifetime",
        default="default",
        help="comma-separated PubsubServer(stream_lifetime=...) values to alternate: "
        "'default' (5 s on the emulator), 'none' (no rotation) or seconds",
    )
    parser.add_argument("--reps", type=int, default=1, help="runs of each --stream-lifetime")
    args = parser.parse_args()
    if not args.host:
        sys.exit("set REPID_TEST_PUBSUB_HOST (scripts/brokers.sh start pubsub) or pass --host")
    lifetimes: list[float | str | None] = [
        "default" if v == "default" else None if v == "none" else float(v)
        for v in args.stream_lifetime.split(",")
    ]
    for rep in range(args.reps):
        for lifetime in lifetimes:  # alternated, so a drift of the machine hits each alike
            results = asyncio.run(run(args.host, args.n, args.capacity, args.concurrency, lifetime))
            label = f"run {rep + 1}, stream_lifetime={lifetime}"
            print(f"[{label}] publish/s (single): {results['publish_single_per_s']:,.0f}")
            print(
                f"[{label}] publish/s (concurrent, {args.concurrency} in flight): "
                f"{results['publish_concurrent_per_s']:,.0f}"
            )
            print(f"[{label}] publish/s (publish_batch): {results['publish_batch_per_s']:,.0f}")
            print(
                f"[{label}] consume/s (capacity {args.capacity}, ack each): "
                f"{results['consume_per_s']:,.0f}"
            )
            print(
                json.dumps(
                    {
                        "n": args.n,
                        "capacity": args.capacity,
                        "stream_lifetime": lifetime,
                        "run": rep + 1,
                        **results,
                    }
                )
            )


if __name__ == "__main__":
    main()
