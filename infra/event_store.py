"""Reads the event store as envelopes: its ordered log, and one case's events."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from psycopg import Connection
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier

from domain.case import Case
from domain.envelope import (
    SCHEMA_VERSION,
    Actor,
    EventEnvelope,
    SourceLineage,
    envelope_body,
    envelope_for,
    event_id_for,
    source_of,
)
from domain.event_names import data_fields, event_type
from services.application import CaseLedger, RecordedVersion
from services.contract import Headers, event_headers

CASE_TOPIC_PREFIX = f"{get_topic(Case)}."  # the topics of Case's nested event classes

Message = tuple[bytes, bytes, Headers]
"""A case event as the relay publishes it: the case id (the key), the envelope's JSON, and
the headers naming its type and schema version (``services.contract.event_headers``)."""

_LOG = """
SELECT notification_id, originator_id, originator_version, topic, state
FROM {events} WHERE notification_id > %s ORDER BY notification_id LIMIT %s
"""
#: Dates and dataclasses go through ``default=str`` as in ``EventEnvelope.to_json``.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

_CASE_EVENTS = """
SELECT notification_id, originator_id, originator_version, topic, state
FROM {events}
WHERE originator_id = %(case_id)s AND originator_version > %(after)s
  AND originator_version <= %(upto)s
ORDER BY originator_version
"""


#: When a stored event was recorded: the event's own timestamp (``recorded_at`` of its
#: envelope), read from its JSON state, as the library stores it.
_RECORDED = "(convert_from(state, 'UTF8')::jsonb #>> '{{timestamp,_data_}}')::timestamptz"
#: The case's version at a recorded moment (the newest event recorded by then, found from the
#: newest down the primary key, so a moment near the end reads few rows), when it was opened,
#: and its current version; one round trip.
_VERSION_AT = f"""
SELECT
  (SELECT originator_version FROM {{events}}
   WHERE originator_id = %(case_id)s AND {_RECORDED} <= %(at)s
   ORDER BY originator_version DESC LIMIT 1),
  (SELECT {_RECORDED} FROM {{events}}
   WHERE originator_id = %(case_id)s AND originator_version = 1),
  (SELECT max(originator_version) FROM {{events}} WHERE originator_id = %(case_id)s)
"""
#: The cases with an event recorded in ``[since, until)``, by the first one's position.
_CASES_TOUCHED = f"""
SELECT originator_id FROM {{events}}
WHERE topic LIKE %(topics)s AND {_RECORDED} >= %(since)s AND {_RECORDED} < %(until)s
GROUP BY originator_id ORDER BY min(notification_id)
"""
_POSITIONS = """
SELECT originator_version, notification_id FROM {events}
WHERE originator_id = %(case_id)s AND originator_version > %(after)s
  AND originator_version <= %(upto)s
"""


class EventStoreReader:
    """Turns stored events into the envelopes the relay publishes and projections apply."""

    def __init__(self, ledger: CaseLedger) -> None:
        self.ledger = ledger
        self.recorder = ledger.recorder
        #: Decodes stored events leaving personal values sealed, as stored: envelopes carry
        #: them so to Kafka and the read models (``services.personal_data``).
        self.mapper = ledger.stored_mapper
        table: str = self.recorder.events_table_name  # type: ignore[attr-defined]
        #: The store's table, for SQL; its NOTIFY channel has the same name.
        self.table = Identifier(table)
        self.channel = Identifier(table.replace(".", "_"))
        self._case_events = SQL(_CASE_EVENTS).format(events=self.table)
        self._log = SQL(_LOG).format(events=self.table)
        self._version_at = SQL(_VERSION_AT).format(events=self.table)
        self._cases_touched = SQL(_CASES_TOUCHED).format(events=self.table)
        self._positions = SQL(_POSITIONS).format(events=self.table)

    def sql(self, statement: str) -> Composed:
        """``statement`` with ``{events}`` naming the event store's table."""
        return SQL(statement).format(events=self.table)

    def version_at(self, case_id: UUID, at: datetime) -> RecordedVersion:
        """The version of case ``case_id`` at recorded moment ``at`` (``None`` when none of
        its events was recorded by then), when it was opened and its current version (both
        ``None`` when no case has that id): one query on the store."""
        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            row = cursor.execute(self._version_at, {"case_id": case_id, "at": at}).fetchone()
        return RecordedVersion(*row)

    def cases_touched(self, since: datetime, until: datetime) -> list[UUID]:
        """The cases with an event recorded in ``[since, until)``, in the order they were
        first touched then (one pass over the store; ids only)."""
        params = {"topics": f"{CASE_TOPIC_PREFIX}%", "since": since, "until": until}
        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            return [row[0] for row in cursor.execute(self._cases_touched, params)]

    def positions(self, case_id: UUID, after: int, upto: int) -> dict[int, int]:
        """The global position of each event of the case with ``after < version <= upto``."""
        params = {"case_id": case_id, "after": after, "upto": upto}
        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            return dict(cursor.execute(self._positions, params).fetchall())

    def head(self) -> int:
        """The global position of the newest stored event (0 for an empty store)."""
        return self.recorder.max_notification_id() or 0

    def read_log(self, after: int, limit: int) -> tuple[list[EventEnvelope], int]:
        """Case events among the next ``limit`` stored after global position ``after``, in
        commit order, and the position of the last one read (``after`` when none). Read as
        tuples on the store's own connection (as :meth:`read_messages` does): rebuilds read
        the whole store through here."""
        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            rows = cursor.execute(self._log, (after, limit), prepare=True).fetchall()
        envelopes = [
            self._envelope(StoredEvent(case_id, version, topic, bytes(state)), at)
            for at, case_id, version, topic, state in rows
            if topic.startswith(CASE_TOPIC_PREFIX)
        ]
        return envelopes, rows[-1][0] if rows else after

    def read_messages(self, after: int, limit: int) -> tuple[list[Message], int]:
        """What :meth:`read_log` reads, as the relay publishes it: case id, envelope JSON and
        headers, encoded from each decoded event without building an :class:`EventEnvelope`."""
        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            rows = cursor.execute(self._log, (after, limit), prepare=True).fetchall()
        messages = [
            self._message(StoredEvent(case_id, version, topic, bytes(state)), at)
            for at, case_id, version, topic, state in rows
            if topic.startswith(CASE_TOPIC_PREFIX)
        ]
        return messages, rows[-1][0] if rows else after

    def _message(self, stored: StoredEvent, position: int) -> Message:
        event = self.mapper.to_domain_event(stored)
        assert isinstance(event, Case.Event), f"not a case event: {stored.topic}"
        body = envelope_body(event, position)
        return body["case_id"].encode(), envelope_json(body), event_headers(body["type"])

    def case_events(
        self, conn: Connection[DictRow], case_id: UUID, after: int, upto: int
    ) -> list[EventEnvelope]:
        """The events of one case with ``after < case_version <= upto``, read on ``conn``."""
        rows = conn.execute(self._case_events, {"case_id": case_id, "after": after, "upto": upto})
        return [
            self._envelope(
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                ),
                row["notification_id"],
            )
            for row in rows.fetchall()
        ]

    def _envelope(self, stored: StoredEvent, position: int) -> EventEnvelope:
        fast = _plain_envelope(stored, position)
        if fast is not None:
            return fast
        event = self.mapper.to_domain_event(stored)
        assert isinstance(event, Case.Event), f"not a case event: {stored.topic}"
        return envelope_for(event, position)


#: Case event classes by stored topic, for :func:`_plain_envelope`.
_CLASSES = {get_topic(kind): kind for kind in Case.event_classes()}
_TYPED = b'"_type_"'


def _plain_envelope(stored: StoredEvent, position: int) -> EventEnvelope | None:
    """The envelope of a stored case event whose state is plain JSON with its timestamp as
    the only transcoded value and no upcast to apply (nearly all of them), decoded straight
    from the JSON, about four times faster than through the library's mapper; ``None`` for
    any other, which then goes through the mapper. tests/integration/test_event_store.py
    checks both ways agree on every event type. Sealed personal values are plain JSON
    objects (``{"sealed": ...}``, ``services.personal_data``): they pass through as stored."""
    kind = _CLASSES.get(stored.topic)
    state = stored.state
    if kind is None or not state.startswith(b"{") or state.count(_TYPED) != 1:
        return None
    raw = orjson.loads(state)
    stamp = raw.get("timestamp")
    if not isinstance(stamp, dict) or stamp.get("_type_") != "datetime_iso":
        return None
    if raw.get("class_version", 1) != getattr(kind, "class_version", 1):
        return None
    try:
        data = {name: raw[name] for name in data_fields(kind)}
    except KeyError:
        return None
    recorded = datetime.fromisoformat(stamp["_data_"])
    context: dict[str, Any] = raw.get("context") or {}
    occurred = context.get("occurred_at")
    case_id = str(stored.originator_id)
    return EventEnvelope(
        event_id=event_id_for(case_id, stored.originator_version),
        type=event_type(kind),
        case_id=case_id,
        case_type=context.get("case_type", ""),
        case_type_version=int(context.get("case_type_version", 0)),
        case_version=stored.originator_version,
        global_position=position,
        occurred_at=datetime.fromisoformat(occurred) if occurred else recorded,
        recorded_at=recorded,
        actor=Actor(id=context.get("actor_id", "unknown"), role=context.get("actor_role", "")),
        correlation_id=context.get("correlation_id", ""),
        causation_id=context.get("causation_id"),
        source=SourceLineage(**source_of(context)) if context.get("source_system") else None,
        schema_version=SCHEMA_VERSION,
        data=data,
    )


def envelope_json(body: dict[str, Any]) -> bytes:
    """The envelope's JSON as ``EventEnvelope.to_json`` writes it, equal once parsed (not in
    bytes: text is UTF-8 here, ``\\u`` escapes there), about ten times faster. What orjson
    cannot encode (integers beyond 64 bits, keys that are not text) goes the standard way.
    NaN, which orjson would write as null, never gets this far: ``domain.values`` refuses it."""
    try:
        return orjson.dumps(body, default=str, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(body, separators=(",", ":"), default=str, allow_nan=False).encode()
