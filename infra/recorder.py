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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from psycopg import Cursor, errors
from psycopg.sql import SQL, Composed, Identifier, Literal

from domain.values import MAX_EVENT_BYTES, MAX_SAVE_BYTES, MAX_SAVE_EVENTS
from infra.db import RECONNECT_GIVE_UP_S, ping_when_idle, wait_within_deadline
from infra.group_commit import GroupCommitter, Pending
from infra.idempotency import CLAIMED, insert_claims
from infra.idempotency import CONSTRAINT as CLAIMS_CONSTRAINT
from services.deadline import remaining
from services.errors import (
    OutcomeUnknown,
    RequestReplayed,
    SaveTooLarge,
    StoreBusy,
    StoreUnavailable,
)
from services.idempotency import Claim, current_claims
from services.metrics import observe_commit

#: Failures worth another attempt: the connection broke before the transaction committed
#: (the library's datastore wraps psycopg's errors in its own classes). A lock or statement
#: timeout is not among them: retrying would hold the caller for ever.
_RETRIED = (InterfaceError, OperationalError, errors.InterfaceError, errors.OperationalError)
_OUT_OF_TIME = (errors.LockNotAvailable, errors.QueryCanceled)
_ATTEMPTS = 3
_READ_ATTEMPTS = 10
_RETRY_WAIT_S = 0.2
_LEAST_S = 0.05  # a write is not started with less time than this left
_T = TypeVar("_T")
#: A save up to this size goes out in one round trip (pipeline mode); a larger one without.
_PIPELINED_MAX_BYTES = 64 * 1024
_TIMEOUTS = "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)"
_STORED_VERSIONS = """
SELECT originator_id, originator_version{more} FROM {schema}.{table}
WHERE (originator_id, originator_version) IN (SELECT * FROM unnest(%s::uuid[], %s::int[]))
"""


@dataclass(frozen=True)
class _Write:
    """One save waiting for the group commit: its events and its claims (idempotency keys,
    ingested records' dedup keys, external ids), written with them or not at all."""

    events: Sequence[StoredEvent]
    claims: tuple[Claim, ...]


#: What one save of a batch gets: its notification ids, or the error its caller raises.
_Outcome = Sequence[int] | BaseException


class BoundedApplicationRecorder(PostgresApplicationRecorder):
    """The library's application recorder, without pipeline mode, with write budgets, and
    honouring the caller's deadline (``services.deadline``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        wait_within_deadline(self.datastore.pool)
        ping_when_idle(self.datastore.pool)
        self.datastore.pool.reconnect_timeout = RECONNECT_GIVE_UP_S  # the library sets none
        self._timeout_ms = 1000 * max(1, int(self.datastore.lock_timeout or 5))
        self._lock_and_notify = SQL(
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; NOTIFY {channel}"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            channel=Identifier(self.channel_name),
        )
        self._lock_and_notify_statements = (
            SQL("LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE").format(
                schema=Identifier(self.datastore.schema),
                table=Identifier(self.events_table_name),
            ),
            SQL("NOTIFY {channel}").format(channel=Identifier(self.channel_name)),
        )
        table = {
            "schema": Identifier(self.datastore.schema),
            "table": Identifier(self.events_table_name),
        }
        self._stored_versions = SQL(_STORED_VERSIONS).format(more=SQL(""), **table)
        self._stored_versions_and_state = SQL(_STORED_VERSIONS).format(
            more=SQL(", notification_id, state"), **table
        )
        #: Saves that arrive together share a transaction (``infra.group_commit``); set its
        #: ``budget.commands`` to 1 to write every save alone.
        self.committer: GroupCommitter[_Write, Sequence[int]] = GroupCommitter(
            self._write_batch, _no_time_left
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        check_save_budget(stored_events)
        alone = any(v is not None for v in kwargs.values())  # e.g. a process's tracking
        if alone or not stored_events or self.committer.budget.commands <= 1:
            claims = current_claims()
            return self._with_retries(lambda: self._write_alone(stored_events, claims, **kwargs))
        left = remaining()
        if left is not None and left <= _LEAST_S:
            raise _no_time_left()
        write = _Write(stored_events, current_claims())
        return self.committer.submit(
            write,
            events=len(stored_events),
            size=sum(len(e.state) for e in stored_events),
            deadline=None if left is None else time.monotonic() + left,
        )

    def _write_batch(self, batch: Sequence[Pending[_Write, Sequence[int]]]) -> list[_Outcome]:
        """The committer's writer: one transaction for the batch, each write's own outcome.
        A write whose caller ran out of time while it queued is left out."""
        started, now = time.perf_counter(), time.monotonic()
        outcomes: list[_Outcome | None] = [None] * len(batch)
        live: list[int] = []
        for i, pending in enumerate(batch):
            if pending.deadline is not None and pending.deadline - now <= _LEAST_S:
                outcomes[i] = _no_time_left()
            else:
                live.append(i)
        if live:
            deadlines = [d for i in live if (d := batch[i].deadline) is not None]
            budget_ms = self._budget_ms(min(deadlines)) if deadlines else self._timeout_ms
            writes = [batch[i].item for i in live]
            if len(writes) == 1:
                results = [self._alone(writes[0], budget_ms)]
            else:
                results = self._with_retries(lambda: self._write_together(writes, budget_ms))
            for i, result in zip(live, results, strict=True):
                outcomes[i] = result
        stored = [o for o in outcomes if o is not None and not isinstance(o, BaseException)]
        if stored:
            observe_commit(len(stored), sum(map(len, stored)), time.perf_counter() - started)
        return [o for o in outcomes if o is not None]

    def _alone(self, write: _Write, budget_ms: int) -> _Outcome:
        """One save of a batch in a transaction of its own, as its outcome."""
        try:
            result = self._with_retries(
                lambda: self._write_alone(write.events, write.claims, budget_ms=budget_ms)
            )
        except Exception as error:  # noqa: BLE001 - the save's own outcome, raised by its caller
            return error
        return result or []

    def _with_retries(self, write: Callable[[], _T]) -> _T:
        """``write``, again after a broken connection, while the caller has time; a write
        whose COMMIT got no answer is looked for instead of written twice."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return write()
            except _CommitUnanswered as unanswered:
                found: _T = self._after_unanswered_commit(unanswered)
                return found
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

    def _budget_ms(self, deadline: float | None = None) -> int:
        """How long this write may wait and run: the write timeout, or what is left of the
        caller's deadline (``deadline``, or the current one). A write never starts after it."""
        left = remaining() if deadline is None else deadline - time.monotonic()
        if left is None:
            return self._timeout_ms
        if left <= _LEAST_S:
            raise _no_time_left()
        return max(int(_LEAST_S * 1000), min(self._timeout_ms, int(left * 1000)))

    def _write_alone(
        self,
        stored_events: Sequence[StoredEvent],
        claims: tuple[Claim, ...],
        budget_ms: int | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        """One save in a transaction of its own: a conflict raises the library's
        ``IntegrityError`` (or :class:`RequestReplayed` for the idempotency key)."""
        ids: Sequence[int] | None = None
        if not stored_events:
            return None
        budget_ms = budget_ms or self._budget_ms()
        if not kwargs and sum(len(e.state) for e in stored_events) <= _PIPELINED_MAX_BYTES:
            return self._write_pipelined(stored_events, claims, budget_ms)
        try:
            with self._transaction(budget_ms) as curs:
                self._insert_events(curs, stored_events, **kwargs)  # the library's hook
                if claims:
                    _insert_claims(curs, claims, stored_events)
                curs.execute(self.insert_events_statement, (self._rows(stored_events),))
                ids = self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
            return ids
        except _RETRIED as error:
            if ids is not None:  # every statement ran: only the COMMIT's answer is missing
                raise _CommitUnanswered(ids, stored_events) from error
            raise

    def _write_pipelined(
        self, stored_events: Sequence[StoredEvent], claims: tuple[Claim, ...], budget_ms: int
    ) -> Sequence[int]:
        """A small save in one round trip: BEGIN, the timeouts, the lock, the NOTIFY, the
        claim, the insert and COMMIT go out together in psycopg's pipeline mode and their
        answers come back together, so the table's lock is held for no network round trip.
        (Pipeline mode stalls on a query larger than the socket's send buffer, see the
        module's docstring, hence :data:`_PIPELINED_MAX_BYTES`.)"""
        ids: list[int] = []
        sent = failed = False
        with self.datastore.get_connection() as conn:
            error: BaseException | None = None
            try:
                with conn.pipeline() as pipeline:
                    try:
                        with conn.cursor() as curs:
                            curs.execute("BEGIN")
                            curs.execute(_TIMEOUTS, (f"{budget_ms}ms", f"{budget_ms}ms"))
                            curs.execute(self._lock_and_notify_statements[0])
                            curs.execute(self._lock_and_notify_statements[1])
                            if claims:
                                insert_claims(curs, _claim_rows(claims, stored_events))
                        with conn.cursor() as insert:
                            insert.execute(
                                self.insert_events_statement, (self._rows(stored_events),)
                            )
                            sent = True  # from here on, COMMIT may reach the server
                            conn.execute("COMMIT")
                            pipeline.sync()
                            ids = [row["notification_id"] for row in insert.fetchall()]
                    except Exception as caught:  # noqa: BLE001 - raised once the pipeline is left
                        error, failed = caught, True
            except Exception as caught:  # noqa: BLE001 - leaving the pipeline failed: a broken connection
                error, failed = error or caught, True
            if failed:
                if sent and _may_have_committed(error, broken=conn.broken):
                    raise _CommitUnanswered(None, stored_events) from error  # look, not retry
                with suppress(Exception):
                    conn.rollback()
                if (
                    isinstance(error, errors.UniqueViolation)
                    and claims
                    and error.diag.constraint_name == CLAIMS_CONSTRAINT
                ):
                    raise _replayed(claims) from None
                assert error is not None
                raise error
        return ids

    @contextmanager
    def _transaction(self, budget_ms: int) -> Iterator[Cursor[Any]]:
        """A transaction that holds the event table's lock, begun in the same round trip as
        the lock, its timeouts and the NOTIFY (the library's connections autocommit, and
        ``conn.transaction()`` would send BEGIN on its own); committed when the block ends,
        rolled back when it raises."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            try:
                curs.execute(SQL("BEGIN; ") + self._lock_statement(budget_ms))
                yield curs
            except BaseException:
                with suppress(Exception):  # a broken connection is discarded by the pool
                    conn.rollback()
                raise
            curs.execute("COMMIT")

    def _write_together(self, writes: Sequence[_Write], budget_ms: int) -> list[_Outcome]:
        """Several saves in one transaction under one table lock. Under the lock, one query
        finds which of their versions and idempotency keys are stored already: those saves
        (and a later one of the batch that wants the same version or key) fail alone, with the
        error they would get on their own; the others are inserted together and share the
        commit. Should the insert still meet a unique violation (a refusal recorded under the
        same key meanwhile), each save is written alone instead."""
        outcomes: list[_Outcome | None] = []
        winners: list[_Write] = []
        try:
            with self._transaction(budget_ms) as curs:
                outcomes, winners = self._sort_out(curs, writes)
                if winners:
                    rows = [row for w in winners for row in _claim_rows(w.claims, w.events)]
                    if rows:
                        insert_claims(curs, rows)
                    events = [e for w in winners for e in w.events]
                    curs.execute(self.insert_events_statement, (self._rows(events),))
                    ids = list(self._fetch_ids_after_insert_events(curs, events) or [])
                    _hand_out(ids, winners, outcomes)
        except (IntegrityError, errors.UniqueViolation):
            return [self._alone(w, budget_ms) for w in writes]
        except _RETRIED as error:
            if winners and all(o is not None for o in outcomes):  # only COMMIT's answer is lost
                raise _CommitUnanswered(outcomes, winners[0].events) from error
            raise
        return [o if o is not None else [] for o in outcomes]

    def _sort_out(
        self, curs: Any, writes: Sequence[_Write]
    ) -> tuple[list[_Outcome | None], list[_Write]]:
        """Which saves of the batch conflict (their error) and which go ahead (None)."""
        pairs = {(str(e.originator_id), e.originator_version) for w in writes for e in w.events}
        keys = {(c.scope, c.key) for w in writes for c in w.claims}
        claimed: set[tuple[str, str]] = set()
        ids, versions = zip(*pairs, strict=True)
        rows = curs.execute(self._stored_versions, (list(ids), list(versions))).fetchall()
        stored = {(str(row["originator_id"]), row["originator_version"]) for row in rows}
        if keys:
            scopes, names = zip(*keys, strict=True)
            rows = curs.execute(CLAIMED, (list(scopes), list(names))).fetchall()
            claimed = {(row["scope"], row["key"]) for row in rows}
        outcomes: list[_Outcome | None] = []
        winners: list[_Write] = []
        for write in writes:
            mine = {(str(e.originator_id), e.originator_version) for e in write.events}
            wanted = {(c.scope, c.key) for c in write.claims}
            if mine & stored:
                taken = min(mine & stored, key=lambda p: p[1])
                outcomes.append(
                    IntegrityError(f"version {taken[1]} of {taken[0]} is stored already")
                )
            elif wanted & claimed:
                outcomes.append(_replayed(write.claims, wanted & claimed))
            else:
                outcomes.append(None)
                winners.append(write)
                stored |= mine
                claimed |= wanted
        return outcomes, winners

    def _lock_statement(self, budget_ms: int) -> Composed:
        budget = SQL("SET LOCAL lock_timeout = {ms}; SET LOCAL statement_timeout = {ms}; ").format(
            ms=Literal(budget_ms)
        )
        return budget + self._lock_and_notify

    def _after_unanswered_commit(self, unanswered: _CommitUnanswered) -> Any:
        """The connection broke during COMMIT: look whether the events are there (a batch
        is one transaction: its first event tells for all of it), again and again while the
        caller has time. Never guessed: 503 means "not stored", so an outcome still unknown
        at the deadline is answered as unknown (504)."""
        while True:
            try:
                ids = self._ids_of(unanswered.events)
                break
            except _RETRIED as error:
                if _out_of_time() or remaining() is None:
                    raise OutcomeUnknown(
                        "the database went away while the command was being committed, and "
                        f"is not back to say whether it was stored ({describe_error(error)})",
                        hint="send it again with the same Idempotency-Key: if it was stored, "
                        "that answers its outcome; if not, it is stored then, once",
                    ) from error
                time.sleep(_RETRY_WAIT_S)
        if ids:
            return unanswered.result if unanswered.result is not None else ids
        raise StoreUnavailable(
            "the database went away while the command was being committed; it was not stored",
            hint="retry in a moment",
        )

    def _ids_of(self, events: Sequence[StoredEvent]) -> list[int]:
        """The notification ids of a save's ``events`` if that save is stored; none when
        its first event's version is not stored, or stored by another command (other bytes)."""
        first = events[0]
        with self.datastore.get_connection() as conn:
            rows = conn.execute(
                self._stored_versions_and_state,
                ([e.originator_id for e in events], [e.originator_version for e in events]),
            ).fetchall()
        mine = {(str(r["originator_id"]), r["originator_version"]): r for r in rows}
        head = mine.get((str(first.originator_id), first.originator_version))
        if head is None or bytes(head["state"]) != first.state or len(mine) != len(events):
            return []
        return sorted(r["notification_id"] for r in mine.values())

    def _rows(self, stored_events: Sequence[StoredEvent]) -> list[Any]:
        return [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]


def _insert_claims(
    curs: Any, claims: tuple[Claim, ...], stored_events: Sequence[StoredEvent]
) -> None:
    """Write the save's claims with its events."""
    try:
        insert_claims(curs, _claim_rows(claims, stored_events))
    except errors.UniqueViolation:
        raise _replayed(claims) from None


def _claimed_version(stored_events: Sequence[StoredEvent]) -> tuple[UUID | str, int]:
    """The case a command ran on (its first event's; child cases opened by rules follow)
    and the version the command brought it to: what its idempotency claim records."""
    case_id = stored_events[0].originator_id
    version = max(e.originator_version for e in stored_events if e.originator_id == case_id)
    return case_id, version


def _claim_rows(
    claims: tuple[Claim, ...], stored_events: Sequence[StoredEvent]
) -> list[tuple[Claim, UUID | str, int]]:
    """Each claim of a save, with the case it names and that case's new version (its own,
    or the save's first case's)."""
    first = _claimed_version(stored_events)
    return [
        (c, c.case_id, c.version)
        if c.case_id is not None and c.version is not None
        else (c, *first)
        for c in claims
    ]


def _hand_out(ids: Sequence[int], winners: Sequence[_Write], outcomes: list[Any]) -> None:
    """Give each stored save of a batch its own notification ids, in batch order."""
    assert len(ids) == sum(len(w.events) for w in winners), "one id per stored event"
    slots = [i for i, outcome in enumerate(outcomes) if outcome is None]
    start = 0
    for slot, write in zip(slots, winners, strict=True):
        outcomes[slot] = ids[start : start + len(write.events)]
        start += len(write.events)


def _replayed(
    claims: tuple[Claim, ...], taken: set[tuple[str, str]] | None = None
) -> RequestReplayed:
    """The refusal of a save one of whose claims another save stored meanwhile."""
    lost = [c for c in claims if taken is None or (c.scope, c.key) in taken] or list(claims)
    request = next((c for c in lost if not c.kept), None)
    if request is None:
        return RequestReplayed(
            f"{lost[0].key!r} was stored by another save that ran at the same time",
            hint="send it again: it is found and not stored twice",
        )
    return RequestReplayed(
        f"the request with Idempotency-Key {request.key!r} was stored by another request "
        "that ran at the same time",
        hint="send it again to get its outcome",
    )


def _no_time_left() -> StoreBusy:
    return StoreBusy(
        "the command ran out of time before it could be stored",
        hint="nothing was stored; retry in a moment (with the same Idempotency-Key)",
    )


class _CommitUnanswered(Exception):
    """The answer to COMMIT was lost. ``events`` (of one save) are stored if, and only if,
    the transaction committed; ``result`` is what the write answers then (None: their ids)."""

    def __init__(self, result: Any, events: Sequence[StoredEvent]) -> None:
        super().__init__("no answer to COMMIT")
        self.result = result
        self.events = events


def _may_have_committed(error: BaseException | None, *, broken: bool) -> bool:
    """Whether a pipelined save whose COMMIT was sent may be stored although it failed: the
    connection broke, or the server ended the session (an operator's fast shutdown ends it
    with "terminating connection", which can come after the commit record was flushed and
    before COMMIT's answer, while psycopg does not yet see the connection as broken). A
    statement that failed (a timeout, a unique violation) aborted the transaction: not stored.
    """
    if broken:
        return True
    if not isinstance(error, _RETRIED) or isinstance(error, _OUT_OF_TIME):
        return False
    state = getattr(error, "sqlstate", None)
    return state is None or state.startswith(("08", "57P"))


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
