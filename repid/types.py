"""Type aliases shared across the package."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from repid.connections.abc import BaseMessageT

__all__ = [
    "ConfirmationModeT",
    "OnErrorT",
    "OutcomeT",
    "RoutingStrategyFactoryT",
    "RoutingStrategyT",
]

ConfirmationModeT = Literal["auto", "always_ack", "ack_first", "manual", "manual_explicit"]
"""When the worker settles a message; see `Router.actor`."""

OutcomeT = Literal["ack", "nack", "reject", "no_action"]
"""What to do with a message: the `on_error` policies and `manual_explicit` return values."""

OnErrorT = OutcomeT | Callable[[Exception], OutcomeT]
"""What happens to a message when its actor raises (or its payload does not parse)."""

RoutingStrategyT = Callable[[BaseMessageT], bool]
"""Decides whether an actor takes a message."""

RoutingStrategyFactoryT = Callable[..., RoutingStrategyT]
"""Called once per actor as `factory(actor_name=..., channel=...)`; returns the strategy."""
