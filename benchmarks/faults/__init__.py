"""Fault injection for the reliability harness (`benchmarks/reliability.py`) and its tests.

Each broker has a controller that starts a private instance (so that its faults hit nobody
else) and injects faults with the broker's own tools: `RedisBroker` (redis-server,
redis-cli), `RabbitBroker` (scripts/brokers.sh, rabbitmqctl in the node's chroot, the
management API), `PubsubBroker` (the emulator process, its REST API, raw gRPC). A
`PartitionProxy` in front of any of them cuts the network without closing sockets.
"""

from .proxy import PartitionMode, PartitionProxy, ProxyConnection
from .pubsub import PubsubBroker
from .rabbitmq import RabbitBroker
from .redis import RedisBroker

__all__ = [
    "PartitionMode",
    "PartitionProxy",
    "ProxyConnection",
    "PubsubBroker",
    "RabbitBroker",
    "RedisBroker",
]
