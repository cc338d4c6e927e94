"""The event store reader's fast decoding gives the envelope the library's mapper gives, for
every event type (issue 11: rebuilds read the whole store through it)."""

from __future__ import annotations

from eventsourcing.persistence import StoredEvent

from domain.case import Case
from domain.envelope import envelope_for
from infra.bootstrap import Container
from infra.event_store import CASE_TOPIC_PREFIX, _plain_envelope
from infra.settings import Settings
from tests.integration.test_event_contracts import toured


def test_the_plain_decoding_equals_the_library_mapping_for_every_event_type(
    container: Container, settings: Settings
) -> None:
    toured(container, settings)  # every event type, by real commands
    with container.pool.connection() as conn:
        rows = conn.execute(
            container.reader.sql(
                "SELECT notification_id, originator_id, originator_version, topic, state"
                " FROM {events} ORDER BY notification_id"
            )
        ).fetchall()
    plain = set()
    for row in rows:
        if not row["topic"].startswith(CASE_TOPIC_PREFIX):
            continue
        stored = StoredEvent(
            row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"])
        )
        event = container.ledger.mapper.to_domain_event(stored)
        assert isinstance(event, Case.Event)
        expected = envelope_for(event, 7)
        fast = _plain_envelope(stored, 7)
        if fast is not None:
            assert fast == expected, row["topic"]
            plain.add(fast.type)
    assert plain == set(Case.event_types())


def test_an_upcast_or_transcoded_event_goes_through_the_library() -> None:
    old = StoredEvent(
        originator_id="00000000-0000-4000-8000-000000000001",
        originator_version=2,
        topic=f"{CASE_TOPIC_PREFIX}StatusChanged",
        state=b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
        b'"from_status":"a","to_status":"b","reason":null,"context":{}}',
    )
    assert _plain_envelope(old, 1) is None  # version 1 of StatusChanged: upcast first
    typed = StoredEvent(
        originator_id="00000000-0000-4000-8000-000000000001",
        originator_version=2,
        topic=f"{CASE_TOPIC_PREFIX}NoteAdded",
        state=b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00+00:00"},'
        b'"text":{"_type_":"decimal_str","_data_":"1"},"context":{}}',
    )
    assert _plain_envelope(typed, 1) is None
