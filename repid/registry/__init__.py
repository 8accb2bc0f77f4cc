"""The app's registries: servers by name and operations by id."""

from repid.registry.messages import Channel, MessageRegistry, Operation
from repid.registry.servers import ServerRegistry

__all__ = ["Channel", "MessageRegistry", "Operation", "ServerRegistry"]
