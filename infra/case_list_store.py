"""The ``case_list`` read model in PostgreSQL: exactly-once application and queries.

Each row carries the case version it reflects. An event is applied only when it is the next
version of its case, in the same transaction as the row change: a duplicate is skipped and a
gap (a version jump) is filled from the event store first. The same transaction keeps the
case's ``sla_timers`` and ``notification_outbox`` rows in step (``projections.work_queues``),
so they share the row's version check and change exactly once per event too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, DataError
from psycopg.rows import DictRow
from psycopg.sql import SQL
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from domain.envelope import EventEnvelope
from infra.event_store import CASE_TOPIC_PREFIX, EventStoreReader
from projections.case_list import CaseRow, apply
from projections.work_queues import outbox_change, timer_change
from services.queries import CaseFilter, CaseListPage, PageCursor

log = logging.getLogger(__name__)

PROJECTION = "case_list"
#: What one event can do wrong: a value the database refuses (a NUL in jsonb, a date out of
#: range), or data the projection cannot read.
_POISON = (DataError, ValueError, TypeError, KeyError)
_COLUMNS = [f.name for f in fields(CaseRow)]
_UPSERT = f"""
INSERT INTO case_list ({", ".join(_COLUMNS)}) VALUES ({", ".join(["%s"] * len(_COLUMNS))})
ON CONFLICT (case_id) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[1:])}
WHERE case_list.version < EXCLUDED.version
"""
_MISSING = """
SELECT s.notification_id, s.originator_id, s.originator_version
FROM {events} s LEFT JOIN case_list c ON c.case_id = s.originator_id
WHERE s.notification_id > %(after)s AND s.notification_id <= %(upto)s
  AND s.topic LIKE %(topic)s AND COALESCE(c.version, 0) < s.originator_version
ORDER BY s.notification_id
"""


@dataclass(frozen=True)
class ApplyResult:
    applied: int
    skipped: int
    filled: int


class CaseListStore:
    """Applies case events to ``case_list`` and answers the case-list queries."""

    def __init__(self, pool: ConnectionPool[Connection[DictRow]], reader: EventStoreReader) -> None:
        self.pool = pool
        self.reader = reader
        self._missing = reader.sql(_MISSING)
        with pool.connection() as conn:
            conn.execute(
                "INSERT INTO projection_state (projection) VALUES (%s) ON CONFLICT DO NOTHING",
                (PROJECTION,),
            )

    def apply_batch(self, events: Sequence[EventEnvelope]) -> ApplyResult:
        """Apply ``events`` in one transaction; safe to call again with the same events.

        An event the view cannot take (the database refuses a value, the projection finds it
        malformed) must not stop the worker: the batch is then applied again one event at a
        time, and such an event is set aside in ``projection_dead_letters`` with its error and
        passed over. The first try has no savepoints, so a healthy batch costs nothing more.
        """
        try:
            return self._apply(events, careful=False)
        except _POISON:
            return self._apply(events, careful=True)

    def _apply(self, events: Sequence[EventEnvelope], careful: bool) -> ApplyResult:
        applied = skipped = filled = 0
        with self.pool.connection() as conn, conn.transaction():
            for event in events:
                row = self._locked_row(conn, event.case_id)
                known = row.version if row else 0
                if event.case_version <= known:
                    skipped += 1
                    continue
                missing = (
                    self.reader.case_events(
                        conn, UUID(event.case_id), known, event.case_version - 1
                    )
                    if event.case_version > known + 1
                    else []
                )
                if careful:
                    done = self._apply_each(conn, row, [*missing, event])
                elif _store_row(conn, _apply_all(row, [*missing, event])):
                    for each in (*missing, event):
                        _apply_work_queues(conn, each)
                    done = 1 + len(missing)
                else:
                    done = 0
                if done == 0:
                    skipped += 1  # another worker applied it first
                    continue
                applied += done
                filled += max(0, done - 1)
            if applied:
                conn.execute(
                    "UPDATE projection_state SET applied_events = applied_events + %s,"
                    " max_position = GREATEST(max_position, %s), updated_at = now()"
                    " WHERE projection = %s",
                    (applied, max(e.global_position for e in events), PROJECTION),
                )
        return ApplyResult(applied, skipped, filled)

    def _apply_each(
        self, conn: Connection[DictRow], row: CaseRow | None, events: Sequence[EventEnvelope]
    ) -> int:
        """Apply ``events`` of one case in order, each in a savepoint, setting aside those
        that fail; the case's row still moves past them. Answers how many were handled."""
        done = 0
        for event in events:
            try:
                with conn.transaction():
                    new = apply(row, event)
                    if not _store_row(conn, new):
                        return done
                    _apply_work_queues(conn, event)
                row = new
            except _POISON as error:
                self._set_aside(conn, event, error)
                if row is None:
                    return done  # no row to move on: the case waits behind this event
                row = replace(row, version=event.case_version, last_position=event.global_position)
                if not _store_row(conn, row):
                    return done
            done += 1
        return done

    def _set_aside(
        self, conn: Connection[DictRow], event: EventEnvelope, error: BaseException
    ) -> None:
        log.error(
            "case %s version %d (%s) cannot be applied to %s and is set aside: %s",
            event.case_id,
            event.case_version,
            event.type,
            PROJECTION,
            error,
        )
        conn.execute(
            "INSERT INTO projection_dead_letters"
            " (projection, case_id, case_version, global_position, event_type, error)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                PROJECTION,
                event.case_id,
                event.case_version,
                event.global_position,
                event.type,
                f"{type(error).__name__}: {error}"[:2000],
            ),
        )

    def catch_up_from_store(self, upto: int, limit: int) -> int:
        """Apply up to ``limit`` stored case events up to position ``upto`` that the view lacks.

        This heals what the broker lost (e.g. a wiped broker): events that will never be
        redelivered are read from the store. The store watermark records that every case
        event at or below it is in the view. Returns how many events it applied.
        """
        with self.pool.connection() as conn:
            after = self._watermark(conn)
            if after >= upto:
                return 0
            params = {"after": after, "upto": upto, "topic": CASE_TOPIC_PREFIX + "%"}
            rows = conn.execute(self._missing + SQL(" LIMIT %(limit)s"), {**params, "limit": limit})
            missing = rows.fetchall()
            latest = {r["originator_id"]: r["originator_version"] for r in missing}
            events = [
                self.reader.case_events(conn, case_id, version - 1, version)[0]
                for case_id, version in latest.items()
            ]
        applied = self.apply_batch(events).applied if events else 0
        # Every missing event up to the last one read is now applied (with its case's earlier
        # ones); when fewer than ``limit`` were missing, that holds up to ``upto``.
        reached = missing[-1]["notification_id"] if len(missing) == limit else upto
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE projection_state SET store_watermark = GREATEST(store_watermark, %s)"
                " WHERE projection = %s",
                (reached, PROJECTION),
            )
        return applied

    def _watermark(self, conn: Connection[DictRow]) -> int:
        state = conn.execute(
            "SELECT store_watermark FROM projection_state WHERE projection = %s", (PROJECTION,)
        ).fetchone()
        return int(state["store_watermark"]) if state else 0

    def lag(self, on: Connection[DictRow] | None = None) -> int:
        """How many stored case events the view does not reflect yet (read on ``on`` when
        given, as every figure of ``infra.pipeline_figures`` is)."""
        with self._connection(on) as conn:
            after = self._watermark(conn)
            row = conn.execute(
                self.reader.sql(f"SELECT count(*) AS n FROM ({_MISSING}) missing"),
                {"after": after, "upto": 2**62, "topic": CASE_TOPIC_PREFIX + "%"},
            ).fetchone()
        return int(row["n"]) if row else 0

    def state(self, on: Connection[DictRow] | None = None) -> dict[str, int]:
        with self._connection(on) as conn:
            row = conn.execute(
                "SELECT applied_events, max_position, store_watermark FROM projection_state"
                " WHERE projection = %s",
                (PROJECTION,),
            ).fetchone()
        return dict(row) if row else {}

    def list_cases(self, where: CaseFilter, limit: int, cursor: PageCursor | None) -> CaseListPage:
        """One page of cases, newest first, filtered; ``cursor`` continues a listing."""
        clauses, params = [], []
        for column in ("status", "case_type", "assignee", "queue", "priority"):
            value = getattr(where, column)
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if cursor is not None:
            clauses.append("(opened_at, case_id) < (%s, %s)")
            params.extend([cursor.opened_at, cursor.case_id])
        sql = "SELECT * FROM case_list"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY opened_at DESC, case_id DESC LIMIT %s"
        params.append(limit + 1)
        with self.pool.connection() as conn:
            rows = conn.execute(sql, params).fetchall()
        cases = [CaseRow(**{**r, "case_id": str(r["case_id"])}) for r in rows[:limit]]
        more = len(rows) > limit
        last = cases[-1] if cases and more else None
        return CaseListPage(
            cases=cases,
            next_cursor=PageCursor(last.opened_at, last.case_id) if last else None,
        )

    def open_case_ids(self, case_type: str, below_version: int) -> list[UUID]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT case_id FROM case_list WHERE case_type = %s AND case_type_version < %s"
                " AND status <> 'closed' ORDER BY opened_at",
                (case_type, below_version),
            ).fetchall()
        return [r["case_id"] for r in rows]

    def due_timers(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """SLA milestones due at ``now`` that no event has marked as reached yet."""
        with self.pool.connection() as conn:
            return conn.execute(
                "SELECT case_id, sla, milestone, run, due_at FROM sla_timers"
                " WHERE due_at <= %s ORDER BY due_at LIMIT %s",
                (now, limit),
            ).fetchall()

    def work_waiting(self, on: Connection[DictRow] | None = None) -> dict[str, int]:
        """SLA milestones overdue and notifications undelivered, for ``caseledger status``:
        both should stay near zero while the SLA watcher and the notifier run."""
        with self._connection(on) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM sla_timers WHERE due_at <= now()) AS sla_overdue,"
                " (SELECT count(*) FROM sla_timers) AS sla_timers,"
                " (SELECT count(*) FROM notification_outbox) AS notifications_pending,"
                " (SELECT count(*) FROM notification_outbox WHERE attempts > 0)"
                " AS notifications_retrying,"
                " (SELECT count(*) FROM projection_dead_letters) AS events_set_aside"
            ).fetchone()
        return {k: int(v) for k, v in (row or {}).items()}

    def _connection(
        self, on: Connection[DictRow] | None
    ) -> AbstractContextManager[Connection[DictRow]]:
        return nullcontext(on) if on is not None else self.pool.connection()

    def _locked_row(self, conn: Connection[DictRow], case_id: str) -> CaseRow | None:
        row = conn.execute(
            "SELECT * FROM case_list WHERE case_id = %s FOR UPDATE", (case_id,)
        ).fetchone()
        return CaseRow(**{**row, "case_id": str(row["case_id"])}) if row else None


def _apply_all(row: CaseRow | None, events: Sequence[EventEnvelope]) -> CaseRow:
    for event in events:
        row = apply(row, event)
    assert row is not None
    return row


def _store_row(conn: Connection[DictRow], row: CaseRow) -> bool:
    """Write ``row`` unless the view already holds that version (another worker won)."""
    values = tuple(_db_value(getattr(row, column)) for column in _COLUMNS)
    return conn.execute(_UPSERT, values).rowcount > 0


def _db_value(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict) else value


def _apply_work_queues(conn: Connection[DictRow], event: EventEnvelope) -> None:
    """Keep ``sla_timers`` and ``notification_outbox`` in step with the case's events."""
    timer = timer_change(event)
    if timer is not None and timer.milestone is not None:
        conn.execute(
            "DELETE FROM sla_timers WHERE case_id = %s AND sla = %s AND milestone = %s",
            (timer.case_id, timer.sla, timer.milestone),
        )
    elif timer is not None:
        conn.execute(
            "DELETE FROM sla_timers WHERE case_id = %s AND sla = %s", (timer.case_id, timer.sla)
        )
        for milestone, due_at in timer.due:
            conn.execute(
                "INSERT INTO sla_timers (case_id, sla, milestone, run, due_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (timer.case_id, timer.sla, milestone, timer.run, due_at),
            )
    outbox = outbox_change(event)
    if outbox is not None and outbox.message is not None:
        conn.execute(
            "INSERT INTO notification_outbox (notification_id, case_id, message)"
            " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (outbox.notification_id, outbox.case_id, Jsonb(outbox.message)),
        )
    elif outbox is not None:
        conn.execute(
            "DELETE FROM notification_outbox WHERE notification_id = %s",
            (outbox.notification_id,),
        )
