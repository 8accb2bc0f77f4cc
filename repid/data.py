"""Plain data records shared by producers, servers and the worker.

`MessageData` is defined with the server interface (`repid.connections.abc`) and re-exported
here. `ActorData` is what the worker knows about one actor; it carries no job-layer fields:
options of layers above the message layer (the job layer's `retry_policy`) travel in its
`extensions` mapping, which the message layer stores and never reads.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from repid.connections.abc import MessageData, ReceivedMessageT

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from repid.converters.abc import ConverterFactoryT
    from repid.types import ConfirmationModeT, OnErrorT, RoutingStrategyFactoryT

__all__ = ["ActorCallT", "ActorData", "ActorMiddlewareT", "MessageData"]


@dataclass(slots=True, eq=False)
class ActorData:
    """Everything the worker knows about one actor, after router defaults are applied.

    Actor middlewares receive it next to the message; `name` is the routing topic.
    `extensions` holds options of higher layers by name (the job layer reads `retry_policy`
    there); it is empty for plain message-layer actors.
    """

    fn: Any
    name: str
    channel: str
    routing_strategy: RoutingStrategyFactoryT
    confirmation_mode: ConfirmationModeT
    on_error: OnErrorT
    timeout: float | None
    run_in_process: bool
    pool_executor: Executor | None
    converter: ConverterFactoryT
    middlewares: list[ActorMiddlewareT] = field(default_factory=list)
    title: str | None = None
    summary: str | None = None
    description: str | None = None
    deprecated: bool = False
    tags: list[Any] | None = None
    external_docs: Any | None = None
    bindings: Any | None = None
    messages: list[Any] | None = None
    security: list[Any] | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict)


ActorCallT = Callable[[ReceivedMessageT, ActorData], Coroutine[Any, Any, Any]]
"""The next step of an actor middleware chain: `await call_next(message, actor)`."""


class ActorMiddlewareT(Protocol):
    """`async def __call__(call_next, message, actor)`; see `repid.middlewares`."""

    def __call__(
        self,
        call_next: ActorCallT,
        message: ReceivedMessageT,
        actor: ActorData,
        /,
    ) -> Coroutine[Any, Any, Any]: ...
