"""Retry policies: how long to wait before retrying a failed job."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["RetryPolicyT", "default_retry_policy_factory"]

RetryPolicyT = Callable[..., float]
"""`policy(retry_number: int = 1) -> float`: seconds to wait before retry `retry_number`.

`retry_number` is 1 for the first retry (after the first failed attempt), 2 for the second...
Any callable of that shape works, e.g. `lambda retry_number=1: retry_number * 100`.
"""


def default_retry_policy_factory(
    min_backoff: float = 1,
    max_backoff: float = 86400,
    multiplier: float = 1,
    max_exponent: int = 64,
) -> RetryPolicyT:
    """An exponential backoff policy.

    The delay before retry `n` (1-based) is
    `min(max_backoff, max(min_backoff, min_backoff * multiplier * 2 ** min(n - 1, max_exponent)))`
    seconds: with the defaults 1 s, 2 s, 4 s, ... capped at one day. `max_exponent` bounds the
    exponent so that large retry numbers cannot overflow.
    """
    if min_backoff < 0 or max_backoff < 0:
        raise ValueError("min_backoff and max_backoff must not be negative")
    if max_backoff < min_backoff:
        raise ValueError(f"max_backoff ({max_backoff}) is smaller than min_backoff ({min_backoff})")
    if multiplier <= 0:
        raise ValueError("multiplier must be positive")
    if max_exponent < 0:
        raise ValueError("max_exponent must not be negative")

    def policy(retry_number: int = 1) -> float:
        exponent = min(max(retry_number - 1, 0), max_exponent)
        delay = min_backoff * multiplier * (2**exponent)
        return float(min(max_backoff, max(min_backoff, delay)))

    return policy
