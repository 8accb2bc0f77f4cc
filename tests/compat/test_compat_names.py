"""repid 2.x's constructor keywords and public names, accepted here with their 2.x meaning.

The names come from repid 2.1.4's public signatures (`inspect.signature` in its own virtual
environment); see docs/migration/from-repid-2.md for the whole table.
"""

from __future__ import annotations

import pytest

from repid import AmqpServer, ConfigurationError, PubsubServer
from repid.connections.amqp.addressing import default_address_strategy
from repid.connections.pubsub import ChannelOverride


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
