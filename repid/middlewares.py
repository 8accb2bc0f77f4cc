"""Actor and producer middlewares: onion-style wrappers around processing and publishing.

An actor middleware is `async def mw(call_next, message, actor) -> result`; a producer
middleware is `async def mw(call_next, channel, message_data, server_specific_parameters)`.
Each must call `call_next(...)` to continue the chain (or not, to short-circuit). The first
middleware in a list wraps all the others: it runs first and finishes last. Chains are composed
once, when a worker or app starts, not per message.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from repid.connections.abc import MessageData, ReceivedMessageT
from repid.data import ActorCallT, ActorData, ActorMiddlewareT

__all__ = [
    "ActorCallT",
    "ActorMiddlewareT",
    "ProducerCallT",
    "ProducerMiddlewareT",
    "compose_actor_middlewares",
    "compose_producer_middlewares",
]

ProducerCallT = Callable[[str, MessageData, "dict[str, Any] | None"], Coroutine[Any, Any, Any]]


class ProducerMiddlewareT(Protocol):
    """`async def __call__(call_next, channel, message, server_specific_parameters)`."""

    def __call__(
        self,
        call_next: ProducerCallT,
        channel: str,
        message: MessageData,
        server_specific_parameters: dict[str, Any] | None,
        /,
    ) -> Coroutine[Any, Any, Any]: ...


def compose_actor_middlewares(
    middlewares: Sequence[ActorMiddlewareT], endpoint: ActorCallT
) -> ActorCallT:
    """Wrap `endpoint` so that `middlewares[0]` is outermost."""
    call = endpoint
    for middleware in reversed(middlewares):
        call = _bind_actor(middleware, call)
    return call


def _bind_actor(middleware: ActorMiddlewareT, call_next: ActorCallT) -> ActorCallT:
    async def call(message: ReceivedMessageT, actor: ActorData) -> Any:
        return await middleware(call_next, message, actor)

    return call


def compose_producer_middlewares(
    middlewares: Sequence[ProducerMiddlewareT], endpoint: ProducerCallT
) -> ProducerCallT:
    """Wrap `endpoint` so that `middlewares[0]` is outermost."""
    call = endpoint
    for middleware in reversed(middlewares):
        call = _bind_producer(middleware, call)
    return call


def _bind_producer(middleware: ProducerMiddlewareT, call_next: ProducerCallT) -> ProducerCallT:
    async def call(
        channel: str, message: MessageData, server_specific_parameters: dict[str, Any] | None
    ) -> Any:
        return await middleware(call_next, channel, message, server_specific_parameters)

    return call
