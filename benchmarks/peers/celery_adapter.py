"""Celery adapter: Redis or RabbitMQ (py-amqp) broker, no result backend, `@app.task`,
`task.apply_async`, and the worker started with `app.worker_main` with the solo pool (one
process, as for every subject; defaults otherwise: prefetch multiplier 4, late acks off).
Celery's client is synchronous: sends go one after the other.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common
from celery import Celery

args = _common.parse()
recorder = _common.Recorder(args.n, args.out or "", args.latency, args.ready)
app = Celery("bench", broker=args.url)
app.conf.task_default_queue = args.queue


@app.task(name="noop")
def noop(i: int, t: float, w: int) -> None:
    recorder.hit({"i": i, "t": t, "w": w})


async def send(payload: dict[str, Any]) -> None:
    noop.apply_async(kwargs=payload)


def main() -> int:
    versions = {
        "subject": f"celery=={_common.version_of('celery')['celery']}",
        "python": _common.python_tag(),
    }
    if args.command == "batch":
        _common.emit({"not_supported": True, **versions})
        return _common.NOT_SUPPORTED
    if args.command == "worker":
        app.worker_main(["worker", "--pool=solo", "--loglevel=WARNING", "-Q", args.queue])
        return 0
    if args.command == "send":
        seconds = asyncio.run(_common.send_concurrently(send, args.n, 1))
        result: dict[str, Any] = {"seconds": seconds, "mode": "sequential (sync client)"}
    else:
        result = asyncio.run(_common.send_at_rate(send, args.rate, args.seconds, args.ready))
    _common.emit({**result, **versions})
    return 0


if __name__ == "__main__":
    sys.exit(main())
