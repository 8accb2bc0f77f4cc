"""Point 6: Depends, sub-dependencies, payload parameters in dependencies, Header, Message,
FullPayload."""

import asyncio
import os
import threading
from typing import Annotated

import pytest
from pydantic import BaseModel

from repid import (
    Depends,
    FullPayload,
    Header,
    Message,
    PayloadValidationError,
    Repid,
    Router,
    TestClient,
)
from repid.converters import BasicConverter

from . import deps_module


async def run_one(app: Repid, payload: object, *, topic: str, headers: dict | None = None):
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="default", payload=payload, headers={"topic": topic, **(headers or {})}
        )
        [processed] = client.get_processed_messages()
        return processed


async def test_async_sync_and_sub_dependencies() -> None:
    app = Repid()
    router = Router()
    threads: dict[str, str] = {}

    def sub() -> str:
        threads["sub"] = threading.current_thread().name
        return "world!"

    def dep(s: Annotated[str, Depends(sub)]) -> str:
        threads["dep"] = threading.current_thread().name
        return "Hello " + s

    async def adep() -> int:
        await asyncio.sleep(0)
        threads["adep"] = threading.current_thread().name
        return 42

    @router.actor
    async def actor(
        greeting: Annotated[str, Depends(dep)], number: Annotated[int, Depends(adep)]
    ) -> str:
        return f"{greeting} {number}"

    app.include_router(router)
    msg = await run_one(app, {}, topic="actor")
    assert msg.result == "Hello world! 42"
    main = threading.main_thread().name
    assert threads["adep"] == main  # async dependencies run on the loop
    assert threads["dep"] != main and threads["sub"] != main  # sync ones in the thread pool


async def test_dependency_used_twice_is_called_once_per_message() -> None:
    app = Repid()
    router = Router()
    calls = []

    async def counted() -> int:
        calls.append(1)
        return len(calls)

    d = Depends(counted)

    async def uses(c: Annotated[int, d]) -> int:
        return c

    @router.actor
    async def actor(a: Annotated[int, d], b: Annotated[int, Depends(uses)]) -> tuple[int, int]:
        return a, b

    app.include_router(router)
    msg = await run_one(app, {}, topic="actor")
    assert msg.result == (1, 1)
    assert calls == [1]


async def test_sync_dependency_in_process_pool() -> None:
    app = Repid()
    router = Router()

    @router.actor
    async def actor(pid: Annotated[int, Depends(deps_module.cpu_dependency, run_in_process=True)]):
        return pid

    app.include_router(router)
    msg = await run_one(app, {}, topic="actor")
    assert msg.success, msg.exception
    assert isinstance(msg.result, int) and msg.result != os.getpid()


async def test_override_replaces_dependency() -> None:
    app = Repid()
    router = Router()

    def dependency_function() -> str:
        return "Hello!"

    d = Depends(dependency_function)
    d.override(lambda: "Overridden!")

    @router.actor
    async def my_actor(my_dependency: Annotated[str, d]) -> str:
        return my_dependency

    app.include_router(router)
    assert (await run_one(app, {}, topic="my_actor")).result == "Overridden!"
    d.override(None)
    assert (await run_one(app, {}, topic="my_actor")).result == "Hello!"


def _update_user_app(calls: list) -> Repid:
    app = Repid()
    router = Router()

    async def verify_user(
        user_id: int,
        verification_token: str,
        correlation_id: Annotated[str | None, Header(alias="X-Correlation-ID")] = None,
    ):
        calls.append((user_id, verification_token, correlation_id))
        if user_id <= 0:
            raise ValueError("Invalid user_id")
        return True

    @router.actor
    async def update_user(user_id: int, is_verified: Annotated[bool, Depends(verify_user)]):
        return f"User {user_id} is verified: {is_verified}"

    app.include_router(router)
    return app


async def test_dependency_payload_params_are_merged_into_one_parse() -> None:
    calls: list = []
    app = _update_user_app(calls)
    msg = await run_one(
        app,
        {"user_id": "7", "verification_token": "t"},
        topic="update_user",
        headers={"X-Correlation-ID": "abc"},
    )
    assert msg.result == "User 7 is verified: True"
    assert calls == [(7, "t", "abc")]


async def test_field_required_only_by_dependency_is_required_in_payload() -> None:
    calls: list = []
    app = _update_user_app(calls)
    msg = await run_one(app, {"user_id": 7}, topic="update_user")
    assert not msg.success
    assert "verification_token" in str(msg.exception)
    assert calls == []  # neither the dependency nor the actor ran
    assert msg.nacked


async def test_dependency_error_goes_to_on_error() -> None:
    calls: list = []
    app = _update_user_app(calls)
    msg = await run_one(app, {"user_id": 0, "verification_token": "t"}, topic="update_user")
    assert isinstance(msg.exception, ValueError)
    assert msg.nacked


async def test_headers_alias_default_and_missing_required() -> None:
    app = Repid()
    router = Router()

    @router.actor
    async def my_actor(
        payload_data: str,
        correlation_id: Annotated[str, Header(alias="correlation-id")],
        custom_trace: Annotated[str | None, Header()] = None,
        retries: Annotated[int, Header()] = 0,
    ):
        return payload_data, correlation_id, custom_trace, retries

    app.include_router(router)
    ok = await run_one(
        app,
        {"payload_data": "p"},
        topic="my_actor",
        headers={"correlation-id": "c1", "custom_trace": "t", "retries": "3"},
    )
    assert ok.result == ("p", "c1", "t", 3)
    defaults = await run_one(
        app, {"payload_data": "p"}, topic="my_actor", headers={"correlation-id": "c1"}
    )
    assert defaults.result == ("p", "c1", None, 0)
    missing = await run_one(app, {"payload_data": "p"}, topic="my_actor")
    assert not missing.success and "correlation-id" in str(missing.exception)


async def test_headers_with_basic_converter() -> None:
    app = Repid()
    router = Router(converter=BasicConverter)

    @router.actor
    async def a(trace: Annotated[str, Header(alias="X-Trace")], n: int):
        return trace, n

    app.include_router(router)
    ok = await run_one(app, {"n": "1"}, topic="a", headers={"X-Trace": "t"})
    assert ok.result == ("t", "1")  # no coercion
    bad = await run_one(app, {"n": 1}, topic="a")
    assert isinstance(bad.exception, PayloadValidationError)
    assert "X-Trace" in str(bad.exception)


async def test_message_dependency_in_actor_and_dependency() -> None:
    app = Repid()
    router = Router()

    async def channel_of(message: Message) -> str:
        return message.channel

    @router.actor
    async def my_actor(message: Message, ch: Annotated[str, Depends(channel_of)]):
        return message.payload, message.headers, ch, message.message_id is not None

    app.include_router(router)
    msg = await run_one(app, {"a": 1}, topic="my_actor")
    assert msg.result == (b'{"a":1}', {"topic": "my_actor"}, "default", True)


class UserPayload(BaseModel):
    user_id: int
    is_active: bool


async def test_full_payload_validates_whole_payload() -> None:
    app = Repid()
    router = Router()

    @router.actor
    async def process_user(user: Annotated[UserPayload, FullPayload()]):
        return user

    app.include_router(router)
    msg = await run_one(app, {"user_id": "1", "is_active": 1}, topic="process_user")
    assert msg.result == UserPayload(user_id=1, is_active=True)
    bad = await run_one(app, {"user_id": "x"}, topic="process_user")
    assert not bad.success and bad.nacked


def test_positional_only_parameters_are_refused_at_compile_time() -> None:
    app = Repid()
    router = Router()

    @router.actor
    async def a(x: int, /) -> None: ...

    app.include_router(router)
    with pytest.raises(TypeError, match="positional-only"):
        app.compile_actors(None)
