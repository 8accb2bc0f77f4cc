"""The converter interface: from message bytes and headers to function arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from repid.connections.abc import BaseMessageT
from repid.dependencies.resolver import InputSpec

__all__ = ["ConverterFactoryT", "ConverterT"]


@runtime_checkable
class ConverterT(Protocol):
    """Parses one actor's inputs. Built once per actor from its merged `InputSpec`."""

    def convert_inputs(self, message: BaseMessageT) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return (payload values by field name, header values by header name).

        Only fields that are present (or have defaults the converter fills) appear. Raise an
        exception if the message does not fit: the actor body then never runs and the message
        gets the actor's `on_error` outcome.
        """
        ...

    def payload_schema(self) -> dict[str, Any] | None:
        """JSON Schema of the payload, for AsyncAPI documents."""
        ...

    def headers_schema(self) -> dict[str, Any] | None:
        """JSON Schema of the headers object, or None when no header is read."""
        ...


ConverterFactoryT = Callable[[InputSpec], ConverterT]
"""A converter class (or any callable) taking the actor's `InputSpec`."""
