"""Standard five-field cron expressions, evaluated in a time zone.

    minute  hour  day-of-month  month  day-of-week
    0-59    0-23  1-31          1-12   0-7 (0 and 7 are Sunday)
                                JAN-DEC SUN-SAT

Each field is a comma-separated list of items; an item is `*`, a value `5`, a range `1-5`, or
one of those with a step: `*/15`, `1-30/2`, `5/10` (= `5-59/10`: from 5 to the field's end).
Month and weekday names (three letters, any case) work wherever numbers do (`MON-FRI`,
`JAN,JUL`). The macros `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`)
and `@hourly` stand for their usual expressions.

Days: as in Vixie cron, when both day-of-month and day-of-week are restricted (neither field
starts with `*`), a day matches if EITHER matches (`0 0 1,15 * MON`: the 1st, the 15th and
every Monday); when either starts with `*`, both must match.

Time zones and daylight saving time (`CronSchedule`): the expression is matched against the
wall clock of its zone (a `zoneinfo` name, UTC by default), with the rules of Vixie cron:

* an expression that fires in every hour (hour field `*`) follows the wall clock as it is: a
  wall time skipped when clocks go forward does not happen, and one repeated when they go
  back happens twice (so `*/15 * * * *` keeps firing every 15 minutes of real time);
* an expression with specific hours (`30 2 * * *`) fires once per matching wall time: one
  skipped by the change fires at the instant of the change (02:30 on the night clocks jump
  from 02:00 to 03:00 fires at 03:00), one repeated by it fires at its first occurrence only.

Ticks are whole minutes. `CronSchedule.next_after(t)` is the first tick strictly after `t`,
returned as an aware UTC `datetime` (instants compare unambiguously in UTC; a local aware
datetime would compare by wall time within its own zone).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from repid.errors import RepidError

__all__ = ["CronExpression", "CronSchedule", "CronSyntaxError", "resolve_timezone"]

UTC = timezone.utc

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
_WEEKDAYS = {
    name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
}

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# (name, lowest, highest, names) of the five fields, in order.
_FIELDS: tuple[tuple[str, int, int, dict[str, int] | None], ...] = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),
)

# Days in each month in a leap year: a (month, day) pair that never exists (February 30)
# cannot match.
_LONGEST_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_SEARCH_YEARS = 30  # a valid expression matches within 28 years (the weekday/leap-year cycle)


class CronSyntaxError(RepidError, ValueError):
    """A cron expression that cannot be parsed (or can never match); the message says where."""


def resolve_timezone(zone: str | tzinfo | None) -> tzinfo:
    """A `tzinfo` for `zone`: a `zoneinfo` name (`"Europe/Berlin"`), a `tzinfo`, or None (UTC).

    An unknown name raises `ValueError`. (Windows has no system time-zone database:
    `pip install tzdata` there.)
    """
    if zone is None:
        return UTC
    if isinstance(zone, tzinfo):
        return zone
    if not isinstance(zone, str) or not zone:
        raise ValueError(f"a time zone must be a zoneinfo name or a tzinfo, got {zone!r}")
    if zone.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {zone!r}: use an IANA name such as 'Europe/Berlin' "
            "(on Windows, `pip install tzdata` first)"
        ) from None


def _value(text: str, field: str, low: int, high: int, names: dict[str, int] | None) -> int:
    if names is not None and text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        hint = " (or a three-letter name)" if names is not None else ""
        raise CronSyntaxError(f"{field}: {text!r} is not a number{hint}")
    number = int(text)
    if not low <= number <= high:
        raise CronSyntaxError(f"{field}: {number} is outside {low}-{high}")
    return number


def _parse_field(text: str, index: int) -> tuple[frozenset[int], bool]:
    """The values of field `index` and whether it starts with `*` (unrestricted, for days)."""
    field, low, high, names = _FIELDS[index]
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronSyntaxError(f"{field}: empty item in {text!r}")
        span, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronSyntaxError(f"{field}: the step in {item!r} must be a positive number")
            step = int(step_text)
        # `*` and `N/step` stop at Saturday (6): 7 is only another name for Sunday.
        open_end = 6 if index == 4 else high
        if span == "*":
            start, end = low, open_end
        elif "-" in span:
            first, _, last = span.partition("-")
            start = _value(first, field, low, high, names)
            end = _value(last, field, low, high, names)
            if end < start:
                raise CronSyntaxError(f"{field}: the range {span!r} ends before it starts")
        else:
            start = _value(span, field, low, high, names)
            # `5/10` runs from 5 to the field's end; a plain value is itself.
            end = open_end if slash else start
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:  # 7 is Sunday too
        values.discard(7)
        values.add(0)
    return frozenset(values), text.startswith("*")


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A parsed five-field cron expression (see the module docstring for the syntax).

    `minutes`, `hours`, `days`, `months` and `weekdays` (0 = Sunday ... 6 = Saturday) are the
    values each field allows; `days_or` says that a day matches when its day of month OR its
    weekday does (both day fields restricted), rather than both.
    """

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_or: bool

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Parse `text`; raise `CronSyntaxError` naming the field at fault."""
        if not isinstance(text, str):
            raise CronSyntaxError(f"a cron expression must be a string, got {text!r}")
        source = text.strip()
        expanded = _MACROS.get(source.lower(), source)
        if expanded.startswith("@"):
            raise CronSyntaxError(
                f"unknown macro {source!r}: use one of {', '.join(sorted(_MACROS))}"
            )
        parts = expanded.split()
        if len(parts) != 5:
            raise CronSyntaxError(
                f"{source!r} has {len(parts)} field(s); a cron expression has five: "
                "minute hour day-of-month month day-of-week"
            )
        parsed = [_parse_field(part, index) for index, part in enumerate(parts)]
        (minutes, _), (hours, _), (days, dom_star), (months, _), (weekdays, dow_star) = parsed
        expression = cls(
            text=source,
            minutes=minutes,
            hours=hours,
            days=days,
            months=months,
            weekdays=weekdays,
            days_or=not (dom_star or dow_star),
        )
        if not expression.days_or and not any(
            day <= _LONGEST_MONTH[month - 1] for month in months for day in days
        ):
            raise CronSyntaxError(f"{source!r} never matches: no month has such a day")
        return expression

    @property
    def every_hour(self) -> bool:
        """The expression fires in every hour of a matching day (its hour field is all 24)."""
        return len(self.hours) == 24

    def matches_day(self, day: date) -> bool:
        """Whether `day` (a calendar date) is one the expression fires on."""
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = (day.isoweekday() % 7) in self.weekdays
        return (in_days or in_weekdays) if self.days_or else (in_days and in_weekdays)

    def matches(self, wall: datetime) -> bool:
        """Whether the wall-clock time `wall` (its fields as they read; seconds ignored) fires."""
        return wall.minute in self.minutes and wall.hour in self.hours and self.matches_day(wall)

    def __str__(self) -> str:
        return self.text


def _sorted(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted(values))


class CronSchedule:
    """A `CronExpression` in a time zone: when it fires (see the module docstring for DST).

    CronSchedule("*/5 * * * *", "Europe/Berlin").next_after(datetime.now(timezone.utc))
    """

    __slots__ = ("_change_days", "_day_minutes", "expression", "timezone")

    def __init__(self, expression: str | CronExpression, zone: str | tzinfo | None = None) -> None:
        self.expression = (
            expression
            if isinstance(expression, CronExpression)
            else CronExpression.parse(expression)
        )
        self.timezone = resolve_timezone(zone)
        # Minutes of a day (hour * 60 + minute) the expression fires at, in order.
        self._day_minutes = _sorted(
            h * 60 + m for h in self.expression.hours for m in self.expression.minutes
        )
        self._change_days: dict[date, tuple[datetime, ...]] = {}

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression.text!r}, {str(self.timezone)!r})"

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after `moment` (an aware datetime), in UTC."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"next_after needs an aware datetime, got naive {moment!r}")
        after = moment.astimezone(UTC)
        day = after.astimezone(self.timezone).date()
        # A tick of the day before can still lie ahead when clocks went back across midnight.
        day -= timedelta(days=1)
        limit = day + timedelta(days=366 * _SEARCH_YEARS) if day.year < 9000 else date.max
        expression = self.expression
        while day < limit:
            if day.month not in expression.months:
                # Jump to the first day of the next month.
                day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
                continue
            if expression.matches_day(day):
                found = self._first_tick_on(day, after)
                if found is not None:
                    return found
            day += timedelta(days=1)
        raise ValueError(f"{expression.text!r} has no tick after {moment.isoformat()}")

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last tick at or before `moment` (UTC), or None if there is none in 30 years."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"latest_at_or_before needs an aware datetime, got {moment!r}")
        moment = moment.astimezone(UTC)
        day = moment.astimezone(self.timezone).date()
        # A tick of the day after can lie behind when clocks went back across midnight.
        day += timedelta(days=1)
        limit = day - timedelta(days=366 * _SEARCH_YEARS) if day.year > 1000 else date.min
        expression = self.expression
        while day > limit:
            if day.month not in expression.months:
                day = day.replace(day=1) - timedelta(days=1)  # the last day of the month before
                continue
            if expression.matches_day(day):
                found = self._last_tick_on(day, moment)
                if found is not None:
                    return found
            day -= timedelta(days=1)
        return None

    # -- one local day ---------------------------------------------------------------------

    def _day_offset(self, midnight: datetime) -> timedelta | None:
        """The zone's one UTC offset on the local day starting at `midnight` (naive), or None
        when the clocks change that day."""
        zone = self.timezone
        probes = (midnight, midnight.replace(hour=12), midnight.replace(hour=23, minute=59))
        offsets = {
            probe.replace(tzinfo=zone, fold=fold).utcoffset() for probe in probes for fold in (0, 1)
        }
        return offsets.pop() if len(offsets) == 1 else None

    def _first_tick_on(self, day: date, after: datetime) -> datetime | None:
        """The earliest tick of local calendar day `day` strictly after `after` (UTC)."""
        midnight = datetime(day.year, day.month, day.day)
        offset = self._day_offset(midnight)
        if offset is None:
            found = self._change_day(midnight)
            index = bisect.bisect_right(found, after)
            return found[index] if index < len(found) else None
        threshold = after.replace(tzinfo=None) + offset  # `after` as this zone's wall time
        minutes = self._day_minutes
        if threshold.date() < day:
            index = 0
        elif threshold.date() > day:
            return None
        else:
            # The first minute M with wall time M:00 > threshold.
            index = bisect.bisect_right(minutes, int((threshold - midnight).total_seconds() // 60))
        if index >= len(minutes):
            return None
        return (midnight + timedelta(minutes=minutes[index]) - offset).replace(tzinfo=UTC)

    def _last_tick_on(self, day: date, moment: datetime) -> datetime | None:
        """The latest tick of local calendar day `day` at or before `moment` (UTC)."""
        midnight = datetime(day.year, day.month, day.day)
        offset = self._day_offset(midnight)
        if offset is None:
            found = self._change_day(midnight)
            index = bisect.bisect_right(found, moment) - 1
            return found[index] if index >= 0 else None
        threshold = moment.replace(tzinfo=None) + offset
        minutes = self._day_minutes
        if threshold.date() > day:
            index = len(minutes) - 1
        elif threshold.date() < day:
            return None
        else:
            # The last minute M with wall time M:00 <= threshold.
            seconds = (threshold - midnight).total_seconds()
            index = bisect.bisect_right(minutes, int(seconds // 60)) - 1
        if index < 0:
            return None
        return (midnight + timedelta(minutes=minutes[index]) - offset).replace(tzinfo=UTC)

    def _change_day(self, midnight: datetime) -> tuple[datetime, ...]:
        """The ticks (UTC, in order) of a local day with a clock change: worked out minute by
        minute once, then kept (such days are few)."""
        day = midnight.date()
        found = self._change_days.get(day)
        if found is None:
            found = self._change_day_ticks(midnight)
            if len(self._change_days) >= 32:
                self._change_days.clear()
            self._change_days[day] = found
        return found

    def _change_day_ticks(self, midnight: datetime) -> tuple[datetime, ...]:
        zone = self.timezone
        every_hour = self.expression.every_hour
        ticks: set[datetime] = set()
        for minute in self._day_minutes:
            wall = midnight + timedelta(minutes=minute)
            first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
            second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
            if first == second:
                ticks.add(first)
            elif first.astimezone(zone).replace(tzinfo=None) == wall:
                # Repeated wall time (clocks went back): the first occurrence always; the
                # second too for expressions that fire every hour.
                ticks.add(first)
                if every_hour:
                    ticks.add(second)
            elif not every_hour:
                # Skipped wall time (clocks went forward): at the change, for specific hours.
                ticks.add(_change_instant(zone, second, first))
        return tuple(sorted(ticks))


def _change_instant(zone: tzinfo, before: datetime, after: datetime) -> datetime:
    """The instant in (`before`, `after`] (UTC) at which `zone`'s offset changes."""
    old = before.astimezone(zone).utcoffset()
    low, high = before, after
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            break
        if middle.astimezone(zone).utcoffset() == old:
            low = middle
        else:
            high = middle
    return high
