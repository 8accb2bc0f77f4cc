"""Plain data records shared by producers, servers and the worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from repid.converters import ConverterFactoryT
    from repid.middlewares import ActorMiddlewareT
    from repid.routing import OnErrorT, RoutingStrategyFactoryT
    from repid.types import ConfirmationModeT

__all__ = ["ActorData", "MessageData"]


@dataclass(slots=True)
class MessageData:
    """A message on its way to a broker: the payload bytes and their metadata.

    Producer middlewares receive and may replace it before it is published. `reply_to` names
    the channel a reply should go to (the broker's own reply-to field; repid 2.x's
    `MessageData.reply_to`); a `reply_to` header does the same on every broker.
    """

    payload: bytes
    headers: dict[str, str] | None = None
    content_type: str | None = None
    reply_to: str | None = None


@dataclass(slots=True, eq=False)
class ActorData:
    """Everything the worker knows about one actor, after router defaults are applied.

    Actor middlewares receive it next to the message; `name` is the routing topic.
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
    retry_policy: Any | None = None
    """Job layer: the delay before retry N (`RetryPolicyT`); None means the default policy."""
