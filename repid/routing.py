"""Routers, actors and routing strategies.

A `Router` groups actors and carries defaults for them. Routers nest: a child router's actors
inherit every option the child does not set from its parents, and middlewares concatenate,
parent first. Options are resolved when the actors are collected (at worker start), so a router
can be included before or after its actors are declared.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from repid._compat import refuse
from repid.connections.abc import BaseMessageT
from repid.data import ActorData, ActorMiddlewareT
from repid.errors import ActorDeclarationError
from repid.types import (
    ConfirmationModeT,
    OnErrorT,
    RoutingStrategyFactoryT,
    RoutingStrategyT,
)

if TYPE_CHECKING:
    from repid.converters.abc import ConverterFactoryT

__all__ = [
    "OnErrorT",
    "Router",
    "RoutingStrategyFactoryT",
    "RoutingStrategyT",
    "catch_all_routing_strategy",
    "topic_routing_strategy",
]

FnT = TypeVar("FnT", bound=Callable[..., Any])

CONFIRMATION_MODES: frozenset[str] = frozenset(
    {"auto", "always_ack", "ack_first", "manual", "manual_explicit"}
)
OUTCOMES: frozenset[str] = frozenset({"ack", "nack", "reject", "no_action"})
DEFAULT_CHANNEL = "default"


def topic_routing_strategy(*, actor_name: str, **_: Any) -> RoutingStrategyT:
    """The default: take messages whose `topic` header equals the actor's name."""

    def strategy(message: BaseMessageT) -> bool:
        headers = message.headers
        return headers is not None and headers.get("topic") == actor_name

    return strategy


def catch_all_routing_strategy(**_: Any) -> RoutingStrategyT:
    """Take every message on the actor's channel, whatever its headers."""

    def strategy(message: BaseMessageT) -> bool:
        return True

    return strategy


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()

_OPTION_NAMES = (
    "channel",
    "routing_strategy",
    "confirmation_mode",
    "on_error",
    "timeout",
    "run_in_process",
    "pool_executor",
    "converter",
)


def _check_outcome(on_error: Any, where: str) -> None:
    if on_error is UNSET or callable(on_error):
        return
    if on_error not in OUTCOMES:
        raise ActorDeclarationError(
            f"{where}: on_error must be one of {sorted(OUTCOMES)} or a callable, got {on_error!r}"
        )


def _check_options(options: dict[str, Any], where: str) -> None:
    mode = options.get("confirmation_mode", UNSET)
    if mode is not UNSET and mode not in CONFIRMATION_MODES:
        raise ActorDeclarationError(
            f"{where}: confirmation_mode must be one of {sorted(CONFIRMATION_MODES)}, got {mode!r}"
        )
    on_error = options.get("on_error", UNSET)
    _check_outcome(on_error, where)
    if mode in ("always_ack", "ack_first") and on_error is not UNSET:
        raise ActorDeclarationError(
            f"{where}: on_error cannot be set with confirmation_mode={mode!r}, which already "
            "decides the outcome of errors"
        )
    timeout = options.get("timeout", UNSET)
    if (timeout is not UNSET and timeout is not None) and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise ActorDeclarationError(
            f"{where}: timeout must be a positive number of seconds or None, got {timeout!r}"
        )
    run_in_process = options.get("run_in_process", UNSET)
    executor = options.get("pool_executor", UNSET)
    if run_in_process is True and executor not in (UNSET, None):
        raise ActorDeclarationError(
            f"{where}: pool_executor and run_in_process=True cannot be combined; "
            "run_in_process uses Repid's process pool"
        )
    strategy = options.get("routing_strategy", UNSET)
    if strategy is not UNSET and not callable(strategy):
        raise ActorDeclarationError(f"{where}: routing_strategy must be a callable factory")
    channel = options.get("channel", UNSET)
    if (
        channel is not UNSET
        and channel is not None
        and (not isinstance(channel, str) or not channel)
    ):
        raise ActorDeclarationError(f"{where}: channel must be a non-empty string")


def _check_repid2_options(
    where: str,
    keep_alive: bool | float | None,
    correlation_id: Any | None = None,
    message_schema: Any | None = None,
) -> None:
    """repid 2.x's actor options: accept what means the same here, refuse the rest."""
    if keep_alive is False:
        refuse(
            where,
            "keep_alive=False",
            "every server keeps a running actor's message from being redelivered (Redis: "
            "keepalive_interval, Pub/Sub: ack_deadline, RabbitMQ: for as long as the link "
            "lives); remove keep_alive",
        )
    if correlation_id is not None or message_schema is not None:
        refuse(
            where,
            "correlation_id=" if correlation_id is not None else "message_schema=",
            "describe the message in the AsyncAPI document with messages=[{...}] (AsyncAPI "
            "Message Objects: name, title, summary, correlationId, examples, ...)",
        )


class _ActorDeclaration:
    __slots__ = ("extensions", "fn", "metadata", "middlewares", "name", "options")

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str,
        options: dict[str, Any],
        middlewares: list[ActorMiddlewareT],
        metadata: dict[str, Any],
        extensions: dict[str, Any],
    ) -> None:
        self.fn = fn
        self.name = name
        self.options = options
        self.middlewares = middlewares
        self.metadata = metadata
        self.extensions = extensions


class Router:
    """A group of actors with shared defaults.

    Every option of `Router.actor` except `name` can be given here as a default for the actors
    of this router and of the routers included into it.
    """

    def __init__(
        self,
        *,
        channel: str | None = UNSET,
        routing_strategy: RoutingStrategyFactoryT = UNSET,
        confirmation_mode: ConfirmationModeT = UNSET,
        on_error: OnErrorT = UNSET,
        timeout: float | None = UNSET,
        run_in_process: bool = UNSET,
        pool_executor: Executor | None = UNSET,
        converter: ConverterFactoryT = UNSET,
        middlewares: Sequence[ActorMiddlewareT] | None = None,
        keep_alive: bool | float | None = None,
    ) -> None:
        _check_repid2_options("Router", keep_alive)
        options = {
            "channel": channel,
            "routing_strategy": routing_strategy,
            "confirmation_mode": confirmation_mode,
            "on_error": on_error,
            "timeout": timeout,
            "run_in_process": run_in_process,
            "pool_executor": pool_executor,
            "converter": converter,
        }
        self._options = {k: v for k, v in options.items() if v is not UNSET}
        _check_options(self._options, "Router")
        self.middlewares: list[ActorMiddlewareT] = list(middlewares or ())
        self._declarations: list[_ActorDeclaration] = []
        self._children: list[Router] = []

    @overload
    def actor(self, fn: FnT, /) -> FnT: ...

    @overload
    def actor(
        self,
        fn: None = None,
        /,
        *,
        channel: str | None = ...,
        name: str | None = ...,
        routing_strategy: RoutingStrategyFactoryT = ...,
        confirmation_mode: ConfirmationModeT = ...,
        on_error: OnErrorT = ...,
        timeout: float | None = ...,
        run_in_process: bool = ...,
        pool_executor: Executor | None = ...,
        converter: ConverterFactoryT = ...,
        middlewares: Sequence[ActorMiddlewareT] | None = ...,
        title: str | None = ...,
        summary: str | None = ...,
        description: str | None = ...,
        deprecated: bool = ...,
        tags: Sequence[Any] | None = ...,
        external_docs: Any | None = ...,
        bindings: Any | None = ...,
        messages: Sequence[Any] | None = ...,
        security: Sequence[Any] | None = ...,
        queue: str | None = ...,
        retry_policy: Callable[..., float] | None = ...,
        keep_alive: bool | float | None = ...,
        correlation_id: Any | None = ...,
        message_schema: Any | None = ...,
    ) -> Callable[[FnT], FnT]: ...

    def actor(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        channel: str | None = UNSET,
        name: str | None = None,
        routing_strategy: RoutingStrategyFactoryT = UNSET,
        confirmation_mode: ConfirmationModeT = UNSET,
        on_error: OnErrorT = UNSET,
        timeout: float | None = UNSET,
        run_in_process: bool = UNSET,
        pool_executor: Executor | None = UNSET,
        converter: ConverterFactoryT = UNSET,
        middlewares: Sequence[ActorMiddlewareT] | None = None,
        title: str | None = None,
        summary: str | None = None,
        description: str | None = None,
        deprecated: bool = False,
        tags: Sequence[Any] | None = None,
        external_docs: Any | None = None,
        bindings: Any | None = None,
        messages: Sequence[Any] | None = None,
        security: Sequence[Any] | None = None,
        queue: str | None = None,
        retry_policy: Callable[..., float] | None = None,
        keep_alive: bool | float | None = None,
        correlation_id: Any | None = None,
        message_schema: Any | None = None,
    ) -> Any:
        """Declare `fn` as an actor; returns `fn` unchanged. Usable bare or with options.

        - `channel`: the queue/topic/subscription the actor listens on (default "default").
        - `name`: the routing topic (default: the function's name).
        - `routing_strategy`: a factory like `topic_routing_strategy` (the default) or
          `catch_all_routing_strategy`.
        - `confirmation_mode`: "auto" (default), "always_ack", "ack_first", "manual",
          "manual_explicit".
        - `on_error`: "nack" (default in auto mode), "reject", "ack", "no_action" (default in
          manual modes) or a callable taking the exception and returning one of those. Not
          allowed with "always_ack" and "ack_first".
        - `timeout`: seconds before the actor is cancelled and its message rejected.
        - `run_in_process`: run a sync actor in a process pool; `pool_executor`: run a sync
          actor in this executor instead of the default thread pool (not both).
        - `converter`: the converter class (default `DefaultConverter`).
        - `middlewares`: actor middlewares for this actor only, inside the routers' ones.
        - `title`, `summary`, `description`, `deprecated`, `tags`, `external_docs`,
          `bindings`, `messages`, `security`: AsyncAPI metadata of the receive operation.
        - `queue` (job layer): the queue name, another word for `channel`.
        - `retry_policy` (job layer): `retry_number -> delay in seconds` for failed jobs.
        - `keep_alive` (repid 2.x): every built-in server keeps a running actor's message
          from being redelivered (at the server's own interval), so True, None and an interval
          are accepted; False and 2.x's `correlation_id` / `message_schema` raise
          `ConfigurationError` saying what to use.
        """
        _check_repid2_options("Router.actor", keep_alive, correlation_id, message_schema)
        if queue is not None:
            if channel is not UNSET and channel is not None and channel != queue:
                raise ActorDeclarationError(
                    f"queue={queue!r} and channel={channel!r} name two places; pass one of them"
                )
            channel = queue
        if retry_policy is not None and not callable(retry_policy):
            raise ActorDeclarationError("retry_policy must be a callable")
        options = {
            "channel": channel,
            "routing_strategy": routing_strategy,
            "confirmation_mode": confirmation_mode,
            "on_error": on_error,
            "timeout": timeout,
            "run_in_process": run_in_process,
            "pool_executor": pool_executor,
            "converter": converter,
        }
        explicit = {k: v for k, v in options.items() if v is not UNSET}
        metadata = {
            "title": title,
            "summary": summary,
            "description": description,
            "deprecated": deprecated,
            "tags": list(tags) if tags is not None else None,
            "external_docs": external_docs,
            "bindings": bindings,
            "messages": list(messages) if messages is not None else None,
            "security": list(security) if security is not None else None,
        }
        # Job-layer options travel opaquely in the extension slot (see `ActorData`).
        extensions = {"retry_policy": retry_policy} if retry_policy is not None else {}

        def decorator(func: FnT) -> FnT:
            if not callable(func):
                raise ActorDeclarationError(f"@actor needs a function, got {func!r}")
            actor_name = name or getattr(func, "__name__", None)
            if not actor_name:
                raise ActorDeclarationError(f"cannot infer an actor name for {func!r}; pass name=")
            where = f"actor {actor_name!r}"
            if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
                raise ActorDeclarationError(
                    f"{where}: generator functions cannot be actors (their body would never run); "
                    "return a value instead of yielding"
                )
            _check_options(explicit, where)
            if explicit.get("run_in_process") is True and _is_async(func):
                raise ActorDeclarationError(
                    f"{where}: run_in_process=True needs a sync function; async actors run on "
                    "the event loop"
                )
            self._declarations.append(
                _ActorDeclaration(
                    func, actor_name, explicit, list(middlewares or ()), metadata, extensions
                )
            )
            return func

        if fn is not None:
            return decorator(fn)
        return decorator

    def include_router(self, router: Router) -> None:
        """Add `router`'s actors (and its nested routers') under this router's defaults."""
        if router is self:
            raise ValueError("a router cannot include itself")
        if self in router.iter_routers():
            raise ValueError("including this router would create a cycle")
        self._children.append(router)

    def iter_routers(self) -> list[Router]:
        """This router and every router included into it, depth first."""
        found: list[Router] = [self]
        for child in self._children:
            found.extend(child.iter_routers())
        return found

    def collect_actors(
        self,
        inherited: dict[str, Any] | None = None,
        inherited_middlewares: Sequence[ActorMiddlewareT] = (),
    ) -> list[ActorData]:
        """All actors of this router tree in registration order, with defaults resolved."""
        effective = {**(inherited or {}), **self._options}
        middlewares = [*inherited_middlewares, *self.middlewares]
        actors: list[ActorData] = []
        for declaration in self._declarations:
            actors.append(_resolve(declaration, effective, middlewares))
        for child in self._children:
            actors.extend(child.collect_actors(effective, middlewares))
        return actors

    @property
    def actors(self) -> list[ActorData]:
        """The resolved actors of this router and its nested routers."""
        return self.collect_actors()


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )


def _resolve(
    declaration: _ActorDeclaration,
    defaults: dict[str, Any],
    router_middlewares: Sequence[ActorMiddlewareT],
) -> ActorData:
    from repid.converters.default import DefaultConverter

    options = {**defaults, **declaration.options}
    where = f"actor {declaration.name!r}"
    mode: str = options.get("confirmation_mode", "auto")
    if mode in ("always_ack", "ack_first"):
        if "on_error" in declaration.options:
            raise ActorDeclarationError(f"{where}: on_error cannot be set with {mode!r}")
        # The mode decides the outcome; an on_error inherited from a router does not apply.
        on_error: OnErrorT = "ack" if mode == "always_ack" else "no_action"
    elif "on_error" in options:
        on_error = options["on_error"]
    else:
        on_error = "nack" if mode == "auto" else "no_action"
    run_in_process = bool(options.get("run_in_process", False))
    pool_executor = options.get("pool_executor")
    if run_in_process and pool_executor is not None:
        raise ActorDeclarationError(
            f"{where}: pool_executor and run_in_process=True cannot be combined (one of them "
            "comes from a router default)"
        )
    if run_in_process and _is_async(declaration.fn):
        raise ActorDeclarationError(f"{where}: run_in_process=True needs a sync function")
    channel = options.get("channel") or DEFAULT_CHANNEL
    return ActorData(
        fn=declaration.fn,
        name=declaration.name,
        channel=channel,
        routing_strategy=options.get("routing_strategy", topic_routing_strategy),
        confirmation_mode=mode,  # type: ignore[arg-type]
        on_error=on_error,
        timeout=options.get("timeout"),
        run_in_process=run_in_process,
        pool_executor=pool_executor,
        converter=options.get("converter", DefaultConverter),
        middlewares=[*router_middlewares, *declaration.middlewares],
        extensions=declaration.extensions,
        **declaration.metadata,
    )


def outcome_literal(value: Any) -> Literal["ack", "nack", "reject", "no_action"] | None:
    """`value` if it is one of the outcome words, else None."""
    if isinstance(value, str) and value in OUTCOMES:
        return value  # type: ignore[return-value]
    return None
