"""Dependency injection: caching, overrides, sync/process dependencies, headers, FullPayload."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from pydantic import BaseModel

from repid import BasicConverter, Depends, FullPayload, Header, Message, Router, TestClient

from .helpers import make_app

calls: list[str] = []


async def counted() -> str:
    calls.append("counted")
    return "v"


async def uses_counted(v: Annotated[str, Depends(counted)]) -> str:
    return v + "!"


def sync_failing() -> str:
    raise LookupError("no database")


def cpu_bound(n: int) -> int:
    return n * n


def original_dep() -> str:
    return "original"


overridable = Depends(original_dep)


async def is_admin(user_id: int) -> bool:
    return user_id == 1


class UserPayload(BaseModel):
    user_id: int
    is_active: bool = True


async def test_same_dependency_function_runs_once_per_message() -> None:
    router = Router()

    @router.actor(channel="c")
    async def actor(
        a: Annotated[str, Depends(counted)], b: Annotated[str, Depends(uses_counted)]
    ) -> str:
        return a + b

    app, _ = make_app(router)
    calls.clear()
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={}, headers={"topic": "actor"})
        assert client.get_processed_messages()[0].result == "vv!"
    assert calls == ["counted"]


async def test_override_inside_test_client_applies() -> None:
    router = Router()

    @router.actor(channel="c")
    async def actor(value: Annotated[str, overridable]) -> str:
        return value

    app, _ = make_app(router)
    try:
        async with TestClient(app) as client:
            overridable.override(lambda: "overridden")
            await client.send_message_json(channel="c", payload={}, headers={"topic": "actor"})
            assert client.get_processed_messages()[0].result == "overridden"
    finally:
        overridable.override(None)


async def test_override_before_client_applies() -> None:
    router = Router()

    @router.actor(channel="c")
    async def actor(value: Annotated[str, overridable]) -> str:
        return value

    app, _ = make_app(router)
    overridable.override(lambda: "overridden")
    try:
        async with TestClient(app) as client:
            await client.send_message_json(channel="c", payload={}, headers={"topic": "actor"})
            assert client.get_processed_messages()[0].result == "overridden"
    finally:
        overridable.override(None)


async def test_sync_and_process_dependencies_and_their_errors() -> None:
    router = Router()

    @router.actor(channel="c")
    async def broken(db: Annotated[str, Depends(sync_failing)]) -> str:
        return db

    @router.actor(channel="c")
    async def squared(n: int, sq: Annotated[int, Depends(cpu_bound, run_in_process=True)]) -> int:
        return sq

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={}, headers={"topic": "broken"})
        await client.send_message_json(
            channel="c", payload={"n": "7"}, headers={"topic": "squared"}
        )
        broken_msg, squared_msg = client.get_processed_messages()
    assert isinstance(broken_msg.exception, LookupError) and broken_msg.nacked
    assert squared_msg.result == 49 and squared_msg.acked


async def test_header_coercion_defaults_and_missing_required_header() -> None:
    router = Router()

    @router.actor(channel="c")
    async def headed(
        retries: Annotated[int, Header(alias="X-Retries")],
        trace: Annotated[str | None, Header()] = None,
    ) -> tuple[int, str | None]:
        return retries, trace

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="c", payload={}, headers={"topic": "headed", "X-Retries": "3"}
        )
        await client.send_message_json(channel="c", payload={}, headers={"topic": "headed"})
        ok, missing = client.get_processed_messages()
    assert ok.result == (3, None)
    assert missing.exception is not None and missing.nacked


async def test_full_payload_combined_with_fields_message_and_dependency() -> None:
    router = Router()

    @router.actor(channel="c")
    async def combined(
        user: Annotated[UserPayload, FullPayload()],
        user_id: int,
        admin: Annotated[bool, Depends(is_admin)],
        message: Message,
    ) -> tuple[UserPayload, int, bool, str]:
        return user, user_id, admin, message.channel

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="c", payload={"user_id": "1"}, headers={"topic": "combined"}
        )
        result = client.get_processed_messages()[0].result
    assert result == (UserPayload(user_id=1, is_active=True), 1, True, "c")


async def test_basic_converter_does_not_coerce() -> None:
    router = Router(converter=BasicConverter)

    @router.actor(channel="c")
    async def raw(user_id: int) -> object:
        return user_id

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="c", payload={"user_id": "123"}, headers={"topic": "raw"}
        )
        assert client.get_processed_messages()[0].result == "123"


def db_session() -> Iterator[str]:
    # The FastAPI idiom for resources with cleanup.
    yield "session"


async def async_db_session() -> AsyncIterator[str]:
    yield "async-session"


async def test_generator_dependencies_are_not_injected_as_generators() -> None:
    router = Router()

    @router.actor(channel="c")
    async def uses(
        db: Annotated[Any, Depends(db_session)], adb: Annotated[Any, Depends(async_db_session)]
    ) -> tuple[Any, Any]:
        return db, adb

    app, _ = make_app(router)
    try:
        async with TestClient(app) as client:
            await client.send_message_json(channel="c", payload={}, headers={"topic": "uses"})
            result = client.get_processed_messages()[0].result
    except Exception:
        return  # refusing the signature is an acceptable fix
    assert result == ("session", "async-session")
