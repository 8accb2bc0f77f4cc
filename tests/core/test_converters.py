"""Point 7: converters, coercion, constraints, defaults, nested models, overrides."""

import uuid
from typing import Annotated

from annotated_types import Gt
from pydantic import BaseModel, Field

from repid import (
    BasicConverter,
    DefaultConverter,
    PayloadValidationError,
    PydanticConverter,
    Repid,
    Router,
    TestClient,
)
from repid.converters.default import pydantic_available
from repid.dependencies.resolver import InputSpec, PayloadField


async def process(app: Repid, payload: bytes, topic: str):
    async with TestClient(app) as client:
        await client.send_message(channel="default", payload=payload, headers={"topic": topic})
        return client.get_processed_messages()[-1]


def app_with(actor, **router_options) -> Repid:
    app = Repid()
    router = Router(**router_options)
    router.actor(actor)
    app.include_router(router)
    return app


async def test_pydantic_coerces_by_default() -> None:
    async def process_user(user_id: int, is_active: bool):
        return user_id, is_active

    app = app_with(process_user)
    msg = await process(app, b'{"user_id": "123", "is_active": 1}', "process_user")
    assert msg.result == (123, True)


async def test_basic_converter_does_not_coerce() -> None:
    async def process_user(user_id: int, is_active: bool):
        return user_id, is_active

    app = app_with(process_user, converter=BasicConverter)
    msg = await process(app, b'{"user_id": "123", "is_active": 1, "extra": 0}', "process_user")
    assert msg.result == ("123", 1)


async def test_basic_converter_failures_go_to_on_error() -> None:
    ran = []

    async def a(x: int):
        ran.append(x)

    app = app_with(a, converter=BasicConverter)
    for payload, needle in [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"{}", "missing required field"),
    ]:
        msg = await process(app, payload, "a")
        assert isinstance(msg.exception, PayloadValidationError)
        assert needle in str(msg.exception)
        assert msg.nacked
    assert ran == []


class UserAddress(BaseModel):
    city: str
    country: str


async def test_pydantic_constraints_defaults_and_nested_models() -> None:
    async def process_order(
        quantity: Annotated[int, Gt(0)],
        order_id: Annotated[str, Field(default_factory=lambda: uuid.uuid4().hex)],
        shipping_address: UserAddress,
    ):
        return quantity, order_id, shipping_address

    app = app_with(process_order)
    ok = await process(
        app, b'{"quantity": 2, "shipping_address": {"city": "A", "country": "B"}}', "process_order"
    )
    quantity, order_id, address = ok.result
    assert quantity == 2 and len(order_id) == 32
    assert address == UserAddress(city="A", country="B")
    bad = await process(
        app, b'{"quantity": 0, "shipping_address": {"city": "A", "country": "B"}}', "process_order"
    )
    assert not bad.success and bad.nacked and "greater than 0" in str(bad.exception)
    nested_bad = await process(app, b'{"quantity": 1, "shipping_address": {}}', "process_order")
    assert not nested_bad.success


async def test_converter_override_per_router_and_per_actor() -> None:
    app = Repid()
    router = Router(converter=BasicConverter)

    @router.actor
    async def basic(n: int):
        return n

    @router.actor(converter=PydanticConverter)
    async def pyd(n: int):
        return n

    app.include_router(router)
    assert (await process(app, b'{"n": "1"}', "basic")).result == "1"
    assert (await process(app, b'{"n": "1"}', "pyd")).result == 1


async def test_default_values_of_actor_parameters_apply() -> None:
    async def a(x: int = 7, y: str = "d"):
        return x, y

    for converter in (BasicConverter, PydanticConverter):
        app = app_with(a, converter=converter)
        assert (await process(app, b"", "a")).result == (7, "d")
        assert (await process(app, b'{"y": "z"}', "a")).result == (7, "z")


def test_default_converter_picks_pydantic_when_installed() -> None:
    spec = InputSpec(owner="a", payload_fields={"n": PayloadField("n", int)})
    converter = DefaultConverter(spec)
    assert pydantic_available()
    assert isinstance(converter, PydanticConverter)


def test_schemas_for_asyncapi() -> None:
    spec = InputSpec(owner="a", payload_fields={"n": PayloadField("n", int)})
    assert PydanticConverter(spec).payload_schema()["properties"]["n"]["type"] == "integer"
    assert BasicConverter(spec).payload_schema() == {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
    }
