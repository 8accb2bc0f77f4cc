"""Job priorities."""

from __future__ import annotations

import enum

__all__ = ["PrioritiesT"]


class PrioritiesT(enum.IntEnum):
    """How urgent a job is. A higher value is more urgent (`HIGH > MEDIUM > LOW`).

    Brokers map the three levels to their own scale (see each message broker's docstring);
    brokers without priorities deliver in publishing order whatever the level.
    """

    LOW = 0
    MEDIUM = 1
    HIGH = 2
