"""Seed 002, "Dependency injection": every example, verbatim, run through `TestClient`.

Each example's actor is declared as the seed shows; the added part sends it a message and
checks what the seed says it prints or returns. The CPU-heavy dependency lives at module level
because `run_in_process=True` pickles it.
"""

import os
from typing import Annotated

import pytest

from repid import Depends, Repid, Router, TestClient

# --- Synchronous (CPU-heavy) dependency (module level: it must pickle) ----------------------


def dependency_function() -> int:
    # some CPU-heavy computation here
    return 123


def dependency_pid() -> int:
    # Added: tells which process ran it.
    return os.getpid()


async def _run_actor(
    router: Router, payload: dict | None = None, headers: dict | None = None, topic: str = ""
):
    """Send one JSON message to the router's actors on the default channel; return its record."""
    app = Repid()
    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="default", payload=payload or {}, headers={"topic": topic, **(headers or {})}
        )
        (processed,) = client.get_processed_messages()
    return processed


# --- Depends ------------------------------------------------------------------------------


async def test_depends(capsys: pytest.CaptureFixture[str]) -> None:
    from typing import Annotated

    from repid import Depends, Repid, Router

    app = Repid()
    router = Router()

    def dependency_function() -> str:
        return "Hello!"

    @router.actor
    async def my_actor(my_dependency: Annotated[str, Depends(dependency_function)]) -> None:
        print(my_dependency)
        # Will print `Hello!`

    # Added: run it.
    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="default", payload={}, headers={"topic": "my_actor"})
        (processed,) = client.get_processed_messages()
    assert processed.success is True
    assert processed.acked is True
    assert capsys.readouterr().out == "Hello!\n"


# --- Sub-dependencies ---------------------------------------------------------------------


async def test_sub_dependencies(capsys: pytest.CaptureFixture[str]) -> None:
    from typing import Annotated

    from repid import Depends, Router

    router = Router()

    def subdependency_function() -> str:
        return "world!"

    def dependency_function(sub: Annotated[str, Depends(subdependency_function)]) -> str:
        return "Hello " + sub

    @router.actor
    async def my_actor(my_dependency: Annotated[str, Depends(dependency_function)]) -> None:
        print(my_dependency)
        # Will print `Hello world!`

    processed = await _run_actor(router, topic="my_actor")
    assert processed.success is True
    assert capsys.readouterr().out == "Hello world!\n"


# --- Extracting parameters from payload ---------------------------------------------------


def _update_user_router() -> Router:
    router = Router()

    from typing import Annotated

    from repid import Header

    async def verify_user(
        # These fields must exist in the payload
        user_id: int,
        verification_token: str,
        # This will extract a header
        correlation_id: Annotated[str | None, Header(alias="X-Correlation-ID")] = None,
    ):
        if user_id <= 0:
            raise ValueError("Invalid user_id")
        return True

    @router.actor
    async def update_user(
        # user_id is requested by BOTH the actor and the dependency!
        user_id: int,
        # The dependency requires verification_token, so it becomes required in the payload!
        is_verified: Annotated[bool, Depends(verify_user)],
    ):
        # `user_id` and `verification_token` from the payload were passed to `verify_user` first!
        return f"User {user_id} is verified: {is_verified}"

    return router


async def test_extracting_parameters_from_payload() -> None:
    processed = await _run_actor(
        _update_user_router(),
        payload={"user_id": 42, "verification_token": "t0k"},
        headers={"X-Correlation-ID": "corr-1"},
        topic="update_user",
    )
    assert processed.success is True
    assert processed.result == "User 42 is verified: True"
    assert processed.acked is True


async def test_extracting_parameters_header_is_optional() -> None:
    processed = await _run_actor(
        _update_user_router(),
        payload={"user_id": 42, "verification_token": "t0k"},
        topic="update_user",
    )
    assert processed.result == "User 42 is verified: True"


async def test_dependency_field_is_required_in_payload() -> None:
    # "The dependency requires verification_token, so it becomes required in the payload!"
    processed = await _run_actor(
        _update_user_router(), payload={"user_id": 42}, topic="update_user"
    )
    assert processed.success is False
    assert processed.result is None
    assert processed.nacked is True  # auto mode: on_error defaults to "nack"
    assert "verification_token" in str(processed.exception)


async def test_dependency_error_goes_to_on_error() -> None:
    processed = await _run_actor(
        _update_user_router(),
        payload={"user_id": 0, "verification_token": "t0k"},
        topic="update_user",
    )
    assert isinstance(processed.exception, ValueError)
    assert str(processed.exception) == "Invalid user_id"
    assert processed.nacked is True


async def test_dependency_and_actor_share_one_parse() -> None:
    # Added: with Pydantic, "123" is coerced once and both the actor and the dependency see 123.
    seen: list[object] = []

    async def dep(user_id: int) -> int:
        seen.append(user_id)
        return user_id * 2

    router = Router()

    @router.actor
    async def both(user_id: int, doubled: Annotated[int, Depends(dep)]) -> tuple[int, int]:
        seen.append(user_id)
        return user_id, doubled

    processed = await _run_actor(router, payload={"user_id": "123"}, topic="both")
    assert processed.result == (123, 246)
    assert seen == [123, 123]


# --- Sync and Async dependencies ----------------------------------------------------------


async def test_asynchronous_dependency() -> None:
    import asyncio

    async def dependency_function() -> str:
        await asyncio.sleep(0.1)
        # Imitates some async work
        return "Hello world!"

    dep = Depends(dependency_function)

    # Added: use it.
    router = Router()

    @router.actor
    async def uses_async(value: Annotated[str, dep]) -> str:
        return value

    assert (await _run_actor(router, topic="uses_async")).result == "Hello world!"


async def test_synchronous_dependency_runs_in_a_thread() -> None:
    import threading

    def dependency_function() -> str:
        return "Hello world!"

    dep = Depends(dependency_function)

    # Added: the sync dependency runs off the event loop's thread.
    threads: list[threading.Thread] = []

    def where() -> str:
        threads.append(threading.current_thread())
        return "ok"

    router = Router()

    @router.actor
    async def uses_sync(
        value: Annotated[str, dep], marker: Annotated[str, Depends(where)]
    ) -> tuple[str, str]:
        return value, marker

    assert (await _run_actor(router, topic="uses_sync")).result == ("Hello world!", "ok")
    assert threads
    assert threads[0] is not threading.main_thread()


async def test_synchronous_cpu_heavy_dependency_runs_in_a_process() -> None:
    dep = Depends(dependency_function, run_in_process=True)

    # Added: use it, and show a run_in_process dependency runs in another process.
    router = Router()

    @router.actor
    async def uses_process(
        value: Annotated[int, dep],
        pid: Annotated[int, Depends(dependency_pid, run_in_process=True)],
    ) -> tuple[int, int]:
        return value, pid

    processed = await _run_actor(router, topic="uses_process")
    assert processed.exception is None
    value, pid = processed.result
    assert value == 123
    assert pid != os.getpid()


# --- Overriding dependencies --------------------------------------------------------------


async def test_overriding_dependencies(capsys: pytest.CaptureFixture[str]) -> None:
    router = Router()

    def dependency_function() -> str:
        return "Hello!"

    d = Depends(dependency_function)
    d.override(lambda: "Overridden!")

    @router.actor
    async def my_actor(my_dependency: Annotated[str, d]) -> None:
        print(my_dependency)
        # Will print `Overridden!`

    assert (await _run_actor(router, topic="my_actor")).success is True
    assert capsys.readouterr().out == "Overridden!\n"

    # Added: removing the override brings the original back.
    d.override(None)
    assert (await _run_actor(router, topic="my_actor")).success is True
    assert capsys.readouterr().out == "Hello!\n"


async def test_dependency_header_reaches_the_dependency() -> None:
    # Added: a twin of `verify_user` that returns the header it was given.
    from repid import Header

    async def correlation(
        user_id: int,
        correlation_id: Annotated[str | None, Header(alias="X-Correlation-ID")] = None,
    ) -> str | None:
        return correlation_id

    router = Router()

    @router.actor
    async def traced(user_id: int, corr: Annotated[str | None, Depends(correlation)]) -> object:
        return user_id, corr

    sent = await _run_actor(
        router, payload={"user_id": 1}, headers={"X-Correlation-ID": "c-9"}, topic="traced"
    )
    assert sent.result == (1, "c-9")
    assert (await _run_actor(router, payload={"user_id": 1}, topic="traced")).result == (1, None)
