"""The event store's writer: the eventsourcing library's gap-free insert, made safe to lose.

The library's ``PostgresApplicationRecorder`` inserts in psycopg's pipeline mode. When the
insert is larger than the socket's send buffer (about 600 KB on a Unix socket, a few MB over
TCP), psycopg stops flushing before the whole query has left (its pipeline loop ends when no
command is queued, whether or not ``flush()`` finished), then waits for an answer the server
cannot give: the server sits in ``ClientRead`` holding the event table's EXCLUSIVE lock, and
every other write waits behind it. This recorder keeps the library's protocol (the table lock
that makes commit order equal notification order, the NOTIFY, ``RETURNING notification_id``)
but sends it outside pipeline mode, where psycopg flushes until everything is sent.

It also gives every write a budget:
- a save is refused before anything is sent when it is too large (:data:`MAX_EVENT_BYTES`,
  :data:`MAX_SAVE_BYTES`, :data:`MAX_SAVE_EVENTS`);
- the lock wait and the statement each have a timeout, and a write that runs out of time
  is not retried: it fails at once with :class:`~services.errors.StoreBusy`, and nothing
  is stored.

The library builds it from the topic in ``APPLICATION_RECORDER_TOPIC`` (``infra.db``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import errors
from psycopg.sql import SQL, Identifier

from domain.values import MAX_EVENT_BYTES, MAX_SAVE_BYTES, MAX_SAVE_EVENTS
from services.errors import SaveTooLarge, StoreBusy

#: Failures worth another attempt: the connection broke before the transaction committed
#: (the library's datastore wraps psycopg's errors in its own classes). A lock or statement
#: timeout is not among them: retrying would hold the caller for ever.
_RETRIED = (InterfaceError, OperationalError, errors.InterfaceError, errors.OperationalError)
_OUT_OF_TIME = (errors.LockNotAvailable, errors.QueryCanceled)
_ATTEMPTS = 3


class BoundedApplicationRecorder(PostgresApplicationRecorder):
    """The library's application recorder, without pipeline mode and with write budgets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        seconds = max(1, int(self.datastore.lock_timeout or 5))
        # One round trip sets the budgets, takes the lock and queues the NOTIFY.
        self._begin_write = SQL(
            "SET LOCAL lock_timeout = '{seconds}s'; "
            "SET LOCAL statement_timeout = '{seconds}s'; "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}"
        ).format(
            seconds=seconds,
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            channel=Identifier(self.channel_name),
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        check_save_budget(stored_events)
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return self._write(stored_events, **kwargs)
            except _RETRIED as error:
                cause = error if isinstance(error, _OUT_OF_TIME) else error.__cause__
                if isinstance(cause, _OUT_OF_TIME):
                    raise StoreBusy(
                        f"the event store did not accept the write in time ({_reason(cause)})",
                        hint="nothing was stored; retry in a moment",
                    ) from None
                if attempt == _ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _write(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)  # the library's hook (tracking)
            if not stored_events:
                return None
            curs.execute(self._begin_write)
            curs.execute(self.insert_events_statement, (self._rows(stored_events),))
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

    def _rows(self, stored_events: Sequence[StoredEvent]) -> list[Any]:
        return [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]


def check_save_budget(stored_events: Sequence[StoredEvent]) -> None:
    """Refuse a save that is too large, naming the limit it breaks."""
    if len(stored_events) > MAX_SAVE_EVENTS:
        raise SaveTooLarge(
            f"this command would store {len(stored_events):,} events at once; a command may "
            f"store at most {MAX_SAVE_EVENTS:,}",
            hint="check the case type's rules: a rule that opens child cases may fan out too far",
        )
    total = 0
    for event in stored_events:
        size = len(event.state)
        if size > MAX_EVENT_BYTES:
            kind = event.topic.rsplit(":", 1)[-1].replace(".", "")  # Case.Opened: CaseOpened
            raise SaveTooLarge(
                f"the event {kind} would take {size:,} bytes; an event may take at most "
                f"{MAX_EVENT_BYTES:,} bytes (titles, fields and notes count)",
                hint="send smaller values; upload documents and attachments with POST /documents "
                "and put the reference it answers (sha256:...) in a field",
            )
        total += size
    if total > MAX_SAVE_BYTES:
        raise SaveTooLarge(
            f"this command would store {total:,} bytes of events; a command may store at most "
            f"{MAX_SAVE_BYTES:,} bytes",
            hint="split the change into several commands, or check rules that open child cases",
        )


def _reason(error: BaseException) -> str:
    if isinstance(error, errors.LockNotAvailable):
        return "another write held the event table's lock for too long"
    return "the statement ran out of time"
