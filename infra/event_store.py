"""Reads the event store as envelopes: its ordered log, and one case's events."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from psycopg import Connection
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier

from domain.case import Case
from domain.envelope import EventEnvelope, envelope_body, envelope_for
from services.application import CaseLedger
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


class EventStoreReader:
    """Turns stored events into the envelopes the relay publishes and projections apply."""

    def __init__(self, ledger: CaseLedger) -> None:
        self.ledger = ledger
        self.recorder = ledger.recorder
        table: str = self.recorder.events_table_name  # type: ignore[attr-defined]
        #: The store's table, for SQL; its NOTIFY channel has the same name.
        self.table = Identifier(table)
        self.channel = Identifier(table.replace(".", "_"))
        self._case_events = SQL(_CASE_EVENTS).format(events=self.table)
        self._log = SQL(_LOG).format(events=self.table)

    def sql(self, statement: str) -> Composed:
        """``statement`` with ``{events}`` naming the event store's table."""
        return SQL(statement).format(events=self.table)

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
        event = self.ledger.mapper.to_domain_event(stored)
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
        event = self.ledger.mapper.to_domain_event(stored)
        assert isinstance(event, Case.Event), f"not a case event: {stored.topic}"
        return envelope_for(event, position)


def envelope_json(body: dict[str, Any]) -> bytes:
    """The envelope's JSON as ``EventEnvelope.to_json`` writes it, equal once parsed (not in
    bytes: text is UTF-8 here, ``\\u`` escapes there), about ten times faster. What orjson
    cannot encode (integers beyond 64 bits, keys that are not text) goes the standard way.
    NaN, which orjson would write as null, never gets this far: ``domain.values`` refuses it."""
    try:
        return orjson.dumps(body, default=str, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(body, separators=(",", ":"), default=str, allow_nan=False).encode()
