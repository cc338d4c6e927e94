"""SLA deadlines on a business calendar: weekends, holidays, lunch breaks, daylight saving time,
the duration and calendar notations of case-type documents, and the invariants of the arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.calendar import (
    DAYS,
    BusinessCalendar,
    WorkingPeriod,
    calendar_from_document,
    parse_clock_span,
    parse_duration,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = DAYS[:5]
H = timedelta(hours=1)
MIN = timedelta(minutes=1)
TICK = timedelta(microseconds=1)


def calendar(
    zone: str, spans: list[str], days: tuple[str, ...] = WEEKDAYS, holidays: tuple[str, ...] = ()
) -> BusinessCalendar:
    hours = {day: spans for day in days}
    return calendar_from_document({"timezone": zone, "hours": hours, "holidays": list(holidays)})


def local(
    zone: ZoneInfo,
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    microsecond: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=zone)


paris = partial(local, PARIS)
new_york = partial(local, NEW_YORK)


def in_utc(moment: datetime) -> str:
    """The instant as ISO text, checking that the calendar answered in UTC."""
    assert moment.tzinfo is UTC
    return moment.isoformat()


OFFICE = calendar("Europe/Paris", ["09:00-17:00"])
LUNCH = calendar("Europe/Paris", ["09:00-12:30", "13:30-17:00"])
NIGHTS = calendar("Europe/Paris", ["01:00-04:00"], days=DAYS)


# --- Examples ------------------------------------------------------------------------------


def test_a_deadline_skips_the_weekend() -> None:
    # Friday 2026-06-05 16:00 CEST + 2h: one hour on Friday, one on Monday.
    assert in_utc(OFFICE.add(paris(2026, 6, 5, 16), 2 * H)) == "2026-06-08T08:00:00+00:00"


def test_a_deadline_skips_holidays() -> None:
    christmas = calendar("Europe/Paris", ["09:00-17:00"], holidays=("2026-12-25",))
    thursday = paris(2026, 12, 24, 16)  # Friday 25 is Christmas
    assert in_utc(OFFICE.add(thursday, 2 * H)) == "2026-12-25T09:00:00+00:00"
    assert in_utc(christmas.add(thursday, 2 * H)) == "2026-12-28T09:00:00+00:00"
    assert christmas.working_time_between(paris(2026, 12, 21), paris(2026, 12, 28)) == 32 * H


def test_the_lunch_break_does_not_count() -> None:
    monday_noon = paris(2026, 6, 8, 12)
    assert in_utc(LUNCH.add(monday_noon, H)) == "2026-06-08T12:00:00+00:00"  # 14:00 CEST
    assert LUNCH.working_time_between(monday_noon, paris(2026, 6, 8, 14)) == H
    assert not LUNCH.is_working(paris(2026, 6, 8, 12, 30))
    assert LUNCH.is_working(paris(2026, 6, 8, 12, 29, 59, 999999))


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (paris(2026, 6, 8, 7), "2026-06-08T08:00:00+00:00"),  # before opening: 10:00 CEST
        (paris(2026, 6, 8, 12, 45), "2026-06-08T12:30:00+00:00"),  # at lunch: 14:30 CEST
        (paris(2026, 6, 8, 20), "2026-06-09T08:00:00+00:00"),  # evening: Tuesday 10:00
        (paris(2026, 6, 6, 11), "2026-06-08T08:00:00+00:00"),  # Saturday: Monday 10:00
    ],
)
def test_counting_starts_at_the_next_working_moment(start: datetime, expected: str) -> None:
    assert in_utc(LUNCH.add(start, H)) == expected


def test_the_next_working_moment_and_the_end_of_a_period() -> None:
    friday_close = paris(2026, 6, 5, 17)
    assert not OFFICE.is_working(friday_close)
    assert OFFICE.is_working(friday_close - TICK)
    assert in_utc(OFFICE.next_working_moment(friday_close)) == "2026-06-08T07:00:00+00:00"
    assert in_utc(OFFICE.next_working_moment(paris(2026, 6, 5, 10))) == "2026-06-05T08:00:00+00:00"


def test_a_zero_duration_is_the_start_itself_even_outside_working_hours() -> None:
    saturday = paris(2026, 6, 6, 11, 15, 30, 250)
    assert in_utc(OFFICE.add(saturday, timedelta(0))) == "2026-06-06T09:15:30.000250+00:00"


def test_the_start_may_be_given_in_any_time_zone() -> None:
    tokyo = datetime(2026, 6, 5, 23, tzinfo=ZoneInfo("Asia/Tokyo"))  # Friday 16:00 CEST
    assert in_utc(OFFICE.add(tokyo, 2 * H)) == "2026-06-08T08:00:00+00:00"


def test_always_counts_every_moment() -> None:
    always = BusinessCalendar.always()
    # (In UTC: adding hours to a Paris datetime adds wall-clock hours, across the DST change.)
    start = paris(2026, 3, 28, 22, 17, 3, 5).astimezone(UTC)
    assert always.add(start, 3 * H + TICK) == start + 3 * H + TICK
    assert always.add(start, parse_duration("3d", always.day_length)) == start + 72 * H
    assert always.working_time_between(start, start + 100 * H) == 100 * H
    assert always.next_working_moment(start) == start


def test_a_business_day_is_the_calendars_day_length() -> None:
    assert parse_duration("3d") == 24 * H
    assert parse_duration("3d", timedelta(hours=7, minutes=30)) == 22 * H + 30 * MIN
    # Three days of 9-17 from Monday 09:00 end at Wednesday's close, not Thursday's opening.
    deadline = OFFICE.add(paris(2026, 6, 8, 9), parse_duration("3d", OFFICE.day_length))
    assert in_utc(deadline) == "2026-06-10T15:00:00+00:00"
    assert in_utc(OFFICE.add(paris(2026, 6, 8, 9), parse_duration("2w"))) == (
        "2026-06-19T15:00:00+00:00"
    )


def test_a_long_duration_walks_days_not_minutes() -> None:
    start = paris(2026, 1, 5, 9)
    deadline = OFFICE.add(start, 250 * 8 * H)  # about a working year
    assert OFFICE.working_time_between(start, deadline) == 2000 * H
    assert in_utc(deadline) == "2026-12-18T16:00:00+00:00"


# --- Daylight saving time --------------------------------------------------------------------


def test_paris_spring_forward() -> None:
    # 2026-03-29 02:00 CET becomes 03:00 CEST: the night 01:00-04:00 lasts two hours.
    assert NIGHTS.working_time_between(paris(2026, 3, 29), paris(2026, 3, 30)) == 2 * H
    # Saturday 03:00 CET + 2h: one hour that night, then 01:00 CET (00:00Z) + 1h = 03:00 CEST.
    assert in_utc(NIGHTS.add(paris(2026, 3, 28, 3), 2 * H)) == "2026-03-29T01:00:00+00:00"
    # Office hours across the change: Friday 16:00 CET + 2h is Monday 10:00 CEST.
    assert in_utc(OFFICE.add(paris(2026, 3, 27, 16), 2 * H)) == "2026-03-30T08:00:00+00:00"


def test_paris_periods_inside_the_skipped_hour() -> None:
    skipped = calendar("Europe/Paris", ["02:00-02:30", "02:30-03:10"], days=DAYS)
    # 02:00-02:30 does not exist that night; 02:30-03:10 is 03:00-03:10 CEST.
    assert skipped.working_time_between(paris(2026, 3, 29), paris(2026, 3, 30)) == 10 * MIN
    assert skipped.working_time_between(paris(2026, 3, 30), paris(2026, 3, 31)) == 70 * MIN
    assert in_utc(skipped.add(paris(2026, 3, 29), 5 * MIN)) == "2026-03-29T01:05:00+00:00"


def test_paris_fall_back() -> None:
    # 2026-10-25 03:00 CEST becomes 02:00 CET: the night 01:00-04:00 lasts four hours.
    assert NIGHTS.working_time_between(paris(2026, 10, 25), paris(2026, 10, 26)) == 4 * H
    # From 01:00 CEST (23:00Z), 3h30m of real time ends at 03:30 CET.
    assert in_utc(NIGHTS.add(paris(2026, 10, 25, 1), 3 * H + 30 * MIN)) == (
        "2026-10-25T02:30:00+00:00"
    )
    assert in_utc(OFFICE.add(paris(2026, 10, 23, 16), 2 * H)) == "2026-10-26T09:00:00+00:00"


def test_new_york_daylight_saving() -> None:
    office = calendar("America/New_York", ["09:00-17:00"])
    whole_days = calendar("America/New_York", ["00:00-24:00"], days=DAYS)
    # Friday 16:00 EST + 2h is Monday 10:00 EDT; Friday 16:00 EDT + 2h is Monday 10:00 EST.
    assert in_utc(office.add(new_york(2026, 3, 6, 16), 2 * H)) == "2026-03-09T14:00:00+00:00"
    assert in_utc(office.add(new_york(2026, 10, 30, 16), 2 * H)) == "2026-11-02T15:00:00+00:00"
    assert whole_days.working_time_between(new_york(2026, 3, 8), new_york(2026, 3, 9)) == 23 * H
    assert whole_days.working_time_between(new_york(2026, 11, 1), new_york(2026, 11, 2)) == 25 * H


# --- Refusals ----------------------------------------------------------------------------------


def test_naive_datetimes_and_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        OFFICE.add(datetime(2026, 6, 8, 9), H)
    with pytest.raises(ValueError, match="must not be negative"):
        OFFICE.add(paris(2026, 6, 8, 9), -TICK)


def test_a_calendar_without_working_time_in_reach_gives_up() -> None:
    mondays = [date(2026, 1, 5) + timedelta(weeks=n) for n in range(600)]
    closed = calendar("UTC", ["09:00-17:00"], days=("mon",), holidays=tuple(map(str, mondays)))
    with pytest.raises(ValueError, match="no working time within 3660 days"):
        closed.add(paris(2026, 1, 1), H)


def test_periods_must_be_in_order_and_seven_days_given() -> None:
    morning, afternoon = parse_clock_span("09:00-12:00"), parse_clock_span("13:00-17:00")
    with pytest.raises(ValueError, match=r"^hours.mon: '09:00-12:00' comes after '13:00-17:00'"):
        BusinessCalendar("UTC", ((afternoon, morning),) + ((),) * 6)
    with pytest.raises(ValueError, match="expected 7 weekdays"):
        BusinessCalendar("UTC", ((morning,),) * 6)
    with pytest.raises(ValueError, match="'10:00-09:00' ends before it starts"):
        WorkingPeriod(time(10), time(9))


# --- Notations of case-type documents ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", 30 * MIN),
        ("4h", 4 * H),
        ("1h30m", 90 * MIN),
        ("3d", 24 * H),
        ("2w", 80 * H),
        ("1d4h", 12 * H),
        (" 1d 4h ", 12 * H),
        ("90s", timedelta(seconds=90)),
        ("1w2d3h4m5s", 40 * H + 16 * H + 3 * H + 4 * MIN + timedelta(seconds=5)),
        ("0m", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_a_wrong_duration_is_named_with_a_hint() -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration("3 dayz")
    hint = "(write a number and a unit: 30m, 4h, 3d, 2w)"
    assert str(caught.value) == f"'3 dayz' is not a duration {hint}"


@pytest.mark.parametrize(
    "text", ["", " ", "3", "h", "-1h", "1.5h", "4H", "3 d", "1d4", "3 days", "1h 1h", "30m1h"]
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=f"^'{text}' is not a duration \\(write "):
        parse_duration(text)


def test_parse_duration_refuses_what_a_timedelta_cannot_hold() -> None:
    with pytest.raises(ValueError, match="is not a duration \\(it is too long\\)"):
        parse_duration("999999999999w")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00-17:30", WorkingPeriod(time(9), time(17, 30))),
        ("9:00 - 12:00", WorkingPeriod(time(9), time(12))),
        ("00:00-24:00", WorkingPeriod(time(0), time.max)),
        ("22:15-24:00", WorkingPeriod(time(22, 15), time.max)),
    ],
)
def test_parse_clock_span(text: str, expected: WorkingPeriod) -> None:
    assert parse_clock_span(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9-17", "'9-17' is not a clock span (write it like 09:00-17:30)"),
        ("24:00-24:00", "'24:00-24:00' is not a clock span (times run 00:00 to 24:00)"),
        ("09:00-24:01", "'09:00-24:01' is not a clock span (times run 00:00 to 24:00)"),
        ("08:60-09:00", "'08:60-09:00' is not a clock span (times run 00:00 to 24:00)"),
        ("13:30-12:00", "'13:30-12:00' ends before it starts"),
        ("09:00-09:00", "'09:00-09:00' is empty"),
    ],
)
def test_parse_clock_span_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_clock_span(text)
    assert str(caught.value) == message


def test_calendar_from_document() -> None:
    doc: dict[str, object] = {
        "timezone": "Europe/Paris",
        "hours": {"mon": ["13:30-17:00", "09:00-12:30"], "tue": ["09:00-17:00"], "sat": []},
        "holidays": ["2026-12-25", date(2027, 1, 1)],  # YAML reads unquoted dates as dates
        "day_length": "7h30m",
    }
    morning, afternoon = WorkingPeriod(time(9), time(12, 30)), WorkingPeriod(time(13, 30), time(17))
    assert calendar_from_document(doc) == BusinessCalendar(
        "Europe/Paris",
        ((morning, afternoon), (WorkingPeriod(time(9), time(17)),), (), (), (), (), ()),
        frozenset({date(2026, 12, 25), date(2027, 1, 1)}),
        timedelta(hours=7, minutes=30),
    )
    assert calendar_from_document({"always": True}) == BusinessCalendar.always()


OFFICE_HOURS = {"mon": ["09:00-17:00"]}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"timezone": "Europe/Pariss", "hours": OFFICE_HOURS}, "unknown time zone 'Europe/Pariss'"),
        ({"hours": OFFICE_HOURS}, "timezone: expected a name like 'Europe/Paris', got None"),
        (
            {"timezone": "UTC", "hours": {"mon": ["09:00-12:30", "13:30-12:00"]}},
            "hours.mon[1]: '13:30-12:00' ends before it starts",
        ),
        (
            {"timezone": "UTC", "hours": {"mon": ["09:00-12:00", "11:00-13:00"]}},
            "hours.mon: '09:00-12:00' and '11:00-13:00' overlap",
        ),
        (
            {"timezone": "UTC", "hours": {"monday": ["09:00-17:00"]}},
            "hours.monday: unknown day (expected mon, tue, wed, thu, fri, sat, sun)",
        ),
        (
            {"timezone": "UTC", "hours": {"mon": "09:00-17:00"}},
            "hours.mon: expected a list, got '09:00-17:00'",
        ),
        (
            {"timezone": "UTC", "hours": {"mon": [9]}},
            "hours.mon[0]: expected text like '09:00-17:00', got 9",
        ),
        ({"timezone": "UTC", "hours": {"sat": []}}, "hours: no working time on any day"),
        (
            {"timezone": "UTC", "hours": ["09:00-17:00"]},
            "hours: expected weekdays and their periods, like mon: ['09:00-17:00']",
        ),
        (
            {"timezone": "UTC", "hours": OFFICE_HOURS, "holidays": ["2026-12-25", "2026-13-01"]},
            "holidays[1]: '2026-13-01' is not a date (write YYYY-MM-DD)",
        ),
        (
            {"timezone": "UTC", "hours": OFFICE_HOURS, "day_length": "8 hours"},
            "day_length: '8 hours' is not a duration (write a number and a unit: 30m, 4h, 3d, 2w)",
        ),
        (
            {"timezone": "UTC", "hours": OFFICE_HOURS, "day_length": "0h"},
            "day_length: must be longer than zero",
        ),
        (
            {"timezone": "UTC", "hours": OFFICE_HOURS, "day_length": 8},
            "day_length: expected text like '8h', got 8",
        ),
        (
            {"timezone": "UTC", "timezon": "UTC"},
            "unknown key 'timezon' (expected always, timezone, hours, holidays, day_length)",
        ),
        ({"always": True, "timezone": "UTC"}, "always: true stands alone; remove the other keys"),
        ({"always": "yes"}, "always: expected true or false, got 'yes'"),
    ],
)
def test_calendar_from_document_names_the_faulty_key(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        calendar_from_document(doc)
    assert str(caught.value) == message


# --- Invariants --------------------------------------------------------------------------------

# Zones with 1h shifts, a 30-minute shift (Lord Howe), a 5:45 offset (Kathmandu), shifts at
# midnight (Santiago) and a skipped day (Apia, 2011-12-30).
ZONES = [
    "UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu",
    "America/Santiago", "Pacific/Apia",
]  # fmt: skip
TRANSITIONS = [
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2026, 4, 4, 15, tzinfo=UTC),
    datetime(2026, 9, 6, 4, tzinfo=UTC),
    datetime(2011, 12, 30, 10, tzinfo=UTC),
]
PROPERTY = settings(deadline=None, database=None, max_examples=150)


def quarter(index: int) -> time:
    return time.max if index == 96 else time(index // 4, index % 4 * 15)


@st.composite
def day_hours(draw: st.DrawFn) -> tuple[WorkingPeriod, ...]:
    points = sorted(draw(st.sets(st.integers(0, 96), max_size=6)))
    pairs = zip(points[::2], points[1::2], strict=False)
    return tuple(WorkingPeriod(quarter(a), quarter(b)) for a, b in pairs)


@st.composite
def starts(draw: st.DrawFn) -> datetime:
    near_a_change = draw(st.sampled_from(TRANSITIONS)) + draw(
        st.timedeltas(-timedelta(days=4), timedelta(days=4))
    )
    anywhere = draw(st.datetimes(datetime(2010, 1, 1), datetime(2035, 1, 1))).replace(tzinfo=UTC)
    on_a_quarter = anywhere.replace(minute=anywhere.minute // 15 * 15, second=0, microsecond=0)
    return draw(st.sampled_from([near_a_change, anywhere, on_a_quarter]))


@st.composite
def calendars_and_starts(draw: st.DrawFn) -> tuple[BusinessCalendar, datetime]:
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    hours = tuple(draw(day_hours()) for _ in DAYS)
    assume(any(hours))
    start = draw(starts())
    day = start.astimezone(zone).date()
    edges = [clock for p in hours[day.weekday()] for clock in (p.start, p.end) if clock != time.max]
    if draw(st.booleans()) and edges:  # exactly where a period opens or closes
        start = datetime.combine(day, draw(st.sampled_from(edges)), tzinfo=zone).astimezone(UTC)
    offsets = draw(st.sets(st.integers(-2, 40), max_size=8))
    holidays = frozenset(start.date() + timedelta(days=n) for n in offsets)
    return BusinessCalendar(zone.key, hours, holidays), start


DURATIONS = st.timedeltas(timedelta(0), timedelta(hours=60))
GAPS = st.timedeltas(timedelta(0), timedelta(days=10))


@PROPERTY
@given(calendars_and_starts(), DURATIONS)
def test_the_working_time_up_to_a_deadline_is_its_duration(
    case: tuple[BusinessCalendar, datetime], duration: timedelta
) -> None:
    calendar, start = case
    assert calendar.working_time_between(start, calendar.add(start, duration)) == duration


@PROPERTY
@given(calendars_and_starts(), DURATIONS, DURATIONS)
def test_a_longer_duration_never_gives_an_earlier_deadline(
    case: tuple[BusinessCalendar, datetime], one: timedelta, other: timedelta
) -> None:
    calendar, start = case
    shorter, longer = sorted([one, other])
    assert calendar.add(start, shorter) <= calendar.add(start, longer)


@PROPERTY
@given(calendars_and_starts(), DURATIONS.filter(bool))
def test_a_deadline_is_working_time_or_the_close_of_a_period(
    case: tuple[BusinessCalendar, datetime], duration: timedelta
) -> None:
    calendar, start = case
    deadline = calendar.add(start, duration)
    assert calendar.is_working(deadline) or calendar.is_working(deadline - TICK)
    # ... and the earliest such instant: one microsecond before, the SLA is not yet spent.
    assert calendar.working_time_between(start, deadline - TICK) == duration - TICK


@PROPERTY
@given(calendars_and_starts(), GAPS, GAPS)
def test_working_time_adds_up_over_consecutive_intervals(
    case: tuple[BusinessCalendar, datetime], first: timedelta, second: timedelta
) -> None:
    calendar, a = case
    b, c = a + first, a + first + second
    between: Callable[[datetime, datetime], timedelta] = calendar.working_time_between
    assert between(a, b) + between(b, c) == between(a, c)
    assert between(c, a) == timedelta(0) or a == c


@PROPERTY
@given(calendars_and_starts())
def test_the_next_working_moment_skips_no_working_time(
    case: tuple[BusinessCalendar, datetime],
) -> None:
    calendar, start = case
    moment = calendar.next_working_moment(start)
    assert moment >= start
    assert calendar.is_working(moment)
    assert calendar.working_time_between(start, moment) == timedelta(0)
    assert calendar.is_working(start) == (moment == start)
