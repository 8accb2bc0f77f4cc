"""Repid adapter: the same file runs for ours (the checkout on PYTHONPATH) and repid==2.1.4.

Public API of seed 002 only (`Repid`, `Router`, `RedisServer`, `AmqpServer`,
`app.servers.register_server`, `app.send_message_json`, `app.run_worker`); the batch
subcommand uses `app.send_messages_json` where the imported package has it (ours), and with
`--server-batch` the server's own `publish_batch` (the reference the issue compares with).
The AMQP queue is declared by the runner beforehand (Repid expects topology to exist).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common

if os.environ.get("BENCH_NO_HIREDIS"):
    # An older revision of ours that does not declare hiredis: redis-py's own parser.
    sys.modules["hiredis"] = None  # type: ignore[assignment]

import repid

# The default routing strategy routes on the `topic` header (the actor's name).
HEADERS = {"topic": "noop"}


def _app(args: Any) -> Any:
    app = repid.Repid(title="peer benchmark")
    server = repid.RedisServer(args.url) if args.broker == "redis" else repid.AmqpServer(args.url)
    app.servers.register_server("bench", server, is_default=True)
    return app


def _version() -> str:
    path = os.path.dirname(os.path.abspath(repid.__file__ or ""))
    version = importlib.metadata.version("repid")
    if "site-packages" in path.split(os.sep):
        return f"repid=={version}"
    return f"ours ({repid.__version__}, {os.path.basename(os.path.dirname(path))})"


async def _send(args: Any) -> dict[str, Any]:
    app = _app(args)
    queue = args.queue

    async def send(payload: dict[str, Any]) -> None:
        await app.send_message_json(channel=queue, payload=payload, headers=HEADERS)

    async with app.servers.default.connection():
        seconds = await _common.send_concurrently(send, args.n, args.concurrency)
    return {"seconds": seconds, "mode": f"{args.concurrency} coroutines"}


async def _batch(args: Any, server_batch: bool) -> dict[str, Any] | None:
    app = _app(args)
    queue = args.queue
    batch_api = getattr(app, "send_messages_json", None)
    if server_batch:
        from repid.data import MessageData

        server = app.servers.default
        if not hasattr(server, "publish_batch"):
            return None
    elif batch_api is None:
        return None
    async with app.servers.default.connection():
        started = asyncio.get_running_loop().time()
        for start in range(0, args.n, args.batch_size):
            stop = min(start + args.batch_size, args.n)
            if server_batch:
                await server.publish_batch(
                    channel=queue,
                    messages=[
                        MessageData(
                            payload=json.dumps(_common.payload(i)).encode(),
                            headers=HEADERS,
                            content_type="application/json",
                        )
                        for i in range(start, stop)
                    ],
                )
            else:
                results = await batch_api(
                    [
                        repid.OutgoingMessage(
                            channel=queue, payload=_common.payload(i), headers=HEADERS
                        )
                        for i in range(start, stop)
                    ]
                )
                results.raise_on_error()
        seconds = asyncio.get_running_loop().time() - started
    return {
        "seconds": seconds,
        "mode": "server.publish_batch" if server_batch else "app.send_messages_json",
    }


async def _worker(args: Any) -> None:
    app = _app(args)
    recorder = _common.Recorder(args.n, args.out, args.latency, args.ready)
    router = repid.Router()

    @router.actor(channel=args.queue)
    async def noop(i: int, t: float, w: int) -> None:
        recorder.hit({"i": i, "t": t, "w": w})

    app.include_router(router)
    async with app.servers.default.connection():
        await app.run_worker()


async def _rate(args: Any) -> dict[str, Any]:
    app = _app(args)
    queue = args.queue

    async def send(payload: dict[str, Any]) -> None:
        await app.send_message_json(channel=queue, payload=payload, headers=HEADERS)

    async with app.servers.default.connection():
        return await _common.send_at_rate(send, args.rate, args.seconds, args.ready)


def main() -> int:
    argv = sys.argv[1:]
    server_batch = "--server-batch" in argv
    if server_batch:
        argv.remove("--server-batch")
    args = _common.parse(argv)
    versions = {"subject": _version(), "python": _common.python_tag()}
    if args.command == "send":
        result: dict[str, Any] | None = asyncio.run(_send(args))
    elif args.command == "batch":
        result = asyncio.run(_batch(args, server_batch))
        if result is None:
            _common.emit({"not_supported": True, **versions})
            return _common.NOT_SUPPORTED
    elif args.command == "rate":
        result = asyncio.run(_rate(args))
    else:
        asyncio.run(_worker(args))
        return 0
    _common.emit({**(result or {}), **versions})
    return 0


if __name__ == "__main__":
    sys.exit(main())
