"""Dramatiq adapter: `RedisBroker` or `RabbitmqBroker`, `@dramatiq.actor`, `actor.send`, and
`dramatiq.Worker` (the programmatic form of the `dramatiq` command: one process, its default
8 worker threads). Dramatiq's client is synchronous: `send` calls go one after the other.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common
import dramatiq

args = _common.parse()
recorder = _common.Recorder(args.n, args.out or "", args.latency, args.ready)
lock = threading.Lock()

if args.broker == "redis":
    from dramatiq.brokers.redis import RedisBroker

    broker: Any = RedisBroker(url=args.url)
else:
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = RabbitmqBroker(url=args.url)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=args.queue, actor_name="noop")
def noop(i: int, t: float, w: int) -> None:
    with lock:  # the recorder is shared by the worker threads
        recorder.hit({"i": i, "t": t, "w": w})


async def send(payload: dict[str, Any]) -> None:
    noop.send(**payload)


def main() -> int:
    versions = {
        "subject": f"dramatiq=={_common.version_of('dramatiq')['dramatiq']}",
        "python": _common.python_tag(),
    }
    if args.command == "batch":
        _common.emit({"not_supported": True, **versions})
        return _common.NOT_SUPPORTED
    if args.command == "worker":
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        worker = dramatiq.Worker(broker)
        worker.start()
        stop.wait()
        worker.stop()
        return 0
    if args.command == "send":
        seconds = asyncio.run(_common.send_concurrently(send, args.n, 1))
        result: dict[str, Any] = {"seconds": seconds, "mode": "sequential (sync client)"}
    else:
        result = asyncio.run(_common.send_at_rate(send, args.rate, args.seconds, args.ready))
    broker.close()
    _common.emit({**result, **versions})
    return 0


if __name__ == "__main__":
    sys.exit(main())
