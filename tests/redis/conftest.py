"""Fixtures for the RedisServer tests: a real redis-server named by REPID_TEST_REDIS_URL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from redis_helpers import OwnRedis, redis_url_or_skip

from repid.connections.redis import RedisServer


@pytest.fixture
def redis_url() -> str:
    return redis_url_or_skip()


@pytest.fixture
def channel() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def server(redis_url: str) -> AsyncIterator[RedisServer]:
    srv = RedisServer(redis_url, block=0.2, claim_idle=30.0)
    await srv.connect()
    try:
        yield srv
    finally:
        await srv.disconnect()


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    instance = OwnRedis()
    instance.start()
    try:
        yield instance
    finally:
        instance.cleanup()
