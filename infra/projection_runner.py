"""The projection runner: applies batches of case events to one projection, exactly once.

One mechanism runs every projection (``projections.base``). For a batch it locks and reads
the tracking rows of every case in the batch together, skips what a case reflects already,
fills a version gap from the event store, reads the cases' rows in one query per table,
folds the events over them in memory, and writes what changed in bulk (COPY into a staging
table, then one upsert per table), in one transaction with the new versions. The caller
commits its Kafka offsets after that transaction.

An event the projection cannot apply (the fold raises, or PostgreSQL refuses a value) is
set aside in ``projection_dead_letters`` with its error, and its case is held at the
version before it: the case's later events wait behind it, in order, until ``retry``
applies them from the store after a fix. Other cases go on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Connection, DataError
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from domain.envelope import EventEnvelope
from infra.event_store import CASE_TOPIC_PREFIX, EventStoreReader
from infra.projection_tables import Generation, create
from projections.base import CaseRows, Key, Row, Table

log = logging.getLogger(__name__)

#: What the fold raises for an event it cannot read.
FOLD_ERRORS = (ValueError, TypeError, KeyError, AttributeError, AssertionError)
#: What PostgreSQL raises for a value it cannot hold (a NUL in jsonb, a date out of range).
_WRITE_ERRORS = (DataError,)
_MISSING = """
SELECT s.notification_id, s.originator_id, s.originator_version
FROM {events} s LEFT JOIN {versions} v ON v.case_id = s.originator_id
WHERE s.notification_id > %(after)s AND s.notification_id <= %(upto)s
  AND s.topic LIKE %(topic)s AND COALESCE(v.version, 0) < s.originator_version
  AND v.blocked_version IS NULL
ORDER BY s.notification_id
"""


@dataclass(frozen=True)
class ApplyResult:
    applied: int
    skipped: int
    filled: int
    held: int = 0  # events of cases held behind a dead letter
    set_aside: int = 0


@dataclass
class _Case:
    """One case's work in a batch: its events to apply and its rows before and after."""

    case_id: str
    version: int
    events: list[EventEnvelope]
    before: CaseRows
    after: CaseRows
    existed: bool = True  # the case has a tracking row already
    applied: int = 0
    blocked: EventEnvelope | None = None
    error: BaseException | None = None


class ProjectionRunner:
    """Applies case events to one generation of one projection."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[DictRow]],
        reader: EventStoreReader,
        generation: Generation,
    ) -> None:
        self.pool = pool
        self.reader = reader
        self.gen = generation
        self.projection = generation.projection
        self._versions = Identifier(generation.versions)
        self._missing = reader.sql(_MISSING.replace("{versions}", '"' + generation.versions + '"'))

    @property
    def name(self) -> str:
        return self.projection.name

    def create_tables(self) -> None:
        with self.pool.connection() as conn, conn.transaction():
            create(conn, self.gen)

    # -- applying ------------------------------------------------------------------------

    def apply_batch(
        self,
        events: Sequence[EventEnvelope],
        conn: Connection[DictRow] | None = None,
        watermark: int | None = None,
    ) -> ApplyResult:
        """Apply ``events`` (any cases, any order, duplicates allowed) in one transaction;
        safe to call again with the same events. With ``watermark``, record in the same
        transaction that every stored case event up to it is applied (rebuilds resume from
        there). On ``conn``, run inside the caller's transaction (as a savepoint)."""
        try:
            return self._apply(events, careful=False, conn=conn, watermark=watermark)
        except _Raced:
            return self._apply(events, careful=False, conn=conn, watermark=watermark)
        except _WRITE_ERRORS:
            # A value PostgreSQL refuses: find its event by writing one event at a time.
            return self._apply(events, careful=True, conn=conn, watermark=watermark)

    def _apply(
        self,
        events: Sequence[EventEnvelope],
        careful: bool,
        conn: Connection[DictRow] | None,
        watermark: int | None,
    ) -> ApplyResult:
        with self._transaction(conn) as tx:
            # A read model is rebuilt from the store: a commit lost in a server crash is
            # healed by the store sweep (its versions and watermark are lost with it), so
            # the transaction need not wait for its commit to reach the disk.
            tx.execute("SET LOCAL synchronous_commit = off")
            tx.execute("SELECT pg_advisory_xact_lock_shared(%s)", (self.gen.lock_id,))
            by_case = _by_case(events)
            tracked = self._lock(tx, sorted(by_case))
            # A version given twice in the batch counts as skipped once more.
            work, held = [], 0
            skipped = len(events) - sum(len(found) for found in by_case.values())
            for case_id, case_events in by_case.items():
                version, blocked, existed = tracked[case_id]
                pending = [e for e in case_events if e.case_version > version]
                skipped += len(case_events) - len(pending)
                if blocked is not None:
                    held += len(pending)
                    continue
                if pending:
                    pending = self._complete(tx, case_id, version, pending)
                    work.append(_Case(case_id, version, pending, {}, {}, existed=existed))
            self._read_rows(tx, work)
            if careful:
                done = [self._apply_carefully(tx, case) for case in work]
            else:
                for case in work:
                    self._fold(case)
                self._write(tx, work)
                done = work
            applied = sum(c.applied for c in done)
            filled = sum(max(0, c.applied - _delivered(c, by_case)) for c in done)
            aside = [c for c in done if c.blocked is not None]
            self._set_aside(tx, aside)
            self._track(tx, done, events, watermark, applied)
        return ApplyResult(applied, skipped, filled, held, len(aside))

    @contextmanager
    def _transaction(self, conn: Connection[DictRow] | None) -> Iterator[Connection[DictRow]]:
        """A transaction (a savepoint on ``conn``) in pipeline mode: statements whose
        results are not read go out without waiting for each answer."""
        if conn is not None:
            with conn.pipeline(), conn.transaction():
                yield conn
            return
        with self.pool.connection() as own, own.pipeline(), own.transaction():
            yield own

    def _lock(
        self, tx: Connection[DictRow], case_ids: list[str]
    ) -> dict[str, tuple[int, Any, bool]]:
        """Lock the tracking rows of ``case_ids`` in a fixed order, so that two workers never
        wait on each other in a cycle. A case without one is new here (version 0): its row
        is inserted at the end, and a worker that finds it inserted meanwhile starts over."""
        rows = tx.execute(
            SQL(
                "SELECT case_id, version, blocked_version FROM {} WHERE case_id = ANY(%s::uuid[])"
                " ORDER BY case_id FOR UPDATE"
            ).format(self._versions),
            (case_ids,),
        ).fetchall()
        found = {str(r["case_id"]): (r["version"], r["blocked_version"], True) for r in rows}
        return {case_id: found.get(case_id, (0, None, False)) for case_id in case_ids}

    def _complete(
        self, tx: Connection[DictRow], case_id: str, version: int, pending: list[EventEnvelope]
    ) -> list[EventEnvelope]:
        """``pending`` with what the batch lacks between ``version`` and its last event read
        from the store (a gap after a lost message, or events the topic never carried)."""
        wanted = range(version + 1, pending[-1].case_version + 1)
        if [e.case_version for e in pending] == list(wanted):
            return pending
        return self.reader.case_events(tx, UUID(case_id), version, pending[-1].case_version)

    def _read_rows(self, tx: Connection[DictRow], work: list[_Case]) -> None:
        for case in work:
            case.before = {t.name: {} for t in self.projection.tables}
        if not work:
            return
        cases = {c.case_id: c for c in work}
        for table in self.projection.tables:
            query = SQL("SELECT {} FROM {} WHERE case_id = ANY(%s::uuid[])").format(
                SQL(", ").join(Identifier(c) for c in table.written), self.gen.ident(table)
            )
            for raw in tx.execute(query, (list(cases),)).fetchall():
                row = _from_db(raw)
                cases[row["case_id"]].before[table.name][table.key_of(row)] = row

    def _fold(self, case: _Case) -> None:
        """Fold the case's events over its rows; stop at the first that cannot be applied,
        leaving the rows as the events before it made them."""
        case.after = _copy(case.before)
        for index, event in enumerate(case.events):
            try:
                self.projection.apply(case.after, event)
            except FOLD_ERRORS as error:
                case.after = _copy(case.before)
                for earlier in case.events[:index]:
                    self.projection.apply(case.after, earlier)
                case.applied, case.blocked, case.error = index, event, error
                return
        case.applied = len(case.events)

    def _apply_carefully(self, tx: Connection[DictRow], case: _Case) -> _Case:
        """Apply one event at a time, each in a savepoint, until one cannot be written."""
        base = _copy(case.before)
        for index, event in enumerate(case.events):
            step = _Case(case.case_id, case.version + index, [event], base, {})
            self._fold(step)
            if step.blocked is None:
                try:
                    with tx.transaction():
                        self._write(tx, [step])
                except _WRITE_ERRORS as error:
                    step.blocked, step.error = event, error
            if step.blocked is not None:
                case.applied, case.blocked, case.error = index, step.blocked, step.error
                return case
            base = step.after
        case.applied = len(case.events)
        return case

    def _write(self, tx: Connection[DictRow], work: Iterable[_Case]) -> None:
        """Write what the folds changed: upserts through COPY, deletes by key."""
        for table in self.projection.tables:
            upserts: list[Row] = []
            deletes: list[Key] = []
            for case in work:
                before, after = case.before[table.name], case.after[table.name]
                upserts += [row for key, row in after.items() if before.get(key) != row]
                deletes += [key for key in before if key not in after]
            if deletes:
                self._delete(tx, table, deletes)
            if upserts:
                self._upsert(tx, table, upserts)

    def _upsert(self, tx: Connection[DictRow], table: Table, rows: list[Row]) -> None:
        """One statement: the rows as one array per column, unnested into an upsert."""
        columns = SQL(", ").join(Identifier(c) for c in table.written)
        arrays = SQL(", ").join(
            SQL("%b::{}[]").format(SQL(_base_type(c.sql))) for c in table.columns
        )
        others = [c for c in table.written if c not in table.key]
        tx.execute(
            SQL(
                "INSERT INTO {} ({}) SELECT * FROM unnest({}) ON CONFLICT ({}) DO UPDATE SET {}"
            ).format(
                self.gen.ident(table),
                columns,
                arrays,
                SQL(", ").join(Identifier(c) for c in table.key),
                SQL(", ").join(SQL("{0} = EXCLUDED.{0}").format(Identifier(c)) for c in others),
            ),
            [[_to_db(row[c]) for row in rows] for c in table.written],
        )

    def _delete(self, tx: Connection[DictRow], table: Table, keys: list[Key]) -> None:
        where = SQL(" AND ").join(SQL("{} = %s").format(Identifier(c)) for c in table.key)
        statement = SQL("DELETE FROM {} WHERE {}").format(self.gen.ident(table), where)
        with tx.cursor() as cursor:
            cursor.executemany(statement, keys)

    def _set_aside(self, tx: Connection[DictRow], cases: list[_Case]) -> None:
        for case in cases:
            event, error = case.blocked, case.error
            assert event is not None
            log.error(
                "case %s version %d (%s) cannot be applied to %s; the case waits behind it: %s",
                event.case_id,
                event.case_version,
                event.type,
                self.gen.key,
                error,
            )
            tx.execute(
                "INSERT INTO projection_dead_letters (projection, case_id, case_version,"
                " global_position, event_type, error) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (projection, case_id, case_version) DO UPDATE"
                " SET error = EXCLUDED.error, recorded_at = now(), retried_at = NULL",
                (
                    self.gen.key,
                    event.case_id,
                    event.case_version,
                    event.global_position,
                    event.type,
                    f"{type(error).__name__}: {error}"[:2000],
                ),
            )

    def _track(
        self,
        tx: Connection[DictRow],
        done: list[_Case],
        events: Sequence[EventEnvelope],
        watermark: int | None,
        applied: int,
    ) -> None:
        changed = [c for c in done if c.applied or c.blocked is not None]
        known = [c for c in changed if c.existed]
        if known:
            tx.execute(
                SQL(
                    "UPDATE {} v SET version = u.version, blocked_version = u.blocked"
                    " FROM unnest(%s::uuid[], %s::integer[], %s::integer[])"
                    " AS u(case_id, version, blocked) WHERE v.case_id = u.case_id"
                ).format(self._versions),
                _versions_of(known),
            )
        new = [c for c in changed if not c.existed]
        if new:
            inserted = tx.execute(
                SQL(
                    "INSERT INTO {} (case_id, version, blocked_version)"
                    " SELECT * FROM unnest(%s::uuid[], %s::integer[], %s::integer[])"
                    " ON CONFLICT DO NOTHING RETURNING case_id"
                ).format(self._versions),
                _versions_of(new),
            ).fetchall()
            if len(inserted) < len(new):
                raise _Raced(f"another worker applied new cases of {self.gen.key} first")
        if applied or watermark is not None:
            top = max((e.global_position for e in events), default=0)
            tx.execute(
                "UPDATE projection_state SET applied_events = applied_events + %s,"
                " max_position = GREATEST(max_position, %s),"
                " store_watermark = GREATEST(store_watermark, %s), updated_at = now()"
                " WHERE projection = %s",
                (applied, top, watermark or 0, self.gen.key),
            )

    # -- from the store ------------------------------------------------------------------

    def catch_up_from_store(
        self, upto: int, limit: int, conn: Connection[DictRow] | None = None
    ) -> int:
        """Apply up to ``limit`` stored case events up to position ``upto`` that the
        projection lacks (what the broker lost or has not carried yet). The store watermark
        records that every case event at or below it is applied, or held behind a dead
        letter. Returns how many events it applied."""
        with self._transaction(conn) as tx:
            after = self._watermark(tx)
            if after >= upto:
                return 0
            params = {"after": after, "upto": upto, "topic": CASE_TOPIC_PREFIX + "%"}
            missing = tx.execute(
                self._missing + SQL(" LIMIT %(limit)s"), {**params, "limit": limit}
            ).fetchall()
            latest = {r["originator_id"]: r["originator_version"] for r in missing}
            events = [
                self.reader.case_events(tx, case_id, version - 1, version)[0]
                for case_id, version in latest.items()
            ]
        # Every missing event up to the last one read is applied with its case's earlier
        # ones; when fewer than ``limit`` were missing, that holds up to ``upto``.
        reached = missing[-1]["notification_id"] if len(missing) == limit else upto
        return self.apply_batch(events, conn=conn, watermark=reached).applied

    def _watermark(self, tx: Connection[DictRow]) -> int:
        state = tx.execute(
            "SELECT store_watermark FROM projection_state WHERE projection = %s", (self.gen.key,)
        ).fetchone()
        return int(state["store_watermark"]) if state else 0

    def lag(self, on: Connection[DictRow]) -> int:
        """How many stored case events the projection does not reflect yet (not counting
        those held behind a dead letter)."""
        row = on.execute(
            SQL("SELECT count(*) AS n FROM ({}) missing").format(self._missing),
            {"after": self._watermark(on), "upto": 2**62, "topic": CASE_TOPIC_PREFIX + "%"},
        ).fetchone()
        return int(row["n"]) if row else 0

    def state(self, on: Connection[DictRow]) -> dict[str, Any]:
        row = on.execute(
            "SELECT applied_events, max_position, store_watermark, updated_at, rebuilt_at"
            " FROM projection_state WHERE projection = %s",
            (self.gen.key,),
        ).fetchone()
        held = on.execute(
            SQL("SELECT count(*) AS n FROM {} WHERE blocked_version IS NOT NULL").format(
                self._versions
            )
        ).fetchone()
        return {**(row or {}), "held_cases": int(held["n"]) if held else 0}

    def sql_held(self) -> Composed:
        """The cases held behind a dead letter (or the one in ``%(case_id)s``), locked."""
        return SQL(
            "SELECT case_id, version FROM {} WHERE blocked_version IS NOT NULL"
            " AND (%(case_id)s::uuid IS NULL OR case_id = %(case_id)s::uuid)"
            " ORDER BY case_id FOR UPDATE"
        ).format(self._versions)

    def sql_release(self) -> Composed:
        return SQL("UPDATE {} SET blocked_version = NULL WHERE case_id = %s").format(self._versions)


class _Raced(Exception):
    """Another worker applied a case this batch took for new: the batch starts over."""


def _versions_of(cases: list[_Case]) -> tuple[list[str], list[int], list[int | None]]:
    return (
        [c.case_id for c in cases],
        [c.events[c.applied - 1].case_version if c.applied else c.version for c in cases],
        [c.blocked.case_version if c.blocked is not None else None for c in cases],
    )


def _by_case(events: Sequence[EventEnvelope]) -> dict[str, list[EventEnvelope]]:
    """The events of each case, in version order, each version once."""
    grouped: dict[str, dict[int, EventEnvelope]] = defaultdict(dict)
    for event in events:
        grouped[event.case_id].setdefault(event.case_version, event)
    return {
        case_id: [versions[v] for v in sorted(versions)] for case_id, versions in grouped.items()
    }


def _delivered(case: _Case, by_case: dict[str, list[EventEnvelope]]) -> int:
    return sum(1 for e in by_case[case.case_id] if e.case_version > case.version)


def _copy(rows: CaseRows) -> CaseRows:
    return {table: dict(found) for table, found in rows.items()}


def _from_db(row: DictRow) -> Row:
    """A row as projections see it: ids as text, as events carry them."""
    return {k: str(v) if isinstance(v, UUID) else v for k, v in row.items()}


def _base_type(sql: str) -> str:
    """The type of a column declaration (``text NOT NULL DEFAULT ''`` -> ``text``)."""
    return sql.split(maxsplit=1)[0]


def _to_db(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict | list) else value
