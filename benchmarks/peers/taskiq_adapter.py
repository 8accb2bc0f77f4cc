"""taskiq adapter: taskiq-redis's RedisStreamBroker (acknowledged streams) or taskiq-aio-pika.

Public API only: the broker classes, `@broker.task`, `.kiq()`, `broker.startup()` and
`taskiq.api.run_receiver_task` (the programmatic `taskiq worker`, defaults otherwise:
max_async_tasks=100). The stream group reads from the start (`consumer_id="0"`), so messages
sent before the worker starts are consumed, as with the other subjects.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common

args = _common.parse()
if args.broker == "redis":
    from taskiq_redis import RedisStreamBroker

    broker: Any = RedisStreamBroker(args.url, queue_name=args.queue, consumer_id="0")
else:
    from taskiq_aio_pika import AioPikaBroker

    broker = AioPikaBroker(args.url, queue_name=args.queue)

recorder = _common.Recorder(args.n, args.out or "", args.latency, args.ready)


@broker.task(task_name="noop")
async def noop(i: int, t: float, w: int) -> None:
    recorder.hit({"i": i, "t": t, "w": w})


async def send(payload: dict[str, Any]) -> None:
    await noop.kiq(**payload)


async def amain() -> dict[str, Any] | None:
    if args.command == "worker":
        from taskiq.api import run_receiver_task

        broker.is_worker_process = True
        await broker.startup()
        await run_receiver_task(broker)
        return None
    await broker.startup()
    try:
        if args.command == "send":
            seconds = await _common.send_concurrently(send, args.n, args.concurrency)
            return {"seconds": seconds, "mode": f"{args.concurrency} coroutines"}
        if args.command == "rate":
            return await _common.send_at_rate(send, args.rate, args.seconds, args.ready)
        return None
    finally:
        await broker.shutdown()


def main() -> int:
    plugin = "taskiq-redis" if args.broker == "redis" else "taskiq-aio-pika"
    found = _common.version_of("taskiq", plugin)
    versions = {
        "subject": ", ".join(f"{k}=={v}" for k, v in found.items()),
        "python": _common.python_tag(),
    }
    if args.command == "batch":
        _common.emit({"not_supported": True, **versions})
        return _common.NOT_SUPPORTED
    result = asyncio.run(amain())
    if result is not None:
        _common.emit({**result, **versions})
    return 0


if __name__ == "__main__":
    sys.exit(main())
