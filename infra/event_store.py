"""Reads the event store as envelopes: its ordered log, and one case's events."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg import Connection
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from domain.case import Case
from domain.envelope import EventEnvelope, envelope_for
from services.application import CaseLedger

CASE_TOPIC_PREFIX = "domain.case:Case."

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

    def sql(self, statement: str) -> Composed:
        """``statement`` with ``{events}`` naming the event store's table."""
        return SQL(statement).format(events=self.table)

    def head(self) -> int:
        """The global position of the newest stored event (0 for an empty store)."""
        return self.recorder.max_notification_id() or 0

    def read_log(self, after: int, limit: int) -> tuple[list[EventEnvelope], int]:
        """Case events among the next ``limit`` stored after global position ``after``, in
        commit order, and the position of the last one read (``after`` when none)."""
        notifications = self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        envelopes = [
            self._envelope(n, n.id) for n in notifications if n.topic.startswith(CASE_TOPIC_PREFIX)
        ]
        return envelopes, notifications[-1].id if notifications else after

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
