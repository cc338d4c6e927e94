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

import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from psycopg import errors
from psycopg.sql import SQL, Identifier, Literal

from domain.values import MAX_EVENT_BYTES, MAX_SAVE_BYTES, MAX_SAVE_EVENTS
from infra.db import RECONNECT_GIVE_UP_S, wait_within_deadline
from infra.idempotency import insert_claim
from services.deadline import remaining
from services.errors import RequestReplayed, SaveTooLarge, StoreBusy, StoreUnavailable
from services.idempotency import Claim, current_claim

#: Failures worth another attempt: the connection broke before the transaction committed
#: (the library's datastore wraps psycopg's errors in its own classes). A lock or statement
#: timeout is not among them: retrying would hold the caller for ever.
_RETRIED = (InterfaceError, OperationalError, errors.InterfaceError, errors.OperationalError)
_OUT_OF_TIME = (errors.LockNotAvailable, errors.QueryCanceled)
_ATTEMPTS = 3
_READ_ATTEMPTS = 10
_RETRY_WAIT_S = 0.2
_LEAST_S = 0.05  # a write is not started with less time than this left


class BoundedApplicationRecorder(PostgresApplicationRecorder):
    """The library's application recorder, without pipeline mode, with write budgets, and
    honouring the caller's deadline (``services.deadline``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        wait_within_deadline(self.datastore.pool)
        self.datastore.pool.reconnect_timeout = RECONNECT_GIVE_UP_S  # the library sets none
        self._timeout_ms = 1000 * max(1, int(self.datastore.lock_timeout or 5))
        self._lock_and_notify = SQL(
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; NOTIFY {channel}"
        ).format(
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
                return self._write(stored_events, self._budget_ms(), **kwargs)
            except _CommitUnanswered as unanswered:
                return self._after_unanswered_commit(stored_events, unanswered)
            except _RETRIED as error:
                cause = error if isinstance(error, _OUT_OF_TIME) else error.__cause__
                if isinstance(cause, _OUT_OF_TIME):
                    raise StoreBusy(
                        f"the event store did not accept the write in time ({_reason(cause)})",
                        hint="nothing was stored; retry in a moment",
                    ) from None
                if attempt == _ATTEMPTS or _out_of_time():
                    raise _unavailable(error, "nothing was stored") from error
                time.sleep(_RETRY_WAIT_S)
        raise AssertionError("unreachable")  # pragma: no cover

    def select_events(self, originator_id: UUID | str, **kwargs: Any) -> Sequence[StoredEvent]:
        """The library's read, retried only while the caller's deadline allows."""
        read = PostgresAggregateRecorder.select_events.__wrapped__
        for attempt in range(1, _READ_ATTEMPTS + 1):
            try:
                events: Sequence[StoredEvent] = read(self, originator_id, **kwargs)
                return events
            except _RETRIED as error:
                if attempt == _READ_ATTEMPTS or _out_of_time():
                    raise _unavailable(error, "retry in a moment") from error
                time.sleep(_RETRY_WAIT_S)
        raise AssertionError("unreachable")  # pragma: no cover

    def _budget_ms(self) -> int:
        """How long this write may wait and run: the write timeout, or what is left of the
        caller's deadline. A write never starts after the deadline."""
        left = remaining()
        if left is None:
            return self._timeout_ms
        if left <= _LEAST_S:
            raise StoreBusy(
                "the command ran out of time before it could be stored",
                hint="nothing was stored; retry in a moment (with the same Idempotency-Key)",
            )
        return max(int(_LEAST_S * 1000), min(self._timeout_ms, int(left * 1000)))

    def _write(
        self, stored_events: Sequence[StoredEvent], budget_ms: int, **kwargs: Any
    ) -> Sequence[int] | None:
        ids: Sequence[int] | None = None
        try:
            with self.datastore.get_connection() as conn:
                with conn.transaction(), conn.cursor() as curs:
                    self._insert_events(curs, stored_events, **kwargs)  # the library's hook
                    if not stored_events:
                        return None
                    budget = SQL(
                        "SET LOCAL lock_timeout = {ms}; SET LOCAL statement_timeout = {ms}; "
                    ).format(ms=Literal(budget_ms))
                    curs.execute(budget + self._lock_and_notify)
                    claim = current_claim()
                    if claim is not None:
                        _insert_claim(curs, claim, stored_events)
                    curs.execute(self.insert_events_statement, (self._rows(stored_events),))
                    ids = self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
                return ids
        except _RETRIED as error:
            if ids is not None:  # every statement ran: only the COMMIT's answer is missing
                raise _CommitUnanswered(ids) from error
            raise

    def _after_unanswered_commit(
        self, stored_events: Sequence[StoredEvent], unanswered: _CommitUnanswered
    ) -> Sequence[int]:
        """The connection broke during COMMIT: look whether the events are there."""
        first = stored_events[0]
        try:
            found = self._select_one(first.originator_id, first.originator_version)
        except _RETRIED as error:
            raise StoreUnavailable(
                "the database went away while the command was being committed, and is not "
                f"back to say whether it was stored ({describe_error(error)})",
                hint="retry with the same Idempotency-Key: it is stored exactly once",
            ) from error
        if found:
            return unanswered.ids
        raise StoreUnavailable(
            "the database went away while the command was being committed; it was not stored",
            hint="retry in a moment",
        )

    def _select_one(self, originator_id: UUID | str, version: int) -> bool:
        with self.datastore.get_connection() as conn:
            row = conn.execute(
                SQL(
                    "SELECT 1 FROM {schema}.{table}"
                    " WHERE originator_id = %s AND originator_version = %s"
                ).format(
                    schema=Identifier(self.datastore.schema),
                    table=Identifier(self.events_table_name),
                ),
                (originator_id, version),
            ).fetchone()
        return row is not None

    def _rows(self, stored_events: Sequence[StoredEvent]) -> list[Any]:
        return [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]


def _insert_claim(curs: Any, claim: Claim, stored_events: Sequence[StoredEvent]) -> None:
    """Write the request's idempotency claim with the events: the first event is the case the
    command ran on (child cases opened by rules follow it)."""
    case_id = stored_events[0].originator_id
    version = max(e.originator_version for e in stored_events if e.originator_id == case_id)
    try:
        insert_claim(curs, claim, case_id, version)
    except errors.UniqueViolation:
        raise RequestReplayed(
            f"the request with Idempotency-Key {claim.key!r} was stored by another request "
            "that ran at the same time",
            hint="send it again to get its outcome",
        ) from None


class _CommitUnanswered(Exception):
    def __init__(self, ids: Sequence[int]) -> None:
        super().__init__("no answer to COMMIT")
        self.ids = ids


def _out_of_time() -> bool:
    left = remaining()
    return left is not None and left <= _RETRY_WAIT_S


def _unavailable(error: BaseException, then: str) -> StoreUnavailable:
    return StoreUnavailable(
        f"the event store is unavailable ({describe_error(error)})",
        hint=f"{then}; retry in a moment",
    )


def describe_error(error: BaseException) -> str:
    cause = error.__cause__ or error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__


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
