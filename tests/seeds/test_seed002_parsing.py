"""Seed 002, "Payload & Headers Parsing": the examples, verbatim, through `TestClient`.

Pydantic is installed in this environment, so the default converter is the Pydantic one; the
"without Pydantic" examples run with `BasicConverter` selected explicitly (what the default
falls back to when Pydantic is missing).
"""

import uuid
from typing import Annotated

import pytest

from repid import BasicConverter, DefaultConverter, PydanticConverter, Repid, Router, TestClient


async def _send(router: Router, topic: str, payload: object, headers: dict | None = None):
    app = Repid()
    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="default", payload=payload, headers={"topic": topic, **(headers or {})}
        )
        (processed,) = client.get_processed_messages()
    return processed


# --- Parsing without Pydantic -------------------------------------------------------------


async def test_parsing_without_pydantic() -> None:
    seen: list[tuple[object, object]] = []
    router = Router(converter=BasicConverter)  # what DefaultConverter is without Pydantic

    # Assuming payload: {"user_id": 123, "is_active": true}
    @router.actor
    async def process_user(user_id, is_active):
        # user_id will be an int (123)
        # is_active will be a bool (True)
        seen.append((user_id, is_active))

    msg = await _send(router, "process_user", {"user_id": 123, "is_active": True})
    assert msg.success
    assert seen == [(123, True)]
    assert type(seen[0][0]) is int and type(seen[0][1]) is bool


async def test_no_type_validation_without_pydantic() -> None:
    # "If the sender passes {"user_id": "123"} ... your function will receive a string"
    seen: list[object] = []
    router = Router(converter=BasicConverter)

    @router.actor
    async def process_user(user_id: int):
        seen.append(user_id)

    msg = await _send(router, "process_user", {"user_id": "123"})
    assert msg.success
    assert seen == ["123"]


# --- Parsing with Pydantic ----------------------------------------------------------------


async def test_parsing_with_pydantic_coerces() -> None:
    seen: list[tuple[object, object]] = []
    router = Router()

    # Assuming payload: {"user_id": "123", "is_active": 1}
    @router.actor
    async def process_user(user_id: int, is_active: bool):
        # user_id is automatically coerced to an int (123)
        # is_active is automatically coerced to a bool (True)
        seen.append((user_id, is_active))

    msg = await _send(router, "process_user", {"user_id": "123", "is_active": 1})
    assert msg.success
    assert seen == [(123, True)]
    assert type(seen[0][0]) is int and type(seen[0][1]) is bool


def _order_router(seen: list) -> Router:
    router = Router()

    from typing import Annotated

    from annotated_types import Gt
    from pydantic import BaseModel, Field

    class UserAddress(BaseModel):
        city: str
        country: str

    @router.actor
    async def process_order(
        # Use annotated-types for simple constraints
        quantity: Annotated[int, Gt(0)],
        # Use Pydantic's Field for complex defaults (like UUIDs or timestamps)
        order_id: Annotated[str, Field(default_factory=lambda: uuid.uuid4().hex)],
        # Use nested Pydantic models for complex nested payload data
        shipping_address: UserAddress,
    ):
        # Repid guarantees that if the actor executes, `quantity` > 0,
        # `order_id` is auto-generated if missing,
        # and `shipping_address` is strictly formatted!
        seen.append((quantity, order_id, shipping_address))

    return router


async def test_pydantic_advanced_typing() -> None:
    seen: list = []
    router = _order_router(seen)
    address = {"city": "Oslo", "country": "NO"}
    msg = await _send(router, "process_order", {"quantity": 2, "shipping_address": address})
    assert msg.success, msg.exception
    ((quantity, order_id, shipping),) = seen
    assert quantity == 2
    assert len(order_id) == 32 and int(order_id, 16) >= 0  # auto-generated hex UUID
    assert shipping.city == "Oslo" and shipping.country == "NO"
    assert type(shipping).__name__ == "UserAddress"

    msg = await _send(
        router, "process_order", {"quantity": 1, "order_id": "given", "shipping_address": address}
    )
    assert msg.success
    assert seen[1][1] == "given"


@pytest.mark.parametrize(
    "payload",
    [
        {"quantity": 0, "shipping_address": {"city": "Oslo", "country": "NO"}},
        {"quantity": 1, "shipping_address": {"city": "Oslo"}},
        {"quantity": 1},
    ],
)
async def test_pydantic_rejects_invalid_payloads_before_the_actor(payload: dict) -> None:
    seen: list = []
    msg = await _send(_order_router(seen), "process_order", payload)
    assert seen == []  # "if the actor executes, quantity > 0 ..."
    assert msg.success is False
    assert msg.nacked is True


# --- The FullPayload() Annotation ---------------------------------------------------------


async def test_full_payload(capsys: pytest.CaptureFixture[str]) -> None:
    from typing import Annotated

    from pydantic import BaseModel

    from repid import FullPayload

    router = Router()

    class UserPayload(BaseModel):
        user_id: int
        is_active: bool

    @router.actor
    async def process_user(user: Annotated[UserPayload, FullPayload()]):
        # `user` contains the fully validated payload model
        print(user.user_id)

    msg = await _send(router, "process_user", {"user_id": "17", "is_active": True})
    assert msg.success, msg.exception
    assert capsys.readouterr().out == "17\n"
    msg = await _send(router, "process_user", {"user_id": 17})
    assert msg.success is False
    assert msg.nacked is True


# --- Extracting Headers -------------------------------------------------------------------


def _header_router() -> Router:
    router = Router()

    from typing import Annotated

    from repid import Header

    @router.actor
    async def my_actor(
        payload_data: str,
        correlation_id: Annotated[str, Header(alias="correlation-id")],
        custom_trace: Annotated[str | None, Header()] = None,
    ):
        print(f"Tracking: {correlation_id} / {custom_trace}")

    return router


async def test_extracting_headers(capsys: pytest.CaptureFixture[str]) -> None:
    msg = await _send(
        _header_router(),
        "my_actor",
        {"payload_data": "x"},
        headers={"correlation-id": "c-1", "custom_trace": "t-9"},
    )
    assert msg.success, msg.exception
    assert capsys.readouterr().out == "Tracking: c-1 / t-9\n"


async def test_extracting_headers_optional_default(capsys: pytest.CaptureFixture[str]) -> None:
    msg = await _send(
        _header_router(), "my_actor", {"payload_data": "x"}, headers={"correlation-id": "c-1"}
    )
    assert msg.success, msg.exception
    assert capsys.readouterr().out == "Tracking: c-1 / None\n"


async def test_missing_required_header_is_a_validation_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    msg = await _send(_header_router(), "my_actor", {"payload_data": "x"})
    assert msg.success is False
    assert msg.nacked is True
    assert capsys.readouterr().out == ""


async def test_headers_are_coerced_with_pydantic() -> None:
    from repid import Header

    router = Router()

    @router.actor
    async def retries(attempt: Annotated[int, Header(alias="x-attempt")]) -> int:
        return attempt

    assert (await _send(router, "retries", {}, headers={"x-attempt": "3"})).result == 3


# --- Explicitly Specifying the Converter --------------------------------------------------


async def test_basic_converter_on_router() -> None:
    from repid import BasicConverter, Router

    router = Router(converter=BasicConverter)  # (1)

    @router.actor
    async def my_actor(user_id: int, is_active: bool):
        # Uses BasicConverter - no type validation or coercion
        pass

    # Added: a twin on the same router returns what it got.
    @router.actor
    async def echo(user_id: int, is_active: bool):
        return user_id, is_active

    assert (await _send(router, "my_actor", {"user_id": "1", "is_active": 0})).success
    assert (await _send(router, "echo", {"user_id": "1", "is_active": 0})).result == ("1", 0)
    assert router.actors[0].converter is BasicConverter


async def test_pydantic_converter_on_actor() -> None:
    from repid import PydanticConverter, Router

    router = Router()

    @router.actor(converter=PydanticConverter)  # (1)
    async def my_actor(user_id: int, is_active: bool):
        # Uses PydanticConverter - full type validation and coercion
        pass

    @router.actor(converter=PydanticConverter)
    async def echo(user_id: int, is_active: bool):
        return user_id, is_active

    assert (await _send(router, "my_actor", {"user_id": "1", "is_active": 0})).success
    assert (await _send(router, "echo", {"user_id": "1", "is_active": 0})).result == (1, False)
    assert (await _send(router, "echo", {"user_id": "x", "is_active": 0})).nacked is True


def test_default_converter_is_the_default() -> None:
    router = Router()

    @router.actor
    async def anything() -> None:
        pass

    assert router.actors[0].converter is DefaultConverter
    assert PydanticConverter is not BasicConverter


async def test_headers_are_not_coerced_without_pydantic() -> None:
    # "If Pydantic is installed, headers extracted this way are also strongly validated":
    # without it (BasicConverter) the header string arrives as sent.
    from repid import Header

    router = Router(converter=BasicConverter)

    @router.actor
    async def retries(attempt: Annotated[int, Header(alias="x-attempt")]) -> object:
        return attempt

    assert (await _send(router, "retries", {}, headers={"x-attempt": "3"})).result == "3"


async def test_pydantic_field_aliases_and_defaults() -> None:
    # "you can use pydantic.Field for defaults and aliases" (Using Pydantic & FastAPI)
    from pydantic import Field

    router = Router()

    @router.actor
    async def aliased(
        user_id: Annotated[int, Field(alias="userId")],
        # (Pydantic does not take `default=` inside Annotated; a Field as the default works.)
        note: str = Field(default="none"),
    ) -> tuple[int, str]:
        return user_id, note

    assert (await _send(router, "aliased", {"userId": "5"})).result == (5, "none")
    assert (await _send(router, "aliased", {"userId": 6, "note": "n"})).result == (6, "n")
