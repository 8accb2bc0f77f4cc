"""Repid: an async task queue framework with AsyncAPI 3.0 schema generation.

Servers for Redis, AMQP 1.0 and Pub/Sub need their extras (`pip install repid[redis]`,
`[amqp]`, `[pubsub]`); their names are importable from here and load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repid.app import Repid
from repid.asyncapi.models import Contact, ExternalDocs, License, Tag
from repid.asyncapi.settings import AsyncAPIServerSettings
from repid.connections.abc import (
    BaseMessageT,
    DeliveryCapacity,
    MessageAction,
    ReceivedMessageT,
    ServerCapabilities,
    ServerT,
    SubscriberT,
)
from repid.connections.in_memory import InMemoryServer
from repid.converters import BasicConverter, DefaultConverter, PydanticConverter
from repid.data import ActorData, MessageData
from repid.dependencies import Depends, FullPayload, Header
from repid.errors import (
    ActorDeclarationError,
    InvalidConfirmationError,
    NoServerRegisteredError,
    OperationNotFoundError,
    PayloadValidationError,
    RepidError,
    ServerNotConnectedError,
    ServerNotFoundError,
)
from repid.health.settings import HealthCheckServerSettings
from repid.message import Message, MessageDependency
from repid.middlewares import ActorMiddlewareT, ProducerMiddlewareT
from repid.registry import Channel, MessageRegistry, Operation, ServerRegistry
from repid.routing import (
    Router,
    RoutingStrategyFactoryT,
    RoutingStrategyT,
    catch_all_routing_strategy,
    topic_routing_strategy,
)
from repid.serializers import default_serializer
from repid.testing import TestClient, TestMessage
from repid.worker.actor import ActorTimeoutError
from repid.worker.runner import RunnerInfo

if TYPE_CHECKING:
    from repid.connections.amqp import AmqpServer
    from repid.connections.pubsub import PubsubServer
    from repid.connections.redis import RedisServer

__all__ = [
    "ActorData",
    "ActorDeclarationError",
    "ActorMiddlewareT",
    "ActorTimeoutError",
    "AmqpServer",
    "AsyncAPIServerSettings",
    "BaseMessageT",
    "BasicConverter",
    "Channel",
    "Contact",
    "DefaultConverter",
    "DeliveryCapacity",
    "Depends",
    "ExternalDocs",
    "FullPayload",
    "Header",
    "HealthCheckServerSettings",
    "InMemoryServer",
    "InvalidConfirmationError",
    "License",
    "Message",
    "MessageAction",
    "MessageData",
    "MessageDependency",
    "MessageRegistry",
    "NoServerRegisteredError",
    "Operation",
    "OperationNotFoundError",
    "PayloadValidationError",
    "ProducerMiddlewareT",
    "PubsubServer",
    "PydanticConverter",
    "ReceivedMessageT",
    "RedisServer",
    "Repid",
    "RepidError",
    "Router",
    "RoutingStrategyFactoryT",
    "RoutingStrategyT",
    "RunnerInfo",
    "ServerCapabilities",
    "ServerNotConnectedError",
    "ServerNotFoundError",
    "ServerRegistry",
    "ServerT",
    "SubscriberT",
    "Tag",
    "TestClient",
    "TestMessage",
    "catch_all_routing_strategy",
    "default_serializer",
    "topic_routing_strategy",
]

_LAZY = {
    "AmqpServer": ("repid.connections.amqp", "amqp"),
    "RedisServer": ("repid.connections.redis", "redis"),
    "PubsubServer": ("repid.connections.pubsub", "pubsub"),
}


def __getattr__(name: str) -> Any:
    # Broker servers import their client libraries (redis, grpc) only when first used, so
    # `import repid` works with nothing but the core installed.
    if name in _LAZY:
        module_name, extra = _LAZY[name]
        import importlib

        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ImportError(
                f"repid.{name} needs the {extra!r} extra: pip install 'repid[{extra}]' ({exc})"
            ) from exc
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'repid' has no attribute {name!r}")
