"""Unusual callables and values as actors: generators, partials, callable objects, unicode."""

from __future__ import annotations

import functools
import warnings
from typing import Annotated, Any

import pytest

from repid import Depends, Router, TestClient
from repid.errors import RepidError

from .helpers import make_app


def test_async_generator_actor_rejected_at_declaration() -> None:
    router = Router()
    with pytest.raises((RepidError, TypeError)):

        @router.actor(channel="c")
        async def agen(x: int) -> Any:
            yield x


def test_sync_generator_actor_rejected_at_declaration() -> None:
    router = Router()
    with pytest.raises((RepidError, TypeError)):

        @router.actor(channel="c")
        def gen(x: int) -> Any:
            yield x


async def test_partial_actor_with_name_runs_async() -> None:
    async def add(x: int, y: int) -> int:
        return x + y

    router = Router()
    router.actor(functools.partial(add, y=5), name="add5", channel="c")
    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={"x": 1}, headers={"topic": "add5"})
        assert client.get_processed_messages()[0].result == 6


class Doubler:
    async def __call__(self, x: int) -> int:
        return x * 2


class Greeting:
    async def __call__(self) -> str:
        return "hi"


greeting = Greeting()


class GreetingActor:
    async def __call__(self, x: int, g: Annotated[str, Depends(greeting)]) -> str:
        return f"{g}{x * 2}"


async def test_callable_object_with_async_call_as_actor_and_dependency() -> None:
    router = Router()
    router.actor(Doubler(), name="double", channel="c")
    router.actor(GreetingActor(), name="greet", channel="c")
    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={"x": 2}, headers={"topic": "double"})
        await client.send_message_json(channel="c", payload={"x": 3}, headers={"topic": "greet"})
        results = [m.result for m in client.get_processed_messages()]
    assert results == [4, "hi6"]


async def test_unicode_channel_and_actor_name() -> None:
    router = Router()

    @router.actor(channel="очередь-🚀")
    async def обработать(число: int) -> int:
        return число + 1

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="очередь-🚀", payload={"число": 41}, headers={"topic": "обработать"}
        )
        processed = client.get_processed_messages()
    assert processed[0].result == 42 and processed[0].acked


async def test_non_json_payload_without_parameters_reaches_actor() -> None:
    router = Router()

    @router.actor(channel="raw")
    async def raw() -> str:
        return "ran"

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message(
            channel="raw", payload=b"\xff\x00 not json", headers={"topic": "raw"}
        )
        message = client.get_processed_messages()[0]
    assert message.success and message.result == "ran" and message.acked


async def test_non_json_result_is_kept_and_acked() -> None:
    router = Router()
    sentinel = object()

    @router.actor(channel="c")
    async def odd() -> object:
        return sentinel

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={}, headers={"topic": "odd"})
        message = client.get_processed_messages()[0]
    assert message.result is sentinel and message.acked


async def test_underscore_parameter_is_filled_from_payload() -> None:
    router = Router()

    @router.actor(channel="c")
    async def private(_x: int = 1) -> int:
        return _x

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={"_x": 5}, headers={"topic": "private"})
        assert client.get_processed_messages()[0].result == 5


def _models_router() -> Router:
    router = Router()

    @router.actor(channel="c")
    async def models(model_id: int, schema: str, json: int) -> tuple[int, str, int]:
        return model_id, schema, json

    return router


@pytest.mark.filterwarnings("ignore::UserWarning")
async def test_field_named_like_pydantic_attribute_works() -> None:
    app, _ = make_app(_models_router())
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="c",
            payload={"model_id": 1, "schema": "s", "json": 2},
            headers={"topic": "models"},
        )
        assert client.get_processed_messages()[0].result == (1, "s", 2)


async def test_field_named_like_pydantic_attribute_emits_no_warning() -> None:
    app, _ = make_app(_models_router())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        async with TestClient(app):
            pass
