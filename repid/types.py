"""Type aliases shared across the package."""

from __future__ import annotations

from typing import Literal

__all__ = ["ConfirmationModeT", "OutcomeT"]

ConfirmationModeT = Literal["auto", "always_ack", "ack_first", "manual", "manual_explicit"]
"""When the worker settles a message; see `Router.actor`."""

OutcomeT = Literal["ack", "nack", "reject", "no_action"]
"""What to do with a message: the `on_error` policies and `manual_explicit` return values."""
