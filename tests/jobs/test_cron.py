"""The cron parser and `CronSchedule.next_after`, against a brute-force minute-by-minute
reference (hypothesis), with daylight-saving changes in zones with 1 h, 30 min and midnight
shifts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from repid.jobs.cron import CronExpression, CronSchedule, CronSyntaxError

UTC = timezone.utc
MINUTE = timedelta(minutes=1)

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/Sao_Paulo",  # DST changes at midnight (until 2019): some days start at 01:00
    "Pacific/Chatham",  # +12:45 / +13:45
    "Asia/Kolkata",  # no DST, half-hour offset
]

FIELD_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


# -- the reference ------------------------------------------------------------------------


def reference_next(
    expression: CronExpression, zone: ZoneInfo | timezone, after: datetime, horizon: int
) -> datetime | None:
    """The module docstring's rules, minute by minute over UTC instants (None: no tick within
    `horizon` minutes)."""
    t = after.astimezone(UTC).replace(second=0, microsecond=0) + MINUTE
    previous_wall = (t - MINUTE).astimezone(zone).replace(tzinfo=None)
    for _ in range(horizon):
        local = t.astimezone(zone)
        wall = local.replace(tzinfo=None)
        tick = expression.matches(wall) and (expression.every_hour or local.fold == 0)
        if not tick and not expression.every_hour and wall > previous_wall + MINUTE:
            # Clocks jumped forward: the skipped wall minutes fire now, at the change.
            skipped = previous_wall + MINUTE
            while skipped < wall and not tick:
                tick = expression.matches(skipped)
                skipped += MINUTE
        if tick:
            return t
        previous_wall = wall
        t += MINUTE
    return None


def zone_of(name: str) -> ZoneInfo | timezone:
    return UTC if name == "UTC" else ZoneInfo(name)


@cache
def transitions(name: str) -> list[datetime]:
    """The zone's offset changes in 2015-2026 (found hour by hour), in UTC."""
    zone = zone_of(name)
    found: list[datetime] = []
    t = datetime(2015, 1, 1, tzinfo=UTC)
    previous = t.astimezone(zone).utcoffset()
    while t.year < 2027:
        t += timedelta(hours=1)
        offset = t.astimezone(zone).utcoffset()
        if offset != previous:
            found.append(t)
            previous = offset
    return found or [datetime(2020, 6, 1, tzinfo=UTC)]


# -- strategies -----------------------------------------------------------------------------


@st.composite
def fields(draw: st.DrawFn, index: int) -> tuple[str, set[int]]:
    """One field's text and the values it means."""
    low, high = FIELD_RANGES[index]
    names = MONTH_NAMES if index == 3 else DAY_NAMES if index == 4 else None

    def show(value: int, *, seven: bool = True) -> str:
        if names is not None and draw(st.booleans()):
            text = names[value - low]
            return text.lower() if draw(st.booleans()) else text
        if seven and index == 4 and value == 0 and draw(st.booleans()):
            return "7"  # Sunday, the other way
        return str(value)

    items: list[str] = []
    values: set[int] = set()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["star", "step", "value", "range", "range-step", "from-step"]))
        step = draw(st.integers(1, max(1, (high - low) // 2)))
        a = draw(st.integers(low, high))
        b = draw(st.integers(a, high))
        if kind == "star":
            items.append("*")
            values.update(range(low, high + 1))
        elif kind == "step":
            items.append(f"*/{step}")
            values.update(range(low, high + 1, step))
        elif kind == "value":
            items.append(show(a))
            values.add(a)
        elif kind == "range":
            items.append(f"{show(a, seven=False)}-{show(b, seven=False)}")
            values.update(range(a, b + 1))
        elif kind == "range-step":
            items.append(f"{a}-{b}/{step}")
            values.update(range(a, b + 1, step))
        else:
            items.append(f"{a}/{step}")
            values.update(range(a, high + 1, step))
    return ",".join(items), values


@st.composite
def expressions(draw: st.DrawFn) -> tuple[str, list[set[int]]]:
    parts = [draw(fields(i)) for i in range(5)]
    if draw(st.booleans()):  # every hour: the DST rules differ
        parts[1] = ("*", set(range(24)))
    # Mostly busy expressions, so that the reference finds ticks within its horizon.
    if draw(st.integers(0, 3)) > 0:
        parts[2] = ("*", set(range(1, 32)))
        parts[3] = ("*", set(range(1, 13)))
    if draw(st.integers(0, 2)) > 0:
        parts[4] = ("*", set(range(7)))
    text = " ".join(p[0] for p in parts)
    try:
        CronExpression.parse(text)
    except CronSyntaxError as exc:
        assume("never matches" not in str(exc))
        raise
    return text, [p[1] for p in parts]


@st.composite
def moments(draw: st.DrawFn, zone_name: str) -> datetime:
    """Instants near the zone's clock changes, or anywhere in 2000-2037."""
    if draw(st.booleans()):
        base = draw(st.sampled_from(transitions(zone_name)))
        return base + timedelta(seconds=draw(st.integers(-3 * 3600, 2 * 3600)))
    naive = draw(st.datetimes(datetime(2000, 1, 1), datetime(2037, 1, 1)))
    return naive.replace(tzinfo=UTC)


HORIZON = 26 * 60  # minutes the reference looks ahead (a day and a clock change)


@settings(max_examples=60)
@given(data=st.data(), expression=expressions(), zone_name=st.sampled_from(ZONES))
def test_next_after_matches_the_brute_force_reference(
    data: st.DataObject, expression: tuple[str, list[set[int]]], zone_name: str
) -> None:
    text, _ = expression
    after = data.draw(moments(zone_name))
    schedule = CronSchedule(text, zone_name)
    for _ in range(4):  # a few consecutive ticks
        expected = reference_next(schedule.expression, zone_of(zone_name), after, HORIZON)
        got = schedule.next_after(after)
        assert got.tzinfo is UTC
        if expected is None:
            assert got > after + timedelta(minutes=HORIZON - 1), (text, zone_name, str(after))
            return
        assert got == expected, (text, zone_name, after.isoformat())
        after = got


@settings(max_examples=60)
@given(data=st.data(), expression=expressions(), zone_name=st.sampled_from(ZONES))
def test_latest_at_or_before_is_the_tick_before_the_next(
    data: st.DataObject, expression: tuple[str, list[set[int]]], zone_name: str
) -> None:
    text, _ = expression
    moment = data.draw(moments(zone_name))
    schedule = CronSchedule(text, zone_name)
    latest = schedule.latest_at_or_before(moment)
    assume(latest is not None)
    assert latest is not None
    assert latest <= moment < schedule.next_after(latest)


@settings(max_examples=100)
@given(expression=expressions())
def test_parser_values(expression: tuple[str, list[set[int]]]) -> None:
    text, expected = expression
    parsed = CronExpression.parse(text)
    assert set(parsed.minutes) == expected[0]
    assert set(parsed.hours) == expected[1]
    assert set(parsed.days) == expected[2]
    assert set(parsed.months) == expected[3]
    assert set(parsed.weekdays) == {v % 7 for v in expected[4]}
    day_fields = text.split()[2:5:2]
    assert parsed.days_or == (
        not day_fields[0].startswith("*") and not day_fields[1].startswith("*")
    )


# -- examples ---------------------------------------------------------------------------------


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def ticks(schedule: CronSchedule, start: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    for _ in range(count):
        start = schedule.next_after(start)
        out.append(start)
    return out


def test_every_five_minutes_in_utc_by_default() -> None:
    schedule = CronSchedule("*/5 * * * *")
    assert ticks(schedule, utc(2024, 1, 1, 10, 3, 59), 3) == [
        utc(2024, 1, 1, 10, 5),
        utc(2024, 1, 1, 10, 10),
        utc(2024, 1, 1, 10, 15),
    ]
    assert schedule.next_after(utc(2024, 1, 1, 10, 5)) == utc(2024, 1, 1, 10, 10)  # strictly after


def test_berlin_spring_forward() -> None:
    # 2024-03-31: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
    night = utc(2024, 3, 30, 23, 0)
    # Specific hour in the gap: once, at the change.
    assert CronSchedule("30 2 * * *", "Europe/Berlin").next_after(night) == utc(2024, 3, 31, 1, 0)
    # Every hour: the wall clock as it is (02:00 and 02:30 do not exist).
    assert ticks(CronSchedule("*/30 * * * *", "Europe/Berlin"), night, 4) == [
        utc(2024, 3, 30, 23, 30),  # 00:30 CET
        utc(2024, 3, 31, 0, 0),  # 01:00 CET
        utc(2024, 3, 31, 0, 30),  # 01:30 CET
        utc(2024, 3, 31, 1, 0),  # 03:00 CEST
    ]


def test_berlin_fall_back() -> None:
    # 2024-10-27: 03:00 CEST goes back to 02:00 CET (01:00 UTC); 02:xx happens twice.
    night = utc(2024, 10, 26, 23, 0)
    daily = CronSchedule("30 2 * * *", "Europe/Berlin")
    assert ticks(daily, night, 2) == [utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]
    assert ticks(CronSchedule("*/30 * * * *", "Europe/Berlin"), night, 6) == [
        utc(2024, 10, 26, 23, 30),  # 01:30 CEST
        utc(2024, 10, 27, 0, 0),  # 02:00 CEST
        utc(2024, 10, 27, 0, 30),  # 02:30 CEST
        utc(2024, 10, 27, 1, 0),  # 02:00 CET
        utc(2024, 10, 27, 1, 30),  # 02:30 CET
        utc(2024, 10, 27, 2, 0),  # 03:00 CET
    ]


def test_days_or_and_names() -> None:
    # Both day fields restricted: the 13th OR a Friday.
    schedule = CronSchedule("0 12 13 * FRI")
    found = ticks(schedule, utc(2024, 9, 1), 4)
    assert [t.day for t in found] == [6, 13, 20, 27]
    # Day-of-week starting with `*`: both must match (a 13th that is a Sunday or a Friday).
    assert CronSchedule("0 0 13 * */5").next_after(utc(2024, 1, 1)) == utc(2024, 9, 13)
    assert CronSchedule("0 9 * jan,Jul mon-fri").next_after(utc(2024, 2, 1)) == utc(2024, 7, 1, 9)


def test_macros_and_rare_schedules() -> None:
    assert str(CronExpression.parse("@hourly")) == "@hourly"
    assert CronSchedule("@daily", "Asia/Kolkata").next_after(utc(2024, 1, 1)) == utc(
        2024, 1, 1, 18, 30
    )
    assert CronSchedule("@yearly").next_after(utc(2024, 6, 1)) == utc(2025, 1, 1)
    assert CronSchedule("0 0 29 2 *").next_after(utc(2024, 3, 1)) == utc(2028, 2, 29)
    assert CronSchedule("0 0 29 2 *").latest_at_or_before(utc(2027, 1, 1)) == utc(2024, 2, 29)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("* * * *", "has 4 field(s)"),
        ("* * * * * *", "has 6 field(s)"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("* 24 * * *", "hour: 24 is outside 0-23"),
        ("* * 0 * *", "day of month: 0 is outside 1-31"),
        ("* * * 13 *", "month: 13 is outside 1-12"),
        ("* * * * 8", "day of week: 8 is outside 0-7"),
        ("5-1 * * * *", "ends before it starts"),
        ("*/0 * * * *", "must be a positive number"),
        ("1,,2 * * * *", "empty item"),
        ("MON * * * *", "minute: 'MON' is not a number"),
        ("* * * FOO *", "or a three-letter name"),
        ("0 0 30 2 *", "never matches"),
        ("@reboot", "unknown macro"),
    ],
)
def test_syntax_errors_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(CronSyntaxError) as caught:
        CronExpression.parse(text)
    assert problem in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_unknown_zone_and_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        CronSchedule("* * * * *", "Mars/Olympus")
    with pytest.raises(ValueError, match="aware"):
        CronSchedule("* * * * *").next_after(datetime(2024, 1, 1))
