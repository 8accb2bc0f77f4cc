"""Seed 002, "Actors", "Confirmation Modes & Error Handling" and "Execution & Timeouts": the
examples, verbatim.

Several examples have an empty body (`pass`); where the documented behaviour needs the actor
to fail, an added actor with the same decorator options raises. Actors that must pickle
(`run_in_process=True`) are declared at module level on `router`. The timeout example runs
verbatim (10 s timeout, 20 s sleep) on a loop with virtual time.
"""

import asyncio
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel

from repid import (
    ActorDeclarationError,
    ActorTimeoutError,
    Depends,
    InMemoryServer,
    InvalidConfirmationError,
    Message,
    Repid,
    Router,
    TestClient,
)

from ._support import run_with_fast_clock

router = Router()

# --- Thread vs Process Execution (module level: pickled into the process pool) ---------------


@router.actor(channel="heavy_math", run_in_process=True)
def calculate_prime(number: int) -> bool:
    # This CPU-heavy computation runs in an isolated process!
    if number <= 1:
        return False
    for i in range(2, int(math.sqrt(number)) + 1):
        if number % i == 0:
            return False
    return True


@router.actor(channel="heavy_math_pid", run_in_process=True)
def process_pid() -> int:
    # Added: tells which process ran it.
    return os.getpid()


def multiplier() -> int:
    # Added: a picklable dependency value for a process actor.
    return 3


@router.actor(channel="heavy_math_dep", run_in_process=True)
def scaled(number: int, factor: Annotated[int, Depends(multiplier)]) -> int:
    # Added: "Dependencies cannot be injected if they maintain active sockets or unpicklable
    # state" - so picklable ones can.
    return number * factor


async def _send(router: Router, channel: str, topic: str, payload: object = None, **kw):
    """Send one JSON message through a TestClient; return the processed record."""
    app = Repid()
    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message_json(
            channel=channel, payload={} if payload is None else payload, headers={"topic": topic}
        )
        processed = client.get_processed_messages()
        queued = client.get_server().queued(channel)
        dead = client.get_server().dead_letters.get(channel, [])
    assert len(processed) == 1, processed
    return processed[0], queued, dead


# --- Defining Actors with Routers ---------------------------------------------------------


async def test_defining_actors(capsys: pytest.CaptureFixture[str]) -> None:
    from repid import Router

    router = Router()

    @router.actor(channel="user_tasks")
    async def send_welcome_email() -> None:
        print("Sending welcome email...")

    msg, queued, dead = await _send(router, "user_tasks", "send_welcome_email")
    assert msg.success and msg.acked
    assert capsys.readouterr().out == "Sending welcome email...\n"
    # "You can still import and call send_welcome_email() directly"
    await send_welcome_email()
    assert capsys.readouterr().out == "Sending welcome email...\n"
    assert send_welcome_email.__name__ == "send_welcome_email"


# --- Confirmation Mode and Errors ---------------------------------------------------------


async def test_on_error_reject() -> None:
    router = Router()

    @router.actor(
        channel="tasks",
        confirmation_mode="auto",
        on_error="reject",  # Can be "nack", "reject", or "ack"
    )
    async def my_actor():
        pass

    @router.actor(channel="tasks", confirmation_mode="auto", on_error="reject")
    async def failing_actor():
        raise RuntimeError("boom")

    msg, _, _ = await _send(router, "tasks", "my_actor")
    assert msg.acked is True  # "Acknowledges the message if the actor completes successfully"
    msg, queued, dead = await _send(router, "tasks", "failing_actor")
    assert msg.rejected is True
    assert [m.headers for m in queued] == [{"topic": "failing_actor"}]  # back in the queue
    assert dead == []


@pytest.mark.parametrize(
    ("on_error", "field"), [("nack", "nacked"), ("ack", "acked"), (None, "nacked")]
)
async def test_on_error_outcomes(on_error: str | None, field: str) -> None:
    router = Router()
    options = {} if on_error is None else {"on_error": on_error}

    @router.actor(channel="tasks", **options)
    async def failing_actor():
        raise RuntimeError("boom")

    msg, queued, dead = await _send(router, "tasks", "failing_actor")
    assert getattr(msg, field) is True  # the default in auto mode is "nack"
    assert isinstance(msg.exception, RuntimeError)
    assert queued == []
    assert len(dead) == (1 if field == "nacked" else 0)


async def test_on_error_callable() -> None:
    from typing import Literal

    router = Router()

    def handle_error(exc: Exception) -> Literal["reject", "nack", "ack"]:
        # Reject ValueError so they are re-queued, Nack everything else
        if isinstance(exc, ValueError):
            return "reject"
        return "nack"

    @router.actor(channel="tasks", on_error=handle_error)
    async def my_smart_actor():
        pass

    # Added: the same policy on actors that raise.
    @router.actor(channel="tasks", on_error=handle_error)
    async def raises_value_error():
        raise ValueError("retry me")

    @router.actor(channel="tasks", on_error=handle_error)
    async def raises_key_error():
        raise KeyError("give up")

    assert (await _send(router, "tasks", "my_smart_actor"))[0].acked is True
    msg, queued, dead = await _send(router, "tasks", "raises_value_error")
    assert msg.rejected is True
    assert len(queued) == 1
    msg, queued, dead = await _send(router, "tasks", "raises_key_error")
    assert msg.nacked is True
    assert len(dead) == 1


# --- manual_explicit ----------------------------------------------------------------------


async def test_manual_explicit() -> None:
    from typing import Literal

    router = Router()

    @router.actor(channel="tasks", confirmation_mode="manual_explicit")
    async def my_explicit_actor() -> Literal["ack", "nack", "reject", "no_action"]:
        try:
            # Do some work
            return "ack"
        except Exception:
            # You must explicitly return a confirmation action
            return "nack"

    msg, queued, dead = await _send(router, "tasks", "my_explicit_actor")
    assert msg.acked is True
    assert msg.result == "ack"


@pytest.mark.parametrize(
    ("returned", "field"), [("nack", "nacked"), ("reject", "rejected"), ("ack", "acked")]
)
async def test_manual_explicit_acts_on_returned_value(returned: str, field: str) -> None:
    router = Router()

    @router.actor(channel="tasks", confirmation_mode="manual_explicit")
    async def explicit() -> Literal["ack", "nack", "reject", "no_action"]:
        return returned  # type: ignore[return-value]

    msg, _, _ = await _send(router, "tasks", "explicit")
    assert getattr(msg, field) is True


async def test_manual_explicit_no_action_leaves_message_unsettled() -> None:
    router = Router()

    @router.actor(channel="tasks", confirmation_mode="manual_explicit")
    async def explicit() -> Literal["ack", "nack", "reject", "no_action"]:
        return "no_action"

    msg, _, _ = await _send(router, "tasks", "explicit")
    assert (msg.acked, msg.nacked, msg.rejected) == (False, False, False)


async def test_manual_explicit_wrong_return_is_an_error() -> None:
    # "ensures that you explicitly return one of the literals"
    router = Router()

    @router.actor(channel="tasks", confirmation_mode="manual_explicit")
    async def forgets() -> None:
        return None

    msg, queued, _ = await _send(router, "tasks", "forgets")
    assert isinstance(msg.exception, InvalidConfirmationError)
    assert msg.success is False
    assert msg.acked is False
    # never left unsettled: rejected back to the queue (on_error is "no_action" by default)
    assert msg.rejected is True
    assert len(queued) == 1


# --- always_ack / ack_first ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["always_ack", "ack_first"])
def test_on_error_not_allowed_with_always_ack_and_ack_first(mode: str) -> None:
    router = Router()
    with pytest.raises(ActorDeclarationError, match="on_error"):

        @router.actor(channel="tasks", confirmation_mode=mode, on_error="nack")
        async def my_actor():
            pass


async def test_always_ack_acks_failures() -> None:
    router = Router()

    @router.actor(channel="tasks", confirmation_mode="always_ack")
    async def fails():
        raise RuntimeError("boom")

    msg, queued, dead = await _send(router, "tasks", "fails")
    assert msg.acked is True
    assert isinstance(msg.exception, RuntimeError)
    assert queued == [] and dead == []


async def test_ack_first_acks_before_running() -> None:
    router = Router()
    seen: list[bool] = []

    @router.actor(channel="tasks", confirmation_mode="ack_first")
    async def fire_and_forget(message: Message):
        seen.append(message.is_acted_on)
        raise RuntimeError("boom")

    msg, queued, dead = await _send(router, "tasks", "fire_and_forget")
    assert seen == [True]
    assert msg.acked is True
    assert queued == [] and dead == []


async def test_manual_never_acknowledges_automatically() -> None:
    router = Router()

    @router.actor(channel="tasks", confirmation_mode="manual")
    async def forgets():
        return 1

    @router.actor(channel="tasks", confirmation_mode="manual")
    async def acks(message: Message):
        await message.ack()

    msg, _, _ = await _send(router, "tasks", "forgets")
    assert (msg.acked, msg.nacked, msg.rejected) == (False, False, False)
    msg, _, _ = await _send(router, "tasks", "acks")
    assert msg.acked is True


# --- Manual modes and validation errors ---------------------------------------------------


class MyPydanticModel(BaseModel):
    # The user's model the seed's example names.
    user_id: int


async def test_manual_modes_and_validation_errors() -> None:
    ran: list[MyPydanticModel] = []
    router = Router()

    @router.actor(confirmation_mode="manual_explicit", on_error="nack")
    async def my_actor(payload: MyPydanticModel) -> Literal["ack", "nack", "reject", "no_action"]:
        # the actor body won't run if MyPydanticModel fails validation
        ran.append(payload)
        return "ack"

    msg, queued, dead = await _send(router, "default", "my_actor", {"payload": {"user_id": "x"}})
    assert ran == []
    assert msg.nacked is True
    assert len(dead) == 1
    msg, _, _ = await _send(router, "default", "my_actor", {"payload": {"user_id": "5"}})
    assert ran == [MyPydanticModel(user_id=5)]
    assert msg.acked is True


async def test_manual_mode_validation_error_defaults_to_no_action() -> None:
    router = Router()

    @router.actor(confirmation_mode="manual")
    async def strict(user_id: int) -> None:
        raise AssertionError("not reached")

    msg, queued, dead = await _send(router, "default", "strict", {"user_id": "x"})
    assert msg.exception is not None
    assert (msg.acked, msg.nacked, msg.rejected) == (False, False, False)


# --- Timeouts -----------------------------------------------------------------------------


def test_timeouts() -> None:
    import asyncio

    router = Router()

    @router.actor(channel="api_tasks", timeout=10.0)
    async def fetch_slow_api():
        # If this takes more than 10 seconds, it will be cancelled
        await asyncio.sleep(20)

    # Added: runs on a virtual-time loop, so the 10 s of loop time pass at once.
    async def scenario():
        return await _send(router, "api_tasks", "fetch_slow_api")

    msg, queued, dead = run_with_fast_clock(scenario)
    assert isinstance(msg.exception, ActorTimeoutError)
    assert msg.rejected is True  # "cancel the task and reject the message"
    assert [m.headers for m in queued] == [{"topic": "fetch_slow_api"}]
    assert dead == []


def test_actor_within_timeout_is_acked() -> None:
    router = Router()

    @router.actor(channel="api_tasks", timeout=10.0)
    async def fast_api():
        await asyncio.sleep(5)
        return "done"

    msg, queued, _ = run_with_fast_clock(lambda: _send(router, "api_tasks", "fast_api"))
    assert msg.result == "done"
    assert msg.acked is True


async def test_timeout_on_a_sync_actor() -> None:
    # The timeout applies to sync actors (run in a thread) too: the message is rejected when
    # the deadline passes, even though the thread itself cannot be interrupted.
    router = Router()
    release = threading.Event()

    @router.actor(channel="api_tasks", timeout=0.05)
    def blocking_call() -> str:
        release.wait(10)
        return "late"

    try:
        msg, queued, _ = await _send(router, "api_tasks", "blocking_call")
    finally:
        release.set()
    assert isinstance(msg.exception, ActorTimeoutError)
    assert msg.rejected is True
    assert len(queued) == 1


# --- Thread vs Process Execution ----------------------------------------------------------


async def test_run_in_process() -> None:
    msg, _, _ = await _send(router, "heavy_math", "calculate_prime", {"number": 97})
    assert msg.result is True
    msg, _, _ = await _send(router, "heavy_math", "calculate_prime", {"number": 91})
    assert msg.result is False
    msg, _, _ = await _send(router, "heavy_math_pid", "process_pid")
    assert msg.exception is None
    assert msg.result != os.getpid()


async def test_run_in_process_with_a_dependency() -> None:
    msg, _, _ = await _send(router, "heavy_math_dep", "scaled", {"number": "14"})
    assert msg.exception is None
    assert msg.result == 42


async def test_run_in_process_across_two_worker_runs() -> None:
    # The worker shuts its pools down when it returns; a second run must get working ones.
    app = Repid()
    server = InMemoryServer()
    app.servers.register_server("default", server)
    app.include_router(router)
    for number in (7, 8):
        # run_worker closes the connection at the end of its shutdown: open one per run.
        async with server.connection():
            await app.send_message_json(
                channel="heavy_math",
                payload={"number": number},
                headers={"topic": "calculate_prime"},
            )
            info = await app.run_worker(messages_limit=1, register_signals=[])
            assert info.processed == 1
    assert server.queued("heavy_math") == []
    assert server.dead_letters == {}


async def test_sync_actor_runs_in_a_thread() -> None:
    router = Router()

    @router.actor
    def sync_actor() -> str:
        return threading.current_thread().name

    msg, _, _ = await _send(router, "default", "sync_actor")
    assert msg.exception is None
    assert msg.result != threading.current_thread().name


def test_run_in_process_needs_a_sync_function() -> None:
    with pytest.raises(ActorDeclarationError, match="sync"):

        @Router().actor(run_in_process=True)
        async def not_sync() -> None:
            pass


# --- Custom Executors ---------------------------------------------------------------------


async def test_custom_executors() -> None:
    from concurrent.futures import ThreadPoolExecutor

    router = Router()

    # Create a dedicated thread pool for database tasks, limiting concurrent connections
    db_pool = ThreadPoolExecutor(max_workers=5)

    @router.actor(channel="db_tasks", pool_executor=db_pool)
    def run_heavy_query():
        # Only up to 5 of these will run at the same time across the entire worker
        pass

    # Added: a twin actor on the same pool reports the thread it ran on.
    @router.actor(channel="db_tasks", pool_executor=db_pool)
    def which_thread() -> int:
        return threading.get_ident()

    try:
        msg, _, _ = await _send(router, "db_tasks", "run_heavy_query")
        assert msg.success and msg.acked
        msg, _, _ = await _send(router, "db_tasks", "which_thread")
        assert msg.result in {t.ident for t in db_pool._threads}
    finally:
        db_pool.shutdown()


def test_pool_executor_and_run_in_process_are_exclusive() -> None:
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        with pytest.raises(ActorDeclarationError, match="pool_executor"):

            @Router().actor(pool_executor=pool, run_in_process=True)
            def both() -> None:
                pass

        # Also when one of them comes from the router's defaults.
        parent = Router(pool_executor=pool)
        child = Router()

        @child.actor(run_in_process=True)
        def inherited() -> None:
            pass

        parent.include_router(child)
        with pytest.raises(ActorDeclarationError, match="pool_executor"):
            _ = parent.actors
    finally:
        pool.shutdown()


async def test_worker_run_in_process_on_broker() -> None:
    # Added: the same module-level actor through the real worker loop.
    results: list[bool] = []

    async def record(call_next, message, actor):
        result = await call_next(message, actor)
        results.append(result)
        return result

    app = Repid(actor_middlewares=[record])
    server = InMemoryServer()
    app.servers.register_server("default", server)
    app.include_router(router)
    async with server.connection():
        await app.send_message_json(
            channel="heavy_math", payload={"number": 7919}, headers={"topic": "calculate_prime"}
        )
        info = await app.run_worker(messages_limit=1, register_signals=[])
    assert info.processed == 1
    assert results == [True]
    assert server.queued("heavy_math") == []
