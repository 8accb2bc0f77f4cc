"""repid 2.x's names accepted beside ours: the helpers every constructor uses, and the table of
2.x's top-level names (`repid.X`).

A 2.x name either means what one of our names means (possibly in other units: `block_ms` is
our `block` in milliseconds) and is converted by `renamed`, or it is refused by `refuse` with
an error that says what to use instead. Giving both a name and its 2.x spelling is an error
too, so no value is silently ignored. The table of every 2.x name and what it became is in
docs/migration/from-repid-2.md.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any, Literal, NoReturn, TypeVar

from repid.errors import ConfigurationError, RemovedNameError

__all__ = [
    "UNSET",
    "AutoActionT",
    "OnErrorAutoT",
    "refuse",
    "renamed",
    "repid2_attribute",
]

T = TypeVar("T")
U = TypeVar("U")


class _Unset:
    """The default of a 2.x keyword: tells "not given" apart from an explicit None."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()
"""Default of every 2.x keyword (typed Any so that it fits any annotation)."""


def renamed(
    owner: str,
    name: str,
    value: T,
    old_name: str,
    old_value: U,
    convert: Callable[[U], T] | None = None,
) -> T:
    """`value`, or else the 2.x keyword `old_name`'s `old_value` passed through `convert`.

    `value` counts as given unless it is `UNSET`; `old_value` likewise. Both given raises
    `ConfigurationError`.
    """
    if old_value is UNSET:
        return value
    if value is not UNSET:
        raise ConfigurationError(
            f"{owner} got both {name}= and {old_name}= (its repid 2.x name); pass only {name}="
        )
    if convert is None:
        return old_value  # type: ignore[return-value]
    return convert(old_value)


def refuse(owner: str, old_name: str, instead: str) -> NoReturn:
    """Raise the error for a repid 2.x keyword (`old_name`, e.g. `"name="`) with no equivalent."""
    raise ConfigurationError(f"{owner} does not take {old_name} (a repid 2.x option): {instead}")


# -- repid 2.x's top-level names ---------------------------------------------------------------

AutoActionT = Literal["ack", "nack", "reject"]
"""repid 2.x: the outcomes an auto-confirmed actor's `on_error` may choose."""

OnErrorAutoT = AutoActionT | Callable[[Exception], AutoActionT]
"""repid 2.x: `on_error` of an auto-confirmed actor (a subset of `repid.routing.OnErrorT`)."""

_RENAMED_NAMES: dict[str, tuple[str, str]] = {
    "topic_based_routing_strategy": ("repid.routing", "topic_routing_strategy"),
    "SerializerT": ("repid.serializers", "SerializerT"),
    "OnErrorT": ("repid.routing", "OnErrorT"),
    "OnErrorManualT": ("repid.routing", "OnErrorT"),
    "ManualActionT": ("repid.types", "OutcomeT"),
    "AutoActionT": ("repid._compat", "AutoActionT"),
    "OnErrorAutoT": ("repid._compat", "OnErrorAutoT"),
    "SentMessageT": ("repid.data", "MessageData"),
    "AsyncAPIServer": ("repid.asyncapi.server", "AsyncAPIServer"),
}

_MESSAGE_METADATA = (
    "describe a message in the AsyncAPI document with messages=[{...}] (AsyncAPI Message "
    "Objects: name, title, payload, correlationId, examples, ...) on Router.actor, Operation "
    "or Channel"
)
_CONVERTERS = (
    "a converter implements repid.converters.abc.ConverterT (convert_inputs(message), "
    "payload_schema(), headers_schema()) and is made from an InputSpec"
)
_HEALTH = (
    "the worker serves health checks: app.run_worker(health_check_server="
    "HealthCheckServerSettings(...)) answers /healthz, /livez and /readyz with 200 or 503"
)
_REFUSED_NAMES: dict[str, str] = {
    "CapabilitiesT": "use ServerCapabilities, a dataclass: server.capabilities.dead_letter, ...",
    "HealthCheckServer": _HEALTH,
    "HealthCheckStatus": _HEALTH,
    "AsyncAPIGenerator": "call app.generate_asyncapi_schema() (or app.asyncapi_server())",
    "ActorExecutionContext": _CONVERTERS,
    "ConverterInputSchema": _CONVERTERS,
    "ActorMessageMetadata": _MESSAGE_METADATA,
    "MessageExample": _MESSAGE_METADATA,
    "MessageSchema": _MESSAGE_METADATA,
    "CorrelationId": _MESSAGE_METADATA,
    "SendOperation": "declare it with app.messages (see Operation and Channel)",
}


def repid2_attribute(name: str) -> Any:
    """repid 2.x's top-level `name` (`repid.X`), for the `repid` package's `__getattr__`.

    A renamed one is returned (it is the same thing under its new name); one with no
    equivalent raises `RemovedNameError` saying what to use; anything else AttributeError.
    """
    if name == "logger":
        return logging.getLogger("repid")
    target = _RENAMED_NAMES.get(name)
    if target is not None:
        return getattr(importlib.import_module(target[0]), target[1])
    hint = _REFUSED_NAMES.get(name)
    if hint is not None:
        raise RemovedNameError(f"repid.{name} (repid 2.x) has no equivalent: {hint}")
    raise AttributeError(f"module 'repid' has no attribute {name!r}")
