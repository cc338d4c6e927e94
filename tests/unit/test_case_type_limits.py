"""Bounds on case-type documents (issue 7, findings 8 and 11): durations, calendars, section
sizes, and the number of drafts a case type keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.calendar import BusinessCalendar, CalendarLimit, calendar_from_document
from domain.case_type import MAX_DRAFTS, CaseType, TooManyDrafts
from domain.errors import InvalidCommand, InvalidTransition
from services.case_type_document import problems_in

NOW = datetime(2026, 11, 30, 9, tzinfo=UTC)
OFFICE = {"timezone": "Europe/Paris", "hours": {"mon": ["09:00-17:00"], "fri": ["09:00-17:00"]}}
DOC: dict[str, Any] = {
    "name": "tiny",
    "labels": {"en": "Tiny"},
    "states": {"open": {"initial": True}, "done": {"final": True}},
}


def test_the_calendar_refuses_a_deadline_beyond_ten_years_as_a_domain_error() -> None:
    with pytest.raises(CalendarLimit) as refused:
        BusinessCalendar.always().add(NOW, timedelta(days=9_000_000))
    assert isinstance(refused.value, InvalidCommand)
    assert "does not fit within 3660 days" in refused.value.message


def test_milestones_in_one_walk_fall_where_each_alone_would() -> None:
    office = calendar_from_document(OFFICE)
    durations = [timedelta(hours=h) for h in (30, 0, 4, 16, 8)]
    assert office.add_each(NOW, durations) == [office.add(NOW, d) for d in durations]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"slas": [{"name": "s", "deadline": "9000000d"}]}, "slas[0].deadline: '9000000d' is too"),
        ({"slas": [{"name": "s", "deadline": "1h", "goal": "99999w"}]}, "slas[0].goal: '99999w'"),
        (
            {"calendar": {**OFFICE, "day_length": "25h"}},
            "calendar.day_length: must be at most 24h",
        ),
        (
            {"calendar": {"timezone": "UTC", "hours": {"mon": ["00:00-00:01"]}},
             "slas": [{"name": "s", "deadline": "2w"}]},
            "slas[0].deadline: '2w' is too long: on this calendar it could take",
        ),
        (
            {"calendar": {**OFFICE, "holidays": [
                str(NOW.date() + timedelta(days=n)) for n in range(1001)]}},
            "calendar.holidays: 1001 dates is over the limit of 1000",
        ),
        (
            {"calendar": {"timezone": "UTC", "hours": {"mon": [
                f"{h:02d}:00-{h:02d}:30" for h in range(24)] + ["23:40-23:50"]}}},
            "calendar.hours.mon: 25 periods is over the limit of 24 a day",
        ),
        (
            {"slas": [{"name": "s", "deadline": "8h", "warn_at": list(range(1, 12))}]},
            "slas[0].warn_at: at most 10 warnings, not 11",
        ),
        ({"slas": [{"name": f"s{n}", "deadline": "1h"} for n in range(51)]}, "slas: 51 entries"),
        (
            {"calendar": OFFICE, "slas": [{"name": f"s{n}", "deadline": "52w"} for n in range(20)]},
            "slas: together the deadlines could take",
        ),
        ({"states": {f"s{n}": {} for n in range(501)}}, "states: 501 entries is over the limit"),
    ],
)  # fmt: skip
def test_every_duration_and_count_is_bounded_with_a_problem_by_path(
    change: dict[str, Any], problem: str
) -> None:
    problems = problems_in({**DOC, **change})
    assert any(p.startswith(problem) for p in problems), problems


def test_the_longest_allowed_deadline_still_publishes() -> None:
    assert problems_in({**DOC, "slas": [{"name": "s", "deadline": "2000d"}]}) == []


def drafted(count: int) -> CaseType:
    case_type = CaseType(name="tiny", context={"actor_id": "alice"})
    for _ in range(count):
        case_type.draft(DOC, "draft", {"actor_id": "alice"})
    return case_type


def test_a_case_type_keeps_at_most_ten_drafts_and_discarding_frees_a_place() -> None:
    case_type = drafted(MAX_DRAFTS)
    with pytest.raises(TooManyDrafts) as refused:
        case_type.draft(DOC, "one more", {"actor_id": "alice"})
    assert "caseledger case-types discard tiny 1" in refused.value.hint
    case_type.discard(4, "typo", {"actor_id": "bob"})
    assert case_type.draft(DOC, "again", {"actor_id": "alice"}) == MAX_DRAFTS + 1
    assert 4 not in case_type.versions
    with pytest.raises(InvalidCommand, match="v4 was discarded by bob: typo"):
        case_type.version_record(4)


def test_a_published_version_cannot_be_discarded() -> None:
    case_type = drafted(1)
    case_type.record_validation(1, [], {"actor_id": "alice"})
    case_type.waive_review(1, "test", {"actor_id": "alice"})
    case_type.publish(1, "go", {"actor_id": "alice"})
    with pytest.raises(InvalidTransition, match="published and cannot be discarded"):
        case_type.discard(1, "oops", {"actor_id": "alice"})
