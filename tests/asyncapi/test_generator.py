"""AsyncAPI documents of several apps, each validated against the official 3.0.0 JSON Schema."""

from __future__ import annotations

import datetime
import enum
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import jsonschema
import pydantic
import pytest
from annotated_types import Ge, Gt, Le, MaxLen
from hypothesis import given, settings
from hypothesis import strategies as st
from referencing import Registry
from referencing.jsonschema import DRAFT7

from repid import (
    BasicConverter,
    Channel,
    Contact,
    Depends,
    ExternalDocs,
    FullPayload,
    Header,
    InMemoryServer,
    License,
    Repid,
    Router,
    Tag,
    catch_all_routing_strategy,
)
from repid.asyncapi.generator import generate_schema, safe_key
from repid.connections.base import BaseServer

from .spec import assert_valid_asyncapi, asyncapi_validator

KEY = re.compile(r"^[\w\d\.\-_]+$", re.ASCII)


def resolve(document: Mapping[str, Any], ref: str) -> Any:
    """Follow a local JSON pointer `#/a/b` inside `document`."""
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def payload_validator(document: Mapping[str, Any], message_key: str, part: str = "payload") -> Any:
    """A JSON Schema validator for one message's payload, `$ref`s resolved in the document."""
    registry: Registry[Any] = Registry().with_resource(
        "urn:doc", DRAFT7.create_resource(json.loads(json.dumps(document)))
    )
    ref = document["components"]["messages"][message_key][part]["$ref"]
    return jsonschema.Draft7Validator({"$ref": "urn:doc" + ref}, registry=registry)


def check_structure(document: Mapping[str, Any]) -> None:
    """Every internal `$ref` resolves and every key matches the spec's key pattern."""

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str):
                resolve(document, ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    for section in ("channels", "operations", "servers"):
        for key in document.get(section, {}):
            assert KEY.match(key), (section, key)
    for section, items in document.get("components", {}).items():
        for key in items:
            assert KEY.match(key), (section, key)


# Apps --------------------------------------------------------------------------------------


def plain_app() -> Repid:
    """No Pydantic: the BasicConverter describes the payloads."""
    app = Repid(title="Plain", version="1.2.3", description="No pydantic here.")
    app.servers.register_server("memory", InMemoryServer())
    router = Router(converter=BasicConverter)

    @router.actor(channel="emails")
    async def send_email(to: str, subject: str, retries: int = 3, tags: list[str] | None = None):
        return None

    @router.actor(channel="emails")
    async def bounce(raw: Annotated[dict[str, Any], FullPayload()]) -> None:
        return None

    @router.actor
    async def traced(
        user_id: int, trace: Annotated[str, Header(alias="X-Trace-Id")], lang: str = "en"
    ) -> None:
        return None

    @router.actor(channel="ping", routing_strategy=catch_all_routing_strategy)
    async def ping() -> None:
        return None

    app.include_router(router)
    return app


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(pydantic.BaseModel):
    street: str
    postcode: Annotated[str, pydantic.StringConstraints(pattern=r"^\d{5}$")]


class Customer(pydantic.BaseModel):
    """A customer."""

    name: Annotated[str, MaxLen(50)]
    age: Annotated[int, Gt(0), Le(150)]
    address: Address
    previous: list[Address] = []
    favourite: Colour = Colour.RED


class Order(pydantic.BaseModel):
    order_id: int
    customer: Customer
    placed: datetime.datetime
    kind: Literal["online", "shop"] = "online"
    lines: dict[str, Annotated[float, Ge(0)]] = {}
    pair: tuple[int, str] | None = None


class TreeNode(pydantic.BaseModel):
    """A recursive model: its schema refers to itself."""

    label: str
    children: list[TreeNode] = []


async def current_tenant(
    tenant: Annotated[str, Header(alias="X-Tenant")], region: str = "eu"
) -> str:
    """A dependency that reads a header and a payload field of its own."""
    return f"{tenant}/{region}"


def pydantic_app() -> Repid:
    app = Repid(
        title="Orders",
        version="2.0.0",
        description="Background task queue processing orders.",
        terms_of_service="https://example.com/terms",
        contact=Contact(name="Support", url="https://example.com", email="support@example.com"),
        license=License(name="MIT", url="https://opensource.org/licenses/MIT"),
        tags=[Tag("orders", "Order processing", ExternalDocs("https://example.com/orders"))],
        external_docs=ExternalDocs("https://example.com/docs", "The docs"),
    )
    app.servers.register_server("default", InMemoryServer(title="Memory"))
    router = Router()

    @router.actor(
        channel="orders",
        title="Process an order",
        summary="Charges and ships.",
        description="Long *markdown* text.",
        tags=[Tag("orders"), "billing"],
        external_docs=ExternalDocs("https://example.com/process"),
    )
    async def process_order(
        order: Order,
        priority: Annotated[int, Ge(0), Le(9)] = 5,
        trace: Annotated[str | None, Header(alias="X-Trace-Id")] = None,
    ) -> None:
        return None

    @router.actor(channel="orders", deprecated=True)
    async def import_customer(customer: Annotated[Customer, FullPayload()]) -> None:
        return None

    @router.actor(channel="trees")
    async def plant(tree: Annotated[TreeNode, FullPayload()]) -> None:
        return None

    @router.actor(channel="audit")
    async def audit(
        address: Address,
        when: datetime.date,
        tenant: Annotated[str, Depends(current_tenant)],
    ) -> None:
        return None

    app.include_router(router)
    return app


def operations_app() -> Repid:
    app = pydantic_app()
    app.messages.register_operation(
        "orders.submit",
        "orders",
        title="Submit an order",
        summary="Producers call this.",
        tags=[Tag("orders")],
        external_docs=ExternalDocs("https://example.com/submit"),
    )
    app.messages.register_operation(
        "notify/customer",
        Channel(
            address="notifications/customer",
            title="Customer notifications",
            description="Fan-out topic.",
            tags=[Tag("notify")],
        ),
        description="Tell a customer something.",
        messages=[
            Customer,
            {"type": "object", "properties": {"text": {"type": "string"}}},
            {
                "name": "Sms",
                "title": "An SMS",
                "payload": {"type": "object", "properties": {"phone": {"type": "string"}}},
                "headers": {"type": "object", "properties": {"X-Carrier": {"type": "string"}}},
            },
        ],
    )
    app.messages.register_operation("audit log", "audit")
    app.messages.register_operation("nowhere", "no-consumers")
    return app


class FakeServer(BaseServer):
    """A server whose inputs carry credentials, to prove none reach the document."""

    protocol = "amqp"
    protocol_version = "1.0"

    @property
    def is_connected(self) -> bool:
        return False


def servers_app() -> Repid:
    app = plain_app()
    app.servers.register_server(
        "leaky",
        FakeServer(
            host="admin:hunter2-password@broker.internal:5672",
            pathname="/vhost?password=hunter2-password",
            title="Leaky broker",
            tags=[Tag("prod")],
            bindings={"amqp": {}},
        ),
    )
    try:
        from repid import RedisServer
    except ImportError:
        pass
    else:
        app.servers.register_server(
            "redis main", RedisServer("redis://user:hunter2-password@127.0.0.1:6390/3")
        )
    try:
        from repid import PubsubServer

        server = PubsubServer("my-project", emulator_host="127.0.0.1:8085")
    except Exception:  # the Pub/Sub server is optional and its extra may be missing
        pass
    else:
        app.servers.register_server("pubsub", server)
    try:
        from repid import AmqpServer

        amqp = AmqpServer("amqp://guest:hunter2-password@127.0.0.1:5672/")
    except Exception:  # not built yet, or its extra is missing
        pass
    else:
        app.servers.register_server("amqp", amqp)
    return app


# Validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [plain_app, pydantic_app, operations_app, servers_app])
def test_documents_are_valid_asyncapi_3(factory: Any) -> None:
    document = factory().generate_asyncapi_schema()
    assert document["asyncapi"] == "3.0.0"
    assert_valid_asyncapi(document)
    check_structure(document)


def test_the_validator_rejects_invalid_documents() -> None:
    """The official schema really is applied: a wrong action and a missing title fail."""
    document = operations_app().generate_asyncapi_schema()
    document["operations"]["process_order"]["action"] = "publish"
    with pytest.raises(AssertionError, match="publish"):
        assert_valid_asyncapi(document)
    del document["info"]["title"]
    assert not asyncapi_validator().is_valid(document)


def test_empty_app_is_valid() -> None:
    document = Repid().generate_asyncapi_schema()
    assert_valid_asyncapi(document)
    assert document["info"] == {"title": "Repid", "version": "0.0.1"}
    assert "channels" not in document and "operations" not in document


# Content -----------------------------------------------------------------------------------


def test_info_section() -> None:
    info = pydantic_app().generate_asyncapi_schema()["info"]
    assert info == {
        "title": "Orders",
        "version": "2.0.0",
        "description": "Background task queue processing orders.",
        "termsOfService": "https://example.com/terms",
        "contact": {
            "name": "Support",
            "url": "https://example.com",
            "email": "support@example.com",
        },
        "license": {"name": "MIT", "url": "https://opensource.org/licenses/MIT"},
        "tags": [
            {
                "name": "orders",
                "description": "Order processing",
                "externalDocs": {"url": "https://example.com/orders"},
            }
        ],
        "externalDocs": {"url": "https://example.com/docs", "description": "The docs"},
    }


def test_plain_app_payloads_and_headers() -> None:
    document = plain_app().generate_asyncapi_schema()
    schemas = document["components"]["schemas"]
    messages = document["components"]["messages"]
    payload = resolve(document, messages["send_email"]["payload"]["$ref"])
    assert payload["properties"]["to"] == {"type": "string"}
    assert payload["properties"]["retries"] == {"type": "integer"}
    assert payload["required"] == ["to", "subject"]
    headers = resolve(document, messages["traced"]["headers"]["$ref"])
    assert headers["required"] == ["X-Trace-Id", "topic"]
    assert headers["properties"]["topic"]["const"] == "traced"
    # The catch-all actor takes any message: no topic header is documented.
    assert "headers" not in messages["ping"] and "payload" not in messages["ping"]
    assert resolve(document, messages["bounce"]["payload"]["$ref"]) == {"type": "object"}
    assert document["channels"]["emails"]["address"] == "emails"
    assert set(document["channels"]["emails"]["messages"]) == {"send_email", "bounce"}
    assert len(schemas) >= 4
    validator = payload_validator(document, "send_email")
    assert validator.is_valid({"to": "a@b.c", "subject": "hi"})
    assert not validator.is_valid({"to": "a@b.c"})


def test_pydantic_models_are_hoisted_and_constraints_kept() -> None:
    document = pydantic_app().generate_asyncapi_schema()
    schemas = document["components"]["schemas"]
    # Nested models live in components/schemas once, with rewritten refs.
    assert {"Order", "Customer", "Address", "Colour"} <= set(schemas)
    text = json.dumps(document)
    assert "$defs" not in text and "#/definitions" not in text
    customer = schemas["Customer"]
    assert customer["properties"]["address"] == {"$ref": "#/components/schemas/Address"}
    assert customer["properties"]["age"]["exclusiveMinimum"] == 0
    assert customer["properties"]["age"]["maximum"] == 150
    assert customer["properties"]["name"]["maxLength"] == 50
    assert customer["description"] == "A customer."
    assert schemas["Address"]["properties"]["postcode"]["pattern"] == r"^\d{5}$"
    # FullPayload of a model: the payload is that model, stored once.
    import_message = document["components"]["messages"]["import_customer"]
    assert import_message["payload"] == {"$ref": "#/components/schemas/Customer"}
    assert import_message["deprecated"] is True
    # Payload values validate against the document's schemas.
    validator = payload_validator(document, "process_order")
    good = {
        "order": {
            "order_id": 1,
            "placed": "2024-01-01T00:00:00Z",
            "customer": {"name": "Ann", "age": 30, "address": {"street": "x", "postcode": "12345"}},
        },
        "priority": 3,
    }
    assert validator.is_valid(good)
    bad = json.loads(json.dumps(good))
    bad["order"]["customer"]["address"]["postcode"] = "nope"
    assert not validator.is_valid(bad)
    bad["order"]["customer"]["address"]["postcode"] = "12345"
    bad["priority"] = 10
    assert not validator.is_valid(bad)
    headers = resolve(
        document, document["components"]["messages"]["process_order"]["headers"]["$ref"]
    )
    assert "X-Trace-Id" in headers["properties"]


InnerA = pydantic.create_model("Inner", number=(int, ...))
InnerB = pydantic.create_model("Inner", text=(str, ...))
OuterA = pydantic.create_model("Outer", inner=(InnerA, ...))
OuterB = pydantic.create_model("Outer", inner=(InnerB, ...))


def test_same_named_models_stay_distinct() -> None:
    """Two different models called `Inner`, each under an identical-looking `Outer`."""
    app = Repid()
    router = Router()

    async def first(value: OuterA) -> None:
        return None

    async def second(value: OuterB) -> None:
        return None

    router.actor(first)
    router.actor(second)
    app.include_router(router)
    document = app.generate_asyncapi_schema()
    assert_valid_asyncapi(document)
    check_structure(document)
    assert {"Inner", "Inner_2", "Outer", "Outer_2"} <= set(document["components"]["schemas"])
    a = payload_validator(document, "first")
    b = payload_validator(document, "second")
    assert a.is_valid({"value": {"inner": {"number": 1}}})
    assert not a.is_valid({"value": {"inner": {"number": "x"}}})
    assert b.is_valid({"value": {"inner": {"text": "x"}}})
    assert not b.is_valid({"value": {"inner": {"text": 1}}})
    # The same model used by two actors is stored once.
    app2 = Repid()
    router2 = Router()

    async def third(value: OuterA) -> None:
        return None

    router2.actor(first)
    router2.actor(third)
    app2.include_router(router2)
    schemas = app2.generate_asyncapi_schema()["components"]["schemas"]
    assert "Inner_2" not in schemas and "Outer_2" not in schemas


def test_dependency_inputs_are_documented() -> None:
    document = pydantic_app().generate_asyncapi_schema()
    message = document["components"]["messages"]["audit"]
    headers = resolve(document, message["headers"]["$ref"])
    assert set(headers["required"]) == {"X-Tenant", "topic"}
    payload = resolve(document, message["payload"]["$ref"])
    assert set(payload["properties"]) == {"address", "when", "region"}
    assert "tenant" not in payload["properties"]


def test_actor_operations_carry_metadata() -> None:
    document = pydantic_app().generate_asyncapi_schema()
    operation = document["operations"]["process_order"]
    assert operation["action"] == "receive"
    assert operation["channel"] == {"$ref": "#/channels/orders"}
    assert operation["messages"] == [{"$ref": "#/channels/orders/messages/process_order"}]
    assert operation["title"] == "Process an order"
    assert operation["summary"] == "Charges and ships."
    assert operation["description"] == "Long *markdown* text."
    assert operation["tags"] == [{"name": "orders"}, {"name": "billing"}]
    assert operation["externalDocs"] == {"url": "https://example.com/process"}
    assert document["operations"]["import_customer"]["x-deprecated"] is True


def test_send_operations() -> None:
    document = operations_app().generate_asyncapi_schema()
    operations = document["operations"]
    submit = operations["orders.submit"]
    assert submit["action"] == "send"
    assert submit["title"] == "Submit an order"
    # Without explicit messages a send operation lists what its channel's actors take.
    assert submit["messages"] == [
        {"$ref": "#/channels/orders/messages/process_order"},
        {"$ref": "#/channels/orders/messages/import_customer"},
    ]
    notify = operations["notify_customer"]
    channel = resolve(document, notify["channel"]["$ref"])
    assert channel["address"] == "notifications/customer"
    assert channel["title"] == "Customer notifications"
    assert channel["tags"] == [{"name": "notify"}]
    assert len(notify["messages"]) == 3
    sms = resolve(document, resolve(document, notify["messages"][2]["$ref"])["$ref"])
    assert sms["title"] == "An SMS"
    assert "X-Carrier" in resolve(document, sms["headers"]["$ref"])["properties"]
    assert operations["audit_log"]["channel"] == {"$ref": "#/channels/audit"}
    assert "messages" not in operations["nowhere"]
    assert "messages" not in document["channels"]["no-consumers"]


def test_no_credentials_in_the_document() -> None:
    document = servers_app().generate_asyncapi_schema()
    text = json.dumps(document)
    for secret in ("hunter2", "password", "***", "@broker", "admin:", "guest:"):
        assert secret not in text, secret
    servers = document["servers"]
    assert servers["leaky"]["host"] == "broker.internal:5672"
    assert servers["leaky"]["pathname"] == "/vhost"
    assert servers["leaky"]["protocolVersion"] == "1.0"
    assert servers["leaky"]["title"] == "Leaky broker"
    assert servers["memory"] == {"host": "localhost", "protocol": "in-memory"}
    if "redis_main" in servers:
        assert servers["redis_main"]["host"] == "127.0.0.1:6390"
        assert servers["redis_main"]["pathname"] == "/3"
        assert servers["redis_main"]["protocol"] == "redis"


def test_ids_are_unique_and_safe() -> None:
    app = Repid()
    app.servers.register_server("a b", InMemoryServer())
    app.servers.register_server("a/b", InMemoryServer())
    router = Router()

    @router.actor(name="do it", channel="q 1")
    async def one() -> None:
        return None

    @router.actor(name="do/it", channel="q/1")
    async def two() -> None:
        return None

    app.include_router(router)
    app.messages.register_operation("do it", "q 1")
    document = generate_schema(app)
    assert set(document["servers"]) == {"a_b", "a_b_2"}
    assert set(document["channels"]) == {"q_1", "q_1_2"}
    assert set(document["operations"]) == {"do_it", "do_it_2", "do_it_3"}
    assert document["channels"]["q_1_2"]["address"] == "q/1"
    assert_valid_asyncapi(document)
    check_structure(document)


# Control characters are excluded: Pydantic refuses them in the model names it builds.
names = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=20)


@settings(max_examples=25)
@given(st.lists(st.tuples(names, names), min_size=1, max_size=4), st.lists(names, max_size=3))
def test_any_names_give_valid_documents(actors: list[tuple[str, str]], ops: list[str]) -> None:
    app = Repid(title="Fuzz")
    app.servers.register_server("default", InMemoryServer())
    router = Router()
    for name, channel in actors:

        async def fn(value: int = 0) -> None:
            return None

        router.actor(name=name, channel=channel)(fn)
    app.include_router(router)
    for index, op in enumerate(ops):
        app.messages.register_operation(f"{op}{index}", actors[0][1])
    document = app.generate_asyncapi_schema()
    assert_valid_asyncapi(document)
    check_structure(document)
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == {channel for _, channel in actors}
    assert safe_key("a/b c") == "a_b_c"
