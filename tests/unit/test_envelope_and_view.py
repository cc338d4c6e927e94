"""The published envelope and the case-list projection logic, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.case import Case
from domain.context import CommandContext
from domain.envelope import EventEnvelope, envelope_for, event_id_for
from domain.errors import InvalidCommand
from projections.base import CaseRows, only
from projections.case_list import CASE_LIST, CaseListProjection
from services.queries import PageCursor
from tests.case_types import shipped

WHEN = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
CTX = CommandContext(
    "silo-sync", "integrator", source_system="legacy-crm", source_record_id="R-9", occurred_at=WHEN
).as_dict()


def envelopes() -> list[EventEnvelope]:
    generic = shipped("generic")
    case = Case.open(generic, "Leak", {}, None, CTX, WHEN)
    case.assign("bob", CTX)
    case.close(generic, "fixed", CTX, WHEN)
    return [envelope_for(e, 100 + i) for i, e in enumerate(case.collect_events())]


def test_envelope_carries_lineage_actor_effective_time_and_round_trips_as_json() -> None:
    opened = envelopes()[0]
    assert opened.source is not None
    assert (opened.source.system, opened.source.record_id) == ("legacy-crm", "R-9")
    assert (opened.actor.id, opened.actor.role) == ("silo-sync", "integrator")
    assert opened.occurred_at == WHEN
    assert opened.recorded_at != WHEN
    assert opened.event_id == event_id_for(opened.case_id, 1)
    assert "context" not in opened.data and "originator_topic" not in opened.data
    assert EventEnvelope.from_json(opened.to_json()) == opened


def _fold(*events: EventEnvelope) -> CaseRows:
    projection = CaseListProjection(lambda _type, _version, status: status == "closed")
    rows: CaseRows = {"case_list": {}}
    for event in events:
        projection.apply(rows, event)
    return rows


def test_the_view_follows_the_events() -> None:
    events = envelopes()
    row = only(_fold(*events), CASE_LIST)
    assert row is not None
    status = (row["status"], row["assignee"], row["version"], row["last_position"])
    assert status == ("closed", "bob", 3, 102)
    assert (row["final"], row["closed_at"]) == (True, events[2].recorded_at)


def test_the_view_refuses_a_case_it_never_saw_opened() -> None:
    with pytest.raises(ValueError, match="no row"):
        _fold(envelopes()[1])


def test_cursor_round_trips_and_refuses_forgeries() -> None:
    cursor = PageCursor(WHEN, "0b7a4a3e-5f0e-4f53-9a53-7a7d3f2f0c11")
    assert PageCursor.decode(cursor.encode()) == cursor
    for forged in ["nonsense", cursor.encode()[:-3], "W1wi"]:
        with pytest.raises(InvalidCommand):
            PageCursor.decode(forged)
