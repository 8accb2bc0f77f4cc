"""Repid: an async task queue framework with AsyncAPI 3.0 schema generation.

Servers for Redis, AMQP 1.0 and Pub/Sub need their extras (`pip install repid[redis]`,
`[amqp]`, `[pubsub]`); their names are importable from here and load on first use.
"""

from __future__ import annotations

import logging as _logging
from typing import TYPE_CHECKING, Any

from repid._compat import repid2_attribute
from repid._lazy import load_lazy
from repid._version import __version__
from repid.app import Repid
from repid.asyncapi.models import Contact, ExternalDocs, License, Tag
from repid.asyncapi.settings import AsyncAPIServerSettings
from repid.connections.abc import (
    BaseMessageT,
    BatchPublisherT,
    DeliveryCapacity,
    MessageAction,
    ReceivedMessageT,
    ServerCapabilities,
    ServerT,
    SubscriberT,
    SubscriptionState,
)
from repid.connections.in_memory import InMemoryServer
from repid.converters import BasicConverter, DefaultConverter, PydanticConverter
from repid.data import ActorData, MessageData
from repid.dependencies import Depends, FullPayload, Header
from repid.errors import (
    ActorDeclarationError,
    BatchPublishError,
    BatchSendError,
    ConfigurationError,
    InvalidConfirmationError,
    NoServerRegisteredError,
    OperationNotFoundError,
    PayloadValidationError,
    RemovedNameError,
    RepidError,
    ServerNotConnectedError,
    ServerNotFoundError,
)
from repid.health.settings import HealthCheckServerSettings
from repid.jobs import (
    ArgsBucket,
    ArgsBucketNotFoundError,
    BucketBrokerT,
    CancelOutcome,
    Connection,
    ConnectionNotBoundError,
    CronSyntaxError,
    DuplicateJobError,
    InMemoryBucketBroker,
    InMemoryMessageBroker,
    Job,
    JobCancelledError,
    JobMiddleware,
    JobStateNotConfiguredError,
    JobTimeoutError,
    MessageBrokerT,
    PrioritiesT,
    Queue,
    QueueNotDeclaredError,
    ResultBucket,
    RetryPolicyT,
    Scheduler,
    Worker,
    default_retry_policy_factory,
)
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
from repid.sending import OutgoingMessage, SendResult, SendResults
from repid.serializers import default_serializer
from repid.sync import SyncProducer
from repid.testing import TestClient, TestMessage
from repid.worker.actor import ActorTimeoutError
from repid.worker.runner import RunnerInfo

if TYPE_CHECKING:
    from repid.connections.amqp import AmqpServer
    from repid.connections.pubsub import PubsubServer
    from repid.connections.redis import RedisServer
    from repid.jobs.brokers.rabbit import RabbitMessageBroker
    from repid.jobs.brokers.redis import RedisBucketBroker, RedisMessageBroker

__all__ = [
    "ActorData",
    "ActorDeclarationError",
    "ActorMiddlewareT",
    "ActorTimeoutError",
    "AmqpServer",
    "ArgsBucket",
    "ArgsBucketNotFoundError",
    "AsyncAPIServerSettings",
    "BaseMessageT",
    "BatchPublishError",
    "BatchPublisherT",
    "BatchSendError",
    "BasicConverter",
    "BucketBrokerT",
    "CancelOutcome",
    "Channel",
    "ConfigurationError",
    "Connection",
    "ConnectionNotBoundError",
    "Contact",
    "CronSyntaxError",
    "DefaultConverter",
    "DeliveryCapacity",
    "Depends",
    "DuplicateJobError",
    "ExternalDocs",
    "FullPayload",
    "Header",
    "HealthCheckServerSettings",
    "InMemoryBucketBroker",
    "InMemoryMessageBroker",
    "InMemoryServer",
    "InvalidConfirmationError",
    "Job",
    "JobCancelledError",
    "JobMiddleware",
    "JobStateNotConfiguredError",
    "JobTimeoutError",
    "License",
    "Message",
    "MessageAction",
    "MessageBrokerT",
    "MessageData",
    "MessageDependency",
    "MessageRegistry",
    "NoServerRegisteredError",
    "Operation",
    "OutgoingMessage",
    "OperationNotFoundError",
    "PayloadValidationError",
    "PrioritiesT",
    "ProducerMiddlewareT",
    "PubsubServer",
    "PydanticConverter",
    "Queue",
    "QueueNotDeclaredError",
    "RabbitMessageBroker",
    "ReceivedMessageT",
    "RedisBucketBroker",
    "RedisMessageBroker",
    "RedisServer",
    "RemovedNameError",
    "Repid",
    "RepidError",
    "ResultBucket",
    "RetryPolicyT",
    "Router",
    "RoutingStrategyFactoryT",
    "RoutingStrategyT",
    "RunnerInfo",
    "Scheduler",
    "SendResult",
    "SendResults",
    "ServerCapabilities",
    "ServerNotConnectedError",
    "ServerNotFoundError",
    "ServerRegistry",
    "ServerT",
    "SubscriberT",
    "SubscriptionState",
    "SyncProducer",
    "Tag",
    "TestClient",
    "TestMessage",
    "Worker",
    "catch_all_routing_strategy",
    "default_retry_policy_factory",
    "default_serializer",
    "topic_routing_strategy",
    "__version__",
]

_LAZY = {
    "AmqpServer": ("repid.connections.amqp", "amqp"),
    "RedisServer": ("repid.connections.redis", "redis"),
    "PubsubServer": ("repid.connections.pubsub", "pubsub"),
    "RedisMessageBroker": ("repid.jobs.brokers.redis", "redis"),
    "RedisBucketBroker": ("repid.jobs.brokers.redis", "redis"),
    "RabbitMessageBroker": ("repid.jobs.brokers.rabbit", "amqp"),
}


def __getattr__(name: str) -> Any:
    # Broker client libraries (redis, grpc) load only when their broker is first used, so
    # `import repid` works with nothing but the core installed.
    if name in _LAZY:
        return load_lazy(globals(), "repid", name, _LAZY)
    # repid 2.x's names: renamed ones resolve, removed ones say what to use instead.
    return repid2_attribute(name)


# A library prints nothing unless the program configures logging (the logging HOWTO's advice):
# without this, Python's last-resort handler would write Repid's warnings to stderr.
_logging.getLogger("repid").addHandler(_logging.NullHandler())
