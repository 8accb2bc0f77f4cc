"""Programs that the delay, uniqueness and scheduler tests run as separate processes.

    python -m tests.jobs._job_programs worker KIND QUEUE RECORDS
        a job Worker on QUEUE whose actor `record(tag)` appends {"tag", "t", "pid", "tick"} as
        JSON to the Redis list RECORDS; runs until SIGTERM (or SIGKILL)
    python -m tests.jobs._job_programs unique KIND QUEUE JOB_ID COUNT
        COUNT concurrent enqueues of Job("record", id_=JOB_ID); prints {"ok": n, "refused": m}

KIND is `redis` (RedisMessageBroker) or `rabbitmq` (RabbitMessageBroker); both keep buckets
and job state in the test Redis (database 11), as the tests' connections do.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from repid import Connection, DuplicateJobError, Job, Message, Repid, Worker
from repid.jobs.headers import TICK


def redis_url() -> str:
    from tests.jobs.conftest import redis_jobs_url

    return redis_jobs_url()


def connection_for(kind: str) -> Connection:
    """The tests' connection of KIND: messages there, buckets and job state in Redis."""
    from repid import RabbitMessageBroker, RedisBucketBroker, RedisMessageBroker

    url = redis_url()
    broker: Any
    if kind == "redis":
        broker = RedisMessageBroker(url, block=0.2)
    elif kind == "rabbitmq":
        broker = RabbitMessageBroker(os.environ["REPID_TEST_AMQP_URL"])
    else:
        raise SystemExit(f"unknown broker kind {kind!r}")
    return Connection(
        broker, RedisBucketBroker(url), RedisBucketBroker(url, use_result_bucket=True)
    )


async def worker(kind: str, queue: str, records: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url())
    app = Repid(connection_for(kind))
    worker = Worker(handle_signals=None, cancel_poll_interval=0.1)

    @worker.actor(queue=queue)
    async def record(tag: str, message: Message) -> None:
        tick = (message.headers or {}).get(TICK)
        entry = {"tag": tag, "t": time.time(), "pid": os.getpid(), "tick": tick}
        await client.rpush(records, json.dumps(entry))

    try:
        async with app.magic(auto_disconnect=True):
            print("ready", flush=True)
            await worker.run()
    finally:
        await client.aclose()


async def unique(kind: str, queue: str, job_id: str, count: int) -> None:
    app = Repid(connection_for(kind))
    async with app.magic(auto_disconnect=True):
        results = await asyncio.gather(
            *(
                Job("record", queue, args={"tag": job_id}, id_=job_id).enqueue()
                for _ in range(count)
            ),
            return_exceptions=True,
        )
    ok = sum(1 for r in results if r == job_id)
    refused = sum(1 for r in results if isinstance(r, DuplicateJobError))
    others = [repr(r) for r in results if r != job_id and not isinstance(r, DuplicateJobError)]
    print(json.dumps({"ok": ok, "refused": refused, "errors": others}), flush=True)


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "worker":
        asyncio.run(worker(args[0], args[1], args[2]))
    elif command == "unique":
        asyncio.run(unique(args[0], args[1], args[2], int(args[3])))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
