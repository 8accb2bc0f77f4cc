"""One program for both packages: publishes and/or works a channel, recording what it processed.

Run by tests/compat with our interpreter (the checkout on PYTHONPATH) or with repid 2.1.4's
(its own virtual environment, `python -I`, so nothing of this repository is importable). It uses
only names both packages share - repid 2.x's spelling of the server constructors included,
which is what a 2.x user's code looks like:

    python peer.py --broker redis --impl ours --publish CH --ids 0:20 --work CH --out FILE

`--publish CH --ids A:B` sends messages A..B-1 to CH first (ids in the `x-id` header; every
fifth asks for a reply on `CH.replies`, every seventh gets the topic `fail`, which its actor
answers by raising: the message is nacked). `--work CH --out FILE` then runs a worker on CH
until SIGTERM, appending one JSON line per processed message to FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any

from repid import AmqpServer, Message, MessageData, PubsubServer, RedisServer, Repid, Router


def make_server(broker: str, impl: str) -> Any:
    if broker == "redis":
        return RedisServer(os.environ["REPID_TEST_REDIS_URL"])
    if broker == "amqp":
        return AmqpServer(os.environ["REPID_TEST_AMQP_URL"])
    host = os.environ["REPID_TEST_PUBSUB_HOST"]
    project = os.environ.get("PUBSUB_PROJECT_ID") or "repid-test"
    # A short ack deadline so that the emulator hands back a stopped worker's leased messages
    # soon (both packages renew it while an actor runs).
    return PubsubServer(
        f"http://{host}/v1", default_project=project, stream_ack_deadline_seconds=10
    )


def message_for(broker: str, channel: str, i: int, impl: str) -> tuple[str, MessageData]:
    topic = "fail" if i % 7 == 3 else "work"
    headers = {"topic": topic, "x-id": str(i), "x-from": impl, "x-ünï": "välue"}
    reply_to = None
    if i % 5 == 1:
        if broker == "pubsub":
            headers["reply_to"] = f"{channel}.replies"  # 2.x sends reply_to only as an attribute
        else:
            reply_to = f"{channel}.replies"
    content_type = "text/plain; charset=utf-8" if i % 2 else "application/json"
    payload = (f"text {i}" if i % 2 else json.dumps({"id": i, "text": "ünï"})).encode()
    return topic, MessageData(
        payload=payload, headers=headers, content_type=content_type, reply_to=reply_to
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True, choices=["redis", "amqp", "pubsub"])
    parser.add_argument("--impl", required=True)
    parser.add_argument("--publish")
    parser.add_argument("--ids", default="0:0")
    parser.add_argument("--work")
    parser.add_argument("--out")
    parser.add_argument("--sleep", type=float, default=0.01)
    args = parser.parse_args()

    app = Repid()
    server = make_server(args.broker, args.impl)
    app.servers.register_server("default", server, is_default=True)
    out = open(args.out, "a", encoding="utf-8") if args.out else None  # noqa: SIM115

    def record(message: Message, outcome: str) -> None:
        assert out is not None
        line = {
            "impl": args.impl,
            "id": (message.headers or {}).get("x-id"),
            "outcome": outcome,
            "payload": message.payload.decode(),
            "headers": message.headers,
            "content_type": message.content_type,
            "reply_to": message.reply_to,
            "message_id": message.message_id,
        }
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
        out.flush()

    if args.work:
        router = Router()

        @router.actor(channel=args.work, name="work")
        async def work(message: Message) -> None:
            await asyncio.sleep(args.sleep)
            if message.reply_to:
                record(message, "replied")
                await message.reply(
                    payload=b"re: " + message.payload,
                    headers={"x-id": (message.headers or {}).get("x-id", ""), "x-by": args.impl},
                    content_type="text/plain",
                )
            else:
                record(message, "acked")

        @router.actor(channel=args.work, name="fail")
        async def fail(message: Message) -> None:
            record(message, "failed")
            raise RuntimeError("this message is meant to fail")

        app.include_router(router)

    async with app.servers.default.connection():
        if args.publish:
            start, stop = (int(x) for x in args.ids.split(":"))
            for i in range(start, stop):
                _, message = message_for(args.broker, args.publish, i, args.impl)
                if message.reply_to is None and i % 3:
                    await app.send_message(
                        channel=args.publish,
                        payload=message.payload,
                        headers=message.headers,
                        content_type=message.content_type,
                    )
                else:
                    await server.publish(channel=args.publish, message=message)
            print(f"published {stop - start}", flush=True)
        if args.work:
            print("working", flush=True)
            await app.run_worker(register_signals=[signal.SIGTERM, signal.SIGINT])
    if out is not None:
        out.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
