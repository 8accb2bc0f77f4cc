"""When a periodic job runs: `Every` (a fixed interval) and `Cron` (a cron expression).

Both name their ticks as Unix times in whole milliseconds, the same in every process, which is
what lets several schedulers agree on "the 12:05 tick" without talking to each other:

* `Every(period)`: the multiples of `period` since the Unix epoch (UTC), so
  `every=timedelta(hours=1)` ticks at the top of every UTC hour and `every=timedelta(days=1)`
  at 00:00 UTC. The period is at least one second.
* `Cron(expression, timezone)`: see `repid.jobs.cron` (the syntax, the time zone, DST).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from typing import Protocol, runtime_checkable

from repid.jobs.cron import CronSchedule

__all__ = ["Cron", "Every", "ScheduleT"]

_UTC = timezone.utc


@runtime_checkable
class ScheduleT(Protocol):
    """Ticks as Unix milliseconds."""

    @property
    def key(self) -> str:
        """A stable text naming the schedule (part of a periodic job's identity)."""
        ...

    def next_after(self, moment_ms: int) -> int:
        """The first tick strictly after `moment_ms`."""
        ...

    def latest_at_or_before(self, moment_ms: int) -> int | None:
        """The last tick at or before `moment_ms`, if any."""
        ...


class Every:
    """Ticks every `period`, at the multiples of it since the Unix epoch."""

    __slots__ = ("period", "period_ms")

    def __init__(self, period: timedelta | float) -> None:
        seconds = period.total_seconds() if isinstance(period, timedelta) else float(period)
        if not seconds >= 1:
            raise ValueError(f"`every` must be at least one second, got {period!r}")
        self.period = timedelta(seconds=seconds)
        self.period_ms = round(seconds * 1000)

    @property
    def key(self) -> str:
        return f"every {self.period_ms} ms"

    def next_after(self, moment_ms: int) -> int:
        return (moment_ms // self.period_ms + 1) * self.period_ms

    def latest_at_or_before(self, moment_ms: int) -> int | None:
        return moment_ms // self.period_ms * self.period_ms

    def __repr__(self) -> str:
        return f"Every({self.period!r})"


def _to_datetime(moment_ms: int) -> datetime:
    return datetime.fromtimestamp(moment_ms / 1000, _UTC)


def _to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


class Cron:
    """Ticks when the cron `expression` matches the wall clock of `timezone` (default UTC)."""

    __slots__ = ("schedule",)

    def __init__(self, expression: str, timezone: str | tzinfo | None = None) -> None:
        self.schedule = CronSchedule(expression, timezone)

    @property
    def key(self) -> str:
        return f"cron {self.schedule.expression.text} {self.schedule.timezone}"

    def next_after(self, moment_ms: int) -> int:
        return _to_ms(self.schedule.next_after(_to_datetime(moment_ms)))

    def latest_at_or_before(self, moment_ms: int) -> int | None:
        found = self.schedule.latest_at_or_before(_to_datetime(moment_ms))
        return None if found is None else _to_ms(found)

    def __repr__(self) -> str:
        return f"Cron({self.schedule.expression.text!r}, {str(self.schedule.timezone)!r})"
