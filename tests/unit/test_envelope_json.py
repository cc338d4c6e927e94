"""The relay's fast envelope JSON says exactly what ``EventEnvelope.to_json`` says, for events
as the relay gets them: stored, then decoded by the application's mapper."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID, uuid5

from eventsourcing.application import Application
from hypothesis import given
from hypothesis import strategies as st

from domain.case import Case
from domain.context import CommandContext, Lineage
from domain.envelope import _EVENT_NAMESPACE, envelope_body, envelope_for, event_id_for
from infra.event_store import envelope_json
from tests.case_types import shipped

WHEN = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
READ = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
INGESTED = CommandContext(
    "silo-sync",
    "integrator",
    source_system="legacy-crm",
    source_record_id="R-9",
    occurred_at=WHEN,
    lineage=Lineage("crm_export", 3, "export.csv:12", "batch-1", READ),
).as_dict()
TYPED = CommandContext("zoë", "handler").as_dict()


def stored_and_decoded() -> list[Case.Event]:
    """The events of a case's whole life, through the mapper as the relay reads them."""
    generic = shipped("generic")
    fields = {"n": 2**70, "ratio": 0.1, "nested": {"list": [1, "ü", None, True]}}
    case = Case.open(generic, "Fuite d'eau 🚰", fields, None, INGESTED, WHEN)
    case.assign("bob", TYPED)
    case.route("triage", TYPED)
    case.set_priority("high", TYPED)
    case.escalate("stuck", TYPED)
    case.update_fields(generic, {"n": -1, "quote": '"\\\n\t'}, TYPED, None)
    case.add_note("naïve — \u2028 line separator", TYPED)
    case.close(generic, "fixed", TYPED, WHEN)
    case.reopen(generic, "not fixed", TYPED, WHEN)
    mapper = Application[UUID]().mapper
    decoded = [mapper.to_domain_event(mapper.to_stored_event(e)) for e in case.collect_events()]
    return [e for e in decoded if isinstance(e, Case.Event)]


def test_the_fast_json_parses_equal_to_the_envelopes_own_for_every_kind_of_event() -> None:
    events = stored_and_decoded()
    assert len({type(e) for e in events}) >= 9
    for position, event in enumerate(events, start=1):
        reference = envelope_for(event, position).to_json()
        fast = envelope_json(envelope_body(event, position))
        assert json.loads(fast) == json.loads(reference), type(event).__name__


def test_lineage_and_effective_time_reach_the_fast_json() -> None:
    opened = json.loads(envelope_json(envelope_body(stored_and_decoded()[0], 7)))
    assert opened["source"] == {
        "system": "legacy-crm",
        "record_id": "R-9",
        "connector": "crm_export",
        "connector_version": 3,
        "position": "export.csv:12",
        "batch_id": "batch-1",
        "read_at": READ.isoformat(),
    }
    assert opened["occurred_at"] == WHEN.isoformat()
    assert opened["data"]["fields"]["n"] == 2**70  # beyond 64 bits: the standard encoder's


@given(st.uuids(), st.integers(min_value=1, max_value=10**9), st.booleans())
def test_the_event_id_is_the_uuid5_of_case_and_version(
    case_id: UUID, version: int, as_text: bool
) -> None:
    expected = str(uuid5(_EVENT_NAMESPACE, f"{case_id}/{version}"))
    assert event_id_for(str(case_id) if as_text else case_id, version) == expected
