"""Point 10: timeouts, sync actors in threads, run_in_process, pool_executor."""

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from repid import ActorDeclarationError, ActorTimeoutError, Repid, Router, TestClient

from . import deps_module


async def run(app: Repid, topic: str, payload: bytes = b""):
    async with TestClient(app) as client:
        await client.send_message(channel="default", payload=payload, headers={"topic": topic})
        return client.get_processed_messages()[-1], client.get_server()


async def test_timeout_cancels_and_rejects() -> None:
    app = Repid()
    router = Router()
    state = {"cancelled": False}

    @router.actor(timeout=0.05)
    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise

    app.include_router(router)
    msg, server = await run(app, "slow")
    assert isinstance(msg.exception, ActorTimeoutError)
    assert "0.05" in str(msg.exception)
    assert state["cancelled"]
    assert msg.rejected
    assert len(server.queued("default")) == 1


async def test_actor_raising_timeout_error_itself_is_an_ordinary_error() -> None:
    app = Repid()
    router = Router()

    @router.actor(timeout=5)
    async def raises() -> None:
        raise TimeoutError("from the actor")

    app.include_router(router)
    msg, _ = await run(app, "raises")
    assert type(msg.exception) is TimeoutError
    assert msg.nacked


async def test_router_timeout_default_and_actor_override() -> None:
    app = Repid()
    router = Router(timeout=0.05)

    @router.actor
    async def inherits() -> None:
        await asyncio.sleep(0.2)

    @router.actor(timeout=5)
    async def overrides() -> str:
        await asyncio.sleep(0.1)
        return "done"

    app.include_router(router)
    assert isinstance((await run(app, "inherits"))[0].exception, ActorTimeoutError)
    assert (await run(app, "overrides"))[0].result == "done"


async def test_sync_actor_runs_in_a_thread() -> None:
    app = Repid()
    router = Router()

    @router.actor
    def blocking(n: int) -> tuple[int, str]:
        time.sleep(0.01)
        return n, threading.current_thread().name

    app.include_router(router)
    msg, _ = await run(app, "blocking", b'{"n": 3}')
    assert msg.result[0] == 3
    assert msg.result[1] != threading.main_thread().name


async def test_run_in_process() -> None:
    app = Repid()
    router = Router()
    router.actor(run_in_process=True)(deps_module.process_actor)
    app.include_router(router)
    msg, _ = await run(app, "process_actor", b'{"number": 21}')
    assert msg.success, msg.exception
    assert msg.result[0] == 42 and msg.result[1] != os.getpid()


async def test_pool_executor_is_used() -> None:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-pool")
    app = Repid()
    router = Router()

    @router.actor(pool_executor=pool)
    def run_heavy_query() -> str:
        return threading.current_thread().name

    app.include_router(router)
    msg, _ = await run(app, "run_heavy_query")
    assert msg.result.startswith("db-pool")
    pool.shutdown()


def test_pool_executor_with_run_in_process_is_an_error() -> None:
    router = Router()
    with pytest.raises(ActorDeclarationError, match="cannot be combined"):
        router.actor(run_in_process=True, pool_executor=ThreadPoolExecutor(1))(
            deps_module.process_actor
        )


def test_run_in_process_with_async_actor_is_an_error() -> None:
    router = Router()
    with pytest.raises(ActorDeclarationError, match="needs a sync function"):

        @router.actor(run_in_process=True)
        async def a() -> None: ...


def test_inherited_conflict_is_reported_at_compile_time() -> None:
    app = Repid()
    router = Router(run_in_process=True)
    router.actor(pool_executor=ThreadPoolExecutor(1))(deps_module.process_actor)
    app.include_router(router)
    with pytest.raises(ActorDeclarationError, match="router default"):
        _ = app.actors
