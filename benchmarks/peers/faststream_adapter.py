"""FastStream adapter: a Redis stream with a consumer group (acknowledged) or a RabbitMQ queue.

Public API only: `RedisBroker` / `RabbitBroker`, `@broker.subscriber`, `broker.publish`,
`broker.start()`; defaults otherwise. The stream group reads from the start (`last_id="0"`)
so that messages sent before the worker starts are consumed, as with the other subjects; the
RabbitMQ queue is declared (durable) before sending. FastStream's batch publish exists for
Redis lists only, not streams, so the batch workload is not run.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common

args = _common.parse()
recorder = _common.Recorder(args.n, args.out or "", args.latency, args.ready)

if args.broker == "redis":
    from faststream.redis import RedisBroker, StreamSub

    broker: Any = RedisBroker(args.url)
    source: Any = StreamSub(args.queue, group="bench", consumer="bench-1", last_id="0")
    target = {"stream": args.queue}
    subscription: dict[str, Any] = {"stream": source}
else:
    from faststream.rabbit import RabbitBroker, RabbitQueue

    broker = RabbitBroker(args.url)
    source = RabbitQueue(args.queue, durable=True)
    target = {"queue": args.queue}
    subscription = {"queue": source}


@broker.subscriber(**subscription)
async def noop(body: dict[str, Any]) -> None:
    recorder.hit(body)


async def amain() -> dict[str, Any] | None:
    if args.command == "worker":
        await broker.start()
        await asyncio.Event().wait()  # until the runner stops the process
        return None
    await broker.connect()
    if args.broker == "amqp":
        await broker.declare_queue(source)

    async def send(payload: dict[str, Any]) -> None:
        await broker.publish(payload, **target)

    try:
        if args.command == "send":
            seconds = await _common.send_concurrently(send, args.n, args.concurrency)
            return {"seconds": seconds, "mode": f"{args.concurrency} coroutines"}
        return await _common.send_at_rate(send, args.rate, args.seconds, args.ready)
    finally:
        await broker.stop()


def main() -> int:
    versions = {
        "subject": f"faststream=={_common.version_of('faststream')['faststream']}",
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
