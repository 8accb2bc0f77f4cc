"""repid 2.x's constructor keywords and public names, accepted here with their 2.x meaning.

The names come from repid 2.1.4's public signatures (`inspect.signature` in its own virtual
environment); see docs/migration/from-repid-2.md for the whole table.
"""

from __future__ import annotations

import json
import re
import typing

import pytest

from repid import (
    AmqpServer,
    AsyncAPIServerSettings,
    ConfigurationError,
    InMemoryServer,
    Message,
    PubsubServer,
    Repid,
    Router,
    TestClient,
)
from repid.connections.amqp.addressing import default_address_strategy
from repid.connections.pubsub import ChannelOverride
from repid.testing import ActorNotFoundError
from tests.health.http_client import get


def test_amqp_dsn_and_publish_naming_strategy():
    calls: list[tuple[str, str | None]] = []

    def naming(channel: str, routing_key: str | None) -> str:
        calls.append((channel, routing_key))
        return f"/exchanges/app/{routing_key or channel}"

    server = AmqpServer(
        dsn="amqp://guest:guest@rabbit.example:5673/prod",
        publish_naming_strategy=naming,
        subscribe_naming_strategy=lambda channel: f"/queues/app.{channel}",
        session_window=64,
    )
    assert (server.host, server.pathname) == ("rabbit.example:5673", "/prod")
    assert server.address_strategy("orders") == "/exchanges/app/orders"
    assert server.exchange_address_strategy("orders", "eu") == "/exchanges/app/eu"
    assert calls == [("orders", None), ("orders", "eu")]
    assert server.subscribe_naming_strategy("orders") == "/queues/app.orders"
    assert server.session_window == 64
    assert AmqpServer().subscribe_naming_strategy is default_address_strategy


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "amqp://a", "dsn": "amqp://b"},
        {"publish_naming_strategy": lambda c, k: c, "address_strategy": lambda c: c},
        {"publish_naming_strategy": lambda c, k: c, "exchange_address_strategy": lambda c, k: c},
    ],
)
def test_amqp_conflicting_names_are_refused(kwargs):
    with pytest.raises(ConfigurationError, match="pass only"):
        AmqpServer(**kwargs)


def test_pubsub_2x_signature_with_an_emulator_dsn():
    server = PubsubServer("http://127.0.0.1:8681/v1", default_project="p")
    assert (server.project, server.emulator_host, server.endpoint) == (
        "p",
        "127.0.0.1:8681",
        "127.0.0.1:8681",
    )
    assert (
        PubsubServer(dsn="http://localhost:8085", default_project="p").emulator_host
        == "localhost:8085"
    )
    assert PubsubServer(default_project="p").project == "p"


def test_pubsub_2x_signature_with_a_tls_dsn(monkeypatch):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "localhost:1")  # a dsn wins over it
    plain = PubsubServer("https://pubsub.example.com", default_project="p")
    assert (plain.endpoint, plain.emulator_host, plain.authenticate) == (
        "pubsub.example.com:443",
        None,
        False,
    )
    authed = PubsubServer(
        "https://pubsub.example.com:8443", default_project="p", use_google_auth=True
    )
    assert (authed.endpoint, authed.authenticate) == ("pubsub.example.com:8443", True)
    with pytest.raises(ConfigurationError, match="needs TLS"):
        PubsubServer("http://localhost:8085", default_project="p", use_google_auth=True)


def test_pubsub_2x_tuning_names(monkeypatch):
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    server = PubsubServer(
        default_project="p",
        stream_ack_deadline_seconds=120,
        reconnect_base_delay=2.0,
        reconnect_max_delay=16.0,
        reconnect_jitter_factor=0.1,
        stability_threshold=30.0,
    )
    assert (server.ack_deadline, server.initial_backoff, server.max_backoff) == (120, 2.0, 16.0)
    assert (server.reconnect_jitter_factor, server.stability_threshold) == (0.1, 30.0)
    assert server.authenticate  # no dsn: Google default credentials, as in 2.x


def test_pubsub_channel_overrides():
    server = PubsubServer(
        "p",
        emulator_host="localhost:8085",
        channel_prefix="dev-",
        channel_overrides={
            "orders": ChannelOverride(topic="orders-v2", subscription="orders-workers"),
            "billing": ChannelOverride(project="finance"),
            "audit": ChannelOverride(topic="projects/x/topics/audit-log"),
        },
    )
    assert server.topic_path("orders") == "projects/p/topics/orders-v2"
    assert server.subscription_path("orders") == "projects/p/subscriptions/orders-workers"
    assert server.topic_path("billing") == "projects/finance/topics/dev-billing"
    assert server.subscription_path("billing") == "projects/finance/subscriptions/dev-billing"
    assert server.topic_path("audit") == "projects/x/topics/audit-log"
    assert server.topic_path("other") == "projects/p/topics/dev-other"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"default_project": "p", "max_reconnect_attempts": 5},
            "max_reconnect_attempts.*publish_timeout",
        ),
        (
            {"default_project": "p", "credentials_provider": object()},
            "credentials_provider.*credentials=",
        ),
        ({"dsn": "http://localhost:8085"}, "without default_project"),
        (
            {"project": "p", "ack_deadline": 30, "stream_ack_deadline_seconds": 30},
            "pass only ack_deadline",
        ),
        (
            {"default_project": "p", "dsn": "http://h:1", "emulator_host": "h:2"},
            "dsn= and emulator_host=",
        ),
    ],
)
def test_pubsub_refusals_say_what_to_use(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        PubsubServer(**kwargs)


# -- the app, its settings and the top-level names ----------------------------------------------


def test_top_level_2x_names_resolve_to_ours():
    import repid
    from repid.data import MessageData
    from repid.routing import OnErrorT, topic_routing_strategy
    from repid.serializers import SerializerT

    assert repid.topic_based_routing_strategy is topic_routing_strategy
    assert repid.SerializerT is SerializerT
    assert repid.OnErrorT is OnErrorT
    assert repid.SentMessageT is MessageData
    assert repid.AsyncAPIServer.__name__ == "AsyncAPIServer"
    assert typing.get_args(repid.AutoActionT) == ("ack", "nack", "reject")
    assert typing.get_args(repid.ManualActionT) == ("ack", "nack", "reject", "no_action")
    assert repid.logger.name == "repid"
    assert repid.MessageAction.acked is repid.MessageAction.ACKED
    assert repid.MessageAction.replied.value == "replied"
    assert not hasattr(repid, "NoSuchName")


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("CapabilitiesT", "ServerCapabilities"),
        ("HealthCheckServer", "health_check_server="),
        ("CorrelationId", "messages="),
        ("ConverterInputSchema", "ConverterT"),
        ("AsyncAPIGenerator", "generate_asyncapi_schema"),
    ],
)
def test_removed_2x_names_say_what_to_use(name: str, hint: str):
    with pytest.raises(ImportError, match=hint):
        exec(f"from repid import {name}")  # what a 2.x user's import line does


async def test_app_2x_options():
    seen = []

    def upper(data):
        seen.append(data)
        return b"UPPER"

    app = Repid(default_serializer=None)  # 2.x: None means the default serializer
    app.servers.register_server("default", InMemoryServer(), is_default=True)
    router = Router()

    @router.actor(channel="c", keep_alive=True)
    async def job(message: Message) -> bytes:
        return message.payload

    @router.actor(channel="c", keep_alive=30.0)
    async def other(message: Message) -> None: ...

    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={"a": 1}, headers={"topic": "job"})
        await client.send_message_json(
            channel="c", payload={"a": 2}, headers={"topic": "job"}, serializer=upper
        )
        results = [m.result for m in client.get_processed_messages()]
    assert results == [b'{"a":1}', b"UPPER"]
    assert seen == [{"a": 2}]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"keep_alive": False}, "keep_alive=False"),
        ({"correlation_id": object()}, "correlation_id=.*messages="),
        ({"message_schema": object()}, "message_schema=.*messages="),
    ],
)
def test_actor_2x_options_without_equivalent(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        Router().actor(channel="c", **kwargs)
    if "keep_alive" in kwargs:
        with pytest.raises(ConfigurationError, match=match):
            Router(**kwargs)


async def test_test_client_2x_switches():
    app = Repid()
    router = Router()

    @router.actor(channel="c")
    async def boom() -> None:
        raise ValueError("boom")

    app.include_router(router)
    async with TestClient(app, raise_on_actor_error=True) as client:
        with pytest.raises(ValueError, match="boom"):
            await client.send_message(channel="c", payload=b"", headers={"topic": "boom"})
    async with TestClient(app, raise_on_actor_not_found=True, auto_process=False) as client:
        await client.send_message(channel="c", payload=b"", headers={"topic": "nobody"})
        with pytest.raises(ActorNotFoundError, match="no actor"):
            await client.process_all()
    async with TestClient(app, raise_on_operation_not_found=False, auto_process=False) as client:
        await client.send_message(operation_id="missing", payload=b"")
        assert client.get_sent_messages() == []
        await client.send_message(channel="c", payload=b"", headers={"topic": "boom"})
        processed = await client.process_all()
        assert [type(m.exception) for m in processed] == [ValueError]
        client.clear()
        assert client.get_processed_messages() == [] and client.get_sent_messages() == []


async def test_asyncapi_server_from_the_app_with_2x_page_settings():
    app = Repid(title="Docs")
    server = await app.asyncapi_server(
        AsyncAPIServerSettings(port=0, sidebar=False, expand_message_examples=False)
    ).start()
    try:
        page = (await get(server.port, "/")).body.decode()
    finally:
        await server.stop()
    config = json.loads(
        re.search(
            r'<script id="asyncapi-config" type="application/json">(.*?)</script>', page, re.S
        ).group(1)  # type: ignore[union-attr]
    )
    assert config["show"]["sidebar"] is False and config["show"]["info"] is True
    assert config["expand"] == {"messageExamples": False}


def test_version_is_above_the_2x_line():
    import importlib.metadata

    import repid

    assert repid.__version__ == importlib.metadata.version("repid")
    major = int(repid.__version__.split(".")[0])
    assert major >= 3  # `pip install -U repid` from 2.1.4 lands here
