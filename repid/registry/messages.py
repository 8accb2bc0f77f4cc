"""`app.messages`: named operations (logical actions bound to channels) for sending and docs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from repid.errors import OperationNotFoundError

__all__ = ["Channel", "MessageRegistry", "Operation"]


@dataclass(slots=True)
class Channel:
    """A channel (queue, topic or subscription) with its AsyncAPI metadata."""

    address: str
    title: str | None = None
    summary: str | None = None
    description: str | None = None
    messages: list[Any] | None = None
    parameters: dict[str, Any] | None = None
    tags: list[Any] | None = None
    external_docs: Any | None = None
    bindings: Any | None = None


@dataclass(slots=True)
class Operation:
    """A send operation: an id, the channel it publishes to and its AsyncAPI metadata."""

    operation_id: str
    channel: Channel
    title: str | None = None
    summary: str | None = None
    description: str | None = None
    messages: list[Any] | None = None
    security: list[Any] | None = None
    tags: list[Any] | None = None
    external_docs: Any | None = None
    bindings: Any | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class MessageRegistry:
    """Operations by id; `send_message(operation_id=...)` looks channels up here."""

    __slots__ = ("_operations",)

    def __init__(self) -> None:
        self._operations: dict[str, Operation] = {}

    def register_operation(
        self,
        operation_id: str,
        channel: str | Channel,
        *,
        title: str | None = None,
        summary: str | None = None,
        description: str | None = None,
        messages: Sequence[Any] | None = None,
        security: Sequence[Any] | None = None,
        tags: Sequence[Any] | None = None,
        external_docs: Any | None = None,
        bindings: Any | None = None,
    ) -> Operation:
        """Register `operation_id` as sending to `channel` (a name or a `Channel`)."""
        if not isinstance(operation_id, str) or not operation_id:
            raise ValueError("operation_id must be a non-empty string")
        if operation_id in self._operations:
            raise ValueError(f"operation {operation_id!r} is already registered")
        if isinstance(channel, str):
            if not channel:
                raise ValueError("channel must be a non-empty string")
            channel = Channel(address=channel)
        operation = Operation(
            operation_id=operation_id,
            channel=channel,
            title=title,
            summary=summary,
            description=description,
            messages=list(messages) if messages is not None else None,
            security=list(security) if security is not None else None,
            tags=list(tags) if tags is not None else None,
            external_docs=external_docs,
            bindings=bindings,
        )
        self._operations[operation_id] = operation
        return operation

    def get_operation(self, operation_id: str) -> Operation:
        """The operation registered as `operation_id`."""
        try:
            return self._operations[operation_id]
        except KeyError:
            known = ", ".join(repr(o) for o in self._operations) or "none"
            raise OperationNotFoundError(
                f"no operation {operation_id!r} is registered (registered: {known})"
            ) from None

    def __contains__(self, operation_id: object) -> bool:
        return operation_id in self._operations

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._operations.values())

    def __len__(self) -> int:
        return len(self._operations)
