"""Exponential backoff with jitter, for every reconnect and retry loop of the built-in servers.

The n-th delay (counting from 0) is drawn uniformly from `[ceiling * (1 - jitter), ceiling]`
with `ceiling = min(cap, base * 2**n)`: `jitter=0.5` (the default) keeps every wait at least
half its ceiling, so many clients that lost one broker spread their reconnects without any of
them spinning; `jitter=1.0` is "full jitter". With `spread=s` the delay is drawn from
`ceiling * [1 - s, 1 + s]` instead (repid 2.x's `reconnect_jitter_factor`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

__all__ = ["Backoff", "backoff_delays"]


class Backoff:
    """A backoff sequence: `next()` gives the next delay, `reset()` starts over after a success."""

    __slots__ = ("_attempt", "_uniform", "base", "cap", "jitter", "spread")

    def __init__(
        self,
        base: float = 0.2,
        cap: float = 5.0,
        *,
        jitter: float = 0.5,
        spread: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"backoff needs 0 < base <= cap, got base={base!r}, cap={cap!r}")
        if not 0.0 <= jitter <= 1.0:
            raise ValueError(f"jitter must be within 0..1, got {jitter!r}")
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self.spread = spread
        self._attempt = 0
        self._uniform = (rng or random.Random()).uniform

    @property
    def attempt(self) -> int:
        """How many delays were drawn since the last `reset()`."""
        return self._attempt

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self.cap, self.base * float(2 ** min(self._attempt, 30)))

    def next(self) -> float:
        ceiling = self.ceiling()
        self._attempt += 1
        spread = self.spread
        if spread is not None:
            around: float = ceiling * self._uniform(1.0 - spread, 1.0 + spread)
            return around
        delay: float = self._uniform(ceiling * (1.0 - self.jitter), ceiling)
        return delay

    def reset(self) -> None:
        self._attempt = 0

    def __iter__(self) -> Iterator[float]:
        while True:
            yield self.next()


def backoff_delays(
    base: float = 0.2, cap: float = 5.0, *, rng: random.Random | None = None
) -> Iterator[float]:
    """Endless delays of `Backoff(base, cap)` (for `for delay in backoff_delays(): ...` loops)."""
    return iter(Backoff(base, cap, rng=rng))
