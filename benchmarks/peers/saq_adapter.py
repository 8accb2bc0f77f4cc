"""SAQ adapter (Redis only): `Queue.from_url(...).enqueue` and `saq.Worker`.

Public API only, defaults otherwise (concurrency=10).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common
from saq import Queue, Worker

args = _common.parse()
recorder = _common.Recorder(args.n, args.out or "", args.latency, args.ready)


async def noop(ctx: Any, *, i: int, t: float, w: int) -> None:
    recorder.hit({"i": i, "t": t, "w": w})


async def amain() -> dict[str, Any] | None:
    queue = Queue.from_url(args.url, name=args.queue)
    await queue.connect()
    if args.command == "worker":
        worker = Worker(queue, functions=[("noop", noop)])
        await worker.start()
        return None

    async def send(payload: dict[str, Any]) -> None:
        await queue.enqueue("noop", **payload)

    try:
        if args.command == "send":
            seconds = await _common.send_concurrently(send, args.n, args.concurrency)
            return {"seconds": seconds, "mode": f"{args.concurrency} coroutines"}
        return await _common.send_at_rate(send, args.rate, args.seconds, args.ready)
    finally:
        await queue.disconnect()


def main() -> int:
    versions = {
        "subject": f"saq=={_common.version_of('saq')['saq']}",
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
