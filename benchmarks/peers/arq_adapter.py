"""arq adapter (Redis only): `create_pool(...).enqueue_job` and `arq.worker.Worker`.

Public API only, defaults otherwise (max_jobs=10, poll_delay=0.5 s, results kept).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker, func

args = _common.parse()
settings = RedisSettings.from_dsn(args.url)
recorder = _common.Recorder(args.n, args.out or "", args.latency, args.ready)


async def noop(ctx: Any, i: int, t: float, w: int) -> None:
    recorder.hit({"i": i, "t": t, "w": w})


async def amain() -> dict[str, Any] | None:
    pool = await create_pool(settings, default_queue_name=args.queue)

    async def send(payload: dict[str, Any]) -> None:
        await pool.enqueue_job("noop", **payload)

    try:
        if args.command == "send":
            seconds = await _common.send_concurrently(send, args.n, args.concurrency)
            return {"seconds": seconds, "mode": f"{args.concurrency} coroutines"}
        return await _common.send_at_rate(send, args.rate, args.seconds, args.ready)
    finally:
        await pool.aclose()


def main() -> int:
    versions = {
        "subject": f"arq=={_common.version_of('arq')['arq']}",
        "python": _common.python_tag(),
    }
    if args.command == "batch":
        _common.emit({"not_supported": True, **versions})
        return _common.NOT_SUPPORTED
    if args.command == "worker":
        worker = Worker(
            functions=[func(noop, name="noop")], redis_settings=settings, queue_name=args.queue
        )
        worker.run()
        return 0
    _common.emit({**(asyncio.run(amain()) or {}), **versions})
    return 0


if __name__ == "__main__":
    sys.exit(main())
