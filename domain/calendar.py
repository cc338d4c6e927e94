"""Business calendars: when an SLA clock runs, and when its deadline falls.

A :class:`BusinessCalendar` has a time zone, working periods per weekday (local wall-clock
times) and whole local days off; SLA durations count working time only, exact to the
microsecond, walking the calendar one local day at a time. Case-type documents write durations
as ``"1d 4h"``, periods as ``"09:00-17:30"`` and calendars as plain mappings.

Daylight saving time: a period spanning the hour skipped in spring is one hour shorter in real
time, one spanning the repeated hour in autumn one hour longer. An ambiguous local time is its
first occurrence (``fold=0``); a skipped one is the instant the clocks jumped. So on the night
Paris springs forward ``02:00-02:30`` holds no working time and ``02:30-03:10`` ten minutes.

Everything is bounded: a calendar has at most :data:`MAX_PERIODS_PER_DAY` periods a day and
:data:`MAX_HOLIDAYS` holidays, a business day is at most 24 hours, and a deadline falls within
:data:`MAX_SPAN_DAYS` days: :meth:`BusinessCalendar.span_days` lets a document be refused at
check time, and the arithmetic raises :class:`CalendarLimit` (a domain error) rather than walk
for ever or run past the year 9999.

Tests: ``.venv/bin/pytest tests/unit/test_calendar.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from math import ceil
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import InvalidCommand

MAX_IDLE_DAYS = 3660  # give up after this many days in a row without working time
MAX_SPAN_DAYS = 3660  # about ten years: no deadline falls further from its start
MAX_PERIODS_PER_DAY = 24  # each local day costs a zone conversion per period, per deadline
MAX_HOLIDAYS = 1000  # ten years of holidays, with room to spare
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DURATION_HINT = " (write a number and a unit: 30m, 4h, 3d, 2w)"
_ONE_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)
_DURATION = re.compile(r"(?:[0-9]+[wdhms]\s*)+")
_PART = re.compile(r"([0-9]+)([wdhms])")
_SPAN = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})")
_KEYS = ("always", "timezone", "hours", "holidays", "day_length")
_Span = tuple[datetime, datetime]
_REMEMBERED_DAYS = 2 * 3660
_MAX_SPAN = timedelta(days=MAX_SPAN_DAYS)
_LAST_DAY = date.max - timedelta(days=2)  # the walk stops before the calendar ends
_T = TypeVar("_T")


class CalendarLimit(InvalidCommand, ValueError):
    """A deadline the calendar cannot reach within :data:`MAX_SPAN_DAYS` days."""

    code = "calendar_limit"

    def __init__(self, message: str) -> None:
        super().__init__(
            message,
            hint="shorten the SLA or give the calendar more working time; "
            "see Durations and the calendar in docs/case-types.md",
        )


@dataclass(frozen=True)
class WorkingPeriod:
    """A span ``[start, end)`` of working time within a day, in local wall-clock times.

    ``end`` must come after ``start``. ``time.max`` as end stands for midnight at the end of the
    day (documents write ``24:00``), so ``WorkingPeriod(time(0), time.max)`` is the whole day.
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"'{self}' ends before it starts")
        if self.end == self.start:
            raise ValueError(f"'{self}' is empty")

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"

    @property
    def length(self) -> timedelta:
        """The wall-clock length of the period (24:00 counts as the end of the day)."""
        return _since_midnight(self.end) - _since_midnight(self.start)


@dataclass(frozen=True)
class BusinessCalendar:
    """Working time: periods per weekday (Monday first; empty = day off), holidays, a zone.

    ``day_length`` is what one business day ("1d") of an SLA means. Methods accept aware
    datetimes in any zone and answer in UTC; naive datetimes are refused.
    """

    timezone: str
    hours: tuple[tuple[WorkingPeriod, ...], ...]
    holidays: frozenset[date] = frozenset()
    day_length: timedelta = timedelta(hours=8)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _spans: dict[date, tuple[_Span, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", _load_zone(self.timezone))
        if len(self.hours) != len(DAYS):
            raise ValueError(f"hours: expected 7 weekdays, Monday first, got {len(self.hours)}")
        for name, periods in zip(DAYS, self.hours, strict=True):
            _check_day(periods, f"hours.{name}")
        if not any(self.hours):
            raise ValueError("hours: no working time on any day")
        if self.day_length <= timedelta(0):
            raise ValueError("day_length: must be longer than zero")
        if self.day_length > _ONE_DAY:
            raise ValueError("day_length: must be at most 24h (one business day)")
        if len(self.holidays) > MAX_HOLIDAYS:
            raise ValueError(
                f"holidays: {len(self.holidays)} dates is over the limit of {MAX_HOLIDAYS}; "
                "list the holidays of the coming years only"
            )

    @classmethod
    def always(cls) -> BusinessCalendar:
        """Every moment is working time: 24/7 in UTC, no holidays, a business day of 24 hours."""
        whole_day = (WorkingPeriod(time(0), time.max),)
        return cls("UTC", (whole_day,) * len(DAYS), day_length=timedelta(hours=24))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant (UTC) when ``duration`` of working time has elapsed after ``start``.

        Counting begins at the next working moment. A zero duration gives ``start`` itself; a
        deadline reached at the close of a period is that close, not the next opening.
        """
        return self.add_each(start, [duration])[0]

    def add_each(self, start: datetime, durations: Sequence[timedelta]) -> list[datetime]:
        """:meth:`add` for each of ``durations`` (an SLA's milestones), in one walk."""
        if negative := [d for d in durations if d < timedelta(0)]:
            raise ValueError(f"duration must not be negative, got {negative[0]}")
        moment = _utc(start)
        due = [moment] * len(durations)
        spans = self._spans_after(moment)
        counted, span = timedelta(0), None  # working time before the span under the pointer
        for index in sorted(range(len(durations)), key=durations.__getitem__):
            wanted = durations[index]
            while wanted:
                if span is None:
                    begin, end = next(spans)
                    span = (max(begin, moment), end)
                if counted + (span[1] - span[0]) >= wanted:
                    due[index] = span[0] + (wanted - counted)
                    break
                counted += span[1] - span[0]
                if span[1] - moment > _MAX_SPAN:
                    raise CalendarLimit(
                        f"{wanted} of working time does not fit within {MAX_SPAN_DAYS} days "
                        f"after {moment.isoformat()} on this calendar"
                    )
                span = None
        return due

    def span_days(self, duration: timedelta) -> float:
        """At most how many days of the calendar ``duration`` of working time takes: whole
        weeks of working time, one week more, and every holiday."""
        weekly = sum((period.length for day in self.hours for period in day), timedelta(0))
        return (ceil(duration / weekly) + 1) * 7 + len(self.holidays)

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time within ``[start, end)``; zero if ``end`` is not after ``start``."""
        first, last = _utc(start), _utc(end)
        total = timedelta(0)
        if last <= first:
            return total
        day, last_day = self._local_day(first) - _ONE_DAY, self._local_day(last) + _ONE_DAY
        while day <= last_day:
            for begin, finish in self._day_spans(day):
                total += max(timedelta(0), min(finish, last) - max(begin, first))
            day += _ONE_DAY
        return total

    def is_working(self, moment: datetime) -> bool:
        """Whether ``moment`` lies within a working period (whose end is excluded)."""
        instant = _utc(moment)
        return self.working_time_between(instant, instant + _TICK) > timedelta(0)

    def next_working_moment(self, moment: datetime) -> datetime:
        """``moment`` (in UTC) if it is working time, else the start of the next period."""
        instant = _utc(moment)
        begin, _ = next(self._spans_after(instant))
        return max(begin, instant)

    def _local_day(self, instant: datetime) -> date:
        return instant.astimezone(self._zone).date()

    def _spans_after(self, moment: datetime) -> Iterator[_Span]:
        """Working spans ending after ``moment``, in order, without end."""
        day, idle = self._local_day(moment) - _ONE_DAY, 0
        while idle <= MAX_IDLE_DAYS:
            spans = [(begin, end) for begin, end in self._day_spans(day) if end > moment]
            idle = 0 if spans else idle + 1
            yield from spans
            if day >= _LAST_DAY:
                break
            day += _ONE_DAY
        raise CalendarLimit(f"no working time within {MAX_IDLE_DAYS} days after {moment}")

    def _day_spans(self, day: date) -> tuple[_Span, ...]:
        """The UTC spans of the working periods of one local day; empty ones are dropped.
        Remembered: every SLA of a case walks the same days, for each of its milestones."""
        known = self._spans.get(day)
        if known is None:
            periods = () if day in self.holidays else self.hours[day.weekday()]
            zone = self._zone
            spans = [(_instant(day, p.start, zone), _instant(day, p.end, zone)) for p in periods]
            known = tuple((begin, end) for begin, end in spans if begin < end)
            if len(self._spans) >= _REMEMBERED_DAYS:
                self._spans.clear()
            self._spans[day] = known
        return known


def _instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local time: the first occurrence, or the jump over a skipped time.

    ``time.max`` stands for 24:00, the midnight that ends ``day``.
    """
    if clock == time.max:
        day, clock = day + _ONE_DAY, time(0)
    local = datetime.combine(day, clock, tzinfo=zone)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    before, after = local.replace(fold=1).astimezone(UTC), instant  # either side of the jump
    while after - before > _TICK:
        middle = before + (after - before) // 2
        if middle.astimezone(zone).utcoffset() == after.astimezone(zone).utcoffset():
            after = middle
        else:
            before = middle
    return after


def _utc(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; pass an aware datetime")
    return moment.astimezone(UTC)


def _load_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _clock(value: time) -> str:
    exact = "auto" if value.second or value.microsecond else "minutes"
    return "24:00" if value == time.max else value.isoformat(exact)


def _since_midnight(value: time) -> timedelta:
    if value == time.max:
        return _ONE_DAY
    return datetime.combine(date.min, value) - datetime.combine(date.min, time(0))


def _check_day(periods: Sequence[WorkingPeriod], where: str) -> None:
    if len(periods) > MAX_PERIODS_PER_DAY:
        raise ValueError(
            f"{where}: {len(periods)} periods is over the limit of {MAX_PERIODS_PER_DAY} a day"
        )
    for previous, current in pairwise(periods):
        if current.start < previous.start:
            raise ValueError(f"{where}: '{current}' comes after '{previous}'; list them in order")
        if current.start < previous.end:
            raise ValueError(f"{where}: '{previous}' and '{current}' overlap")


def parse_duration(text: str, day_length: timedelta = timedelta(hours=8)) -> timedelta:
    """A duration written ``"30m"``, ``"1h30m"``, ``"1d 4h"``, ``"2w"``, ``"90s"``.

    Units: s, m, h, d (``day_length``) and w (five days); each unit at most once, largest first,
    whole numbers only. Zero (``"0m"``) is allowed and means "due at once".
    """
    stripped = text.strip()
    if not _DURATION.fullmatch(stripped):
        raise ValueError(f"{text!r} is not a duration{DURATION_HINT}")
    parts = _PART.findall(stripped)
    ranks = ["wdhms".index(unit) for _, unit in parts]
    if ranks != sorted(set(ranks)):
        raise ValueError(f"{text!r} is not a duration (write each unit once, largest first: 1d 4h)")
    hour = timedelta(hours=1)
    unit = {"w": 5 * day_length, "d": day_length, "h": hour, "m": hour / 60, "s": hour / 3600}
    try:
        return sum((int(number) * unit[name] for number, name in parts), timedelta(0))
    except (OverflowError, ValueError):
        raise ValueError(f"{text!r} is not a duration (it is too long)") from None


def parse_clock_span(text: str) -> WorkingPeriod:
    """A working period written ``"09:00-17:30"``; ``24:00`` as its end means end of day."""
    match = _SPAN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a clock span (write it like 09:00-17:30)")
    hour, minute, end_hour, end_minute = (int(part) for part in match.groups())
    try:
        start = time(hour, minute)
        end = time.max if (end_hour, end_minute) == (24, 0) else time(end_hour, end_minute)
    except ValueError:
        raise ValueError(f"{text!r} is not a clock span (times run 00:00 to 24:00)") from None
    return WorkingPeriod(start, end)


def calendar_from_document(doc: Mapping[str, object]) -> BusinessCalendar:
    """The calendar a YAML/JSON document describes; errors name the faulty key.

    ``{"timezone": "Europe/Paris", "hours": {"mon": ["09:00-12:30", "13:30-17:00"], ...},
    "holidays": ["2026-12-25"], "day_length": "8h"}``: a missing or null day is a day off;
    holidays may be ISO texts or dates. ``{"always": true}`` alone means 24/7.
    """
    if unknown := [key for key in doc if key not in _KEYS]:
        raise ValueError(f"unknown key {unknown[0]!r} (expected {', '.join(_KEYS)})")
    if doc.get("always") is True:
        if len(doc) > 1:
            raise ValueError("always: true stands alone; remove the other keys")
        return BusinessCalendar.always()
    if doc.get("always", False) is not False:
        raise ValueError(f"always: expected true or false, got {doc['always']!r}")
    timezone, hours = doc.get("timezone"), doc.get("hours")
    if not isinstance(timezone, str):
        raise ValueError(f"timezone: expected a name like 'Europe/Paris', got {timezone!r}")
    if not isinstance(hours, Mapping):
        raise ValueError("hours: expected weekdays and their periods, like mon: ['09:00-17:00']")
    if unknown := [key for key in hours if key not in DAYS]:
        raise ValueError(f"hours.{unknown[0]}: unknown day (expected {', '.join(DAYS)})")
    holidays = enumerate(_list(doc.get("holidays"), "holidays"))
    return BusinessCalendar(
        timezone,
        tuple(_day_from_document(hours.get(name), f"hours.{name}") for name in DAYS),
        frozenset(_holiday(item, f"holidays[{index}]") for index, item in holidays),
        _parse_at(parse_duration, doc.get("day_length", "8h"), "day_length", "'8h'"),
    )


def _list(value: object, where: str) -> Sequence[object]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{where}: expected a list, got {value!r}")
    return value


def _day_from_document(value: object, where: str) -> tuple[WorkingPeriod, ...]:
    items = enumerate(_list(value, where))
    periods = sorted(
        (_parse_at(parse_clock_span, item, f"{where}[{i}]", "'09:00-17:00'") for i, item in items),
        key=lambda period: period.start,
    )
    _check_day(periods, where)
    return tuple(periods)


def _holiday(item: object, where: str) -> date:
    if isinstance(item, date) and not isinstance(item, datetime):
        return item  # YAML reads an unquoted 2026-12-25 as a date
    if isinstance(item, str):
        with suppress(ValueError):
            return date.fromisoformat(item)
    raise ValueError(f"{where}: {item!r} is not a date (write YYYY-MM-DD)")


def _parse_at(parse: Callable[[str], _T], value: object, where: str, example: str) -> _T:
    """``parse(value)``, with ``where`` naming the key in any error."""
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected text like {example}, got {value!r}")
    try:
        return parse(value)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
