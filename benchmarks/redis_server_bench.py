"""Server-level Redis benchmark: `RedisServer` alone, without the app or the worker.

    source .brokers/env   # or: export REPID_TEST_REDIS_URL=redis://127.0.0.1:PORT/0
    PYTHONPATH=. .venv/bin/python benchmarks/redis_server_bench.py [--n 20000] [--capacity 1000]

Measures, on fresh channels whose keys are deleted afterwards:

* publish/s (single): N awaited `server.publish(...)` calls, one after the other;
* publish/s (batched): the same N messages through `server.publish_batch(...)` in batches of
  `--batch-size` (one pipelined round trip per batch);
* consume/s: N messages read by `server.subscribe(...)` with `DeliveryCapacity(--capacity)` and
  a callback that behaves like the worker (takes a slot, schedules a task that acks and gives the
  slot back), from subscribe until the last ack.

Prints one human-readable line per figure and a final JSON line. Next to each wall-clock rate
it gives the rate per CPU-second of this process (`time.process_time`), which varies less on a
shared machine (Redis' own CPU time is not included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid

import redis.asyncio as aioredis

from repid.connections.abc import DeliveryCapacity, ReceivedMessageT
from repid.connections.redis import RedisServer
from repid.data import MessageData


async def run(url: str, n: int, capacity_limit: int, batch_size: int) -> dict[str, float]:
    tag = uuid.uuid4().hex[:8]
    single_channel = f"bench-single-{tag}"
    batch_channel = f"bench-batch-{tag}"
    server = RedisServer(url)
    raw = aioredis.Redis.from_url(url)
    messages = [
        MessageData(
            payload=b'{"n":%d}' % i, headers={"topic": "noop"}, content_type="application/json"
        )
        for i in range(n)
    ]
    results: dict[str, float] = {"n": n}
    try:
        await server.connect()

        started, cpu = time.perf_counter(), time.process_time()
        for message in messages:
            await server.publish(channel=single_channel, message=message)
        results["publish_single_per_s"] = n / (time.perf_counter() - started)
        results["publish_single_per_cpu_s"] = n / (time.process_time() - cpu)

        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, n, batch_size):
            await server.publish_batch(
                channel=batch_channel, messages=messages[start : start + batch_size]
            )
        results["publish_batch_per_s"] = n / (time.perf_counter() - started)
        results["publish_batch_per_cpu_s"] = n / (time.process_time() - cpu)

        capacity = DeliveryCapacity(capacity_limit)
        acked = 0
        all_done = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        async def settle(message: ReceivedMessageT) -> None:
            nonlocal acked
            try:
                await message.ack()
            finally:
                capacity.release()
            acked += 1
            if acked == n:
                all_done.set()

        async def callback(message: ReceivedMessageT) -> None:
            capacity.acquire()
            task = asyncio.get_running_loop().create_task(settle(message))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        started, cpu = time.perf_counter(), time.process_time()
        subscriber = await server.subscribe(
            channels_to_callbacks={batch_channel: callback}, capacity=capacity
        )
        await asyncio.wait_for(all_done.wait(), timeout=max(60.0, n / 500))
        results["consume_per_s"] = n / (time.perf_counter() - started)
        results["consume_per_cpu_s"] = n / (time.process_time() - cpu)
        await subscriber.close()
        left = await raw.xlen(server.stream_key(batch_channel))
        if left:
            raise RuntimeError(f"{left} messages left in {batch_channel} after consuming")
    finally:
        await server.disconnect()
        await raw.delete(
            *(server.stream_key(c) for c in (single_channel, batch_channel)),
            server.dead_letter_stream(batch_channel) or "",
        )
        await raw.aclose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("REPID_TEST_REDIS_URL"))
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--capacity", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    if not args.url:
        print("set REPID_TEST_REDIS_URL or pass --url", file=sys.stderr)
        return 2
    results = asyncio.run(run(args.url, args.n, args.capacity, args.batch_size))
    for label, key in (
        ("publish (single): ", "publish_single"),
        ("publish (batched):", "publish_batch"),
        ("consume + ack:    ", "consume"),
    ):
        wall, cpu = results[f"{key}_per_s"], results[f"{key}_per_cpu_s"]
        print(f"{label} {wall:>10,.0f} msg/s  ({cpu:,.0f} per CPU-second of this process)")
    print(json.dumps({k: round(v, 1) for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
