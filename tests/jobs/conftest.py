"""Fixtures for the job layer: brokers of every kind."""

from __future__ import annotations

import os
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests import brokers

JOBS_REDIS_DB = 11
"""The Redis database the job tests use (the seeds' queue is the shared name "default")."""


def redis_jobs_url() -> str:
    """REPID_TEST_REDIS_URL on database 11 (skips when unset)."""
    parts = urllib.parse.urlsplit(brokers.redis_url())
    return urllib.parse.urlunsplit(parts._replace(path=f"/{JOBS_REDIS_DB}"))


async def reset_redis(url: str, *queues: str) -> None:
    """Delete the given queues (and their dead letters, delayed sets) and every bucket."""
    import redis.asyncio as aioredis

    from repid.connections.redis.keys import BUCKET_PREFIX, KeyLayout, default_job_state_name

    client = aioredis.Redis.from_url(url)
    try:
        layout = KeyLayout()
        keys: list[bytes | str] = []
        for queue in queues:
            keys += [layout.stream(queue), layout.dead_letters(queue) or "", layout.delayed(queue)]
            # Every job-layer key of the queue: `{repid:QUEUE}:...` (delayed, unique, ...).
            for base in (layout, KeyLayout(stream_name=default_job_state_name)):
                prefix = base.job_state(queue, "").replace("{", "\\{").replace("}", "\\}")
                keys += [k async for k in client.scan_iter(match=prefix + "*")]
        keys += [k async for k in client.scan_iter(match=BUCKET_PREFIX + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def queue_name() -> str:
    return f"jobs-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def redis_dsn() -> AsyncIterator[str]:
    url = redis_jobs_url()
    await reset_redis(url, "default")
    yield url
    await reset_redis(url, "default")


@pytest.fixture
def seed_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The seeds read broker addresses from these variables."""
    for name in ("RABBIT_CONNECTION_STRING",):
        if os.environ.get("REPID_TEST_AMQP_URL"):
            monkeypatch.setenv(name, os.environ["REPID_TEST_AMQP_URL"])
    if os.environ.get("REPID_TEST_REDIS_URL"):
        url = redis_jobs_url()
        for name in (
            "REDIS_CONNECTION",
            "REDIS_ARGS_CONNECTION",
            "REDIS_ARGS_CONNECTION_STRING",
            "REDIS_RESULT_CONNECTION_STRING",
        ):
            monkeypatch.setenv(name, url)
    yield monkeypatch
