"""The owner of the work-queues projection's tables (``projections.work_queues``).

The projection runner writes their rows from case events; the SLA watcher reads the timers
that are due; the notifier claims, reschedules and drops outbox rows (the ``kept`` columns
``attempts``, ``next_attempt_at`` and ``last_error`` are its own). Nothing else writes them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from infra.notifier import NotificationOutbox, OutboxEntry

_CLAIM = """
UPDATE notification_outbox SET next_attempt_at = now() + make_interval(secs => %s)
WHERE notification_id = (
    SELECT notification_id FROM notification_outbox WHERE next_attempt_at <= now()
    ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING notification_id, case_id, message, attempts
"""


class PostgresOutbox(NotificationOutbox):
    """The outbox in PostgreSQL; the projection adds rows, the notifier claims, reschedules
    and drops them."""

    def __init__(self, pool: ConnectionPool[Connection[DictRow]]) -> None:
        self.pool = pool

    def claim(self, hold_s: float) -> OutboxEntry | None:
        with self.pool.connection() as conn:
            row = conn.execute(_CLAIM, (hold_s,)).fetchone()
        if row is None:
            return None
        return OutboxEntry(
            str(row["notification_id"]), row["case_id"], row["message"], row["attempts"]
        )

    def retry_later(self, notification_id: str, attempts: int, error: str, delay_s: float) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE notification_outbox SET attempts = %s, last_error = %s,"
                " next_attempt_at = now() + make_interval(secs => %s)"
                " WHERE notification_id = %s",
                (attempts, error[:2000], delay_s, notification_id),
            )

    def drop(self, notification_id: str) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "DELETE FROM notification_outbox WHERE notification_id = %s", (notification_id,)
            )


class WorkQueueStore:
    """Reads the SLA timers and what waits in the work queues."""

    def __init__(self, pool: ConnectionPool[Connection[DictRow]]) -> None:
        self.pool = pool

    def due_timers(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """SLA milestones due at ``now`` that no event has marked as reached yet."""
        with self.pool.connection() as conn:
            return conn.execute(
                "SELECT case_id, sla, milestone, run, due_at FROM sla_timers"
                " WHERE due_at <= %s ORDER BY due_at LIMIT %s",
                (now, limit),
            ).fetchall()

    def work_waiting(self, on: Connection[DictRow] | None = None) -> dict[str, int]:
        """SLA milestones overdue, notifications undelivered and events set aside, for
        ``caseledger status``: all should stay near zero while the workers run."""
        with self._connection(on) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM sla_timers WHERE due_at <= now()) AS sla_overdue,"
                " (SELECT count(*) FROM sla_timers) AS sla_timers,"
                " (SELECT count(*) FROM notification_outbox) AS notifications_pending,"
                " (SELECT count(*) FROM notification_outbox WHERE attempts > 0)"
                " AS notifications_retrying,"
                " (SELECT count(*) FROM projection_dead_letters WHERE retried_at IS NULL)"
                " AS events_set_aside"
            ).fetchone()
        return {k: int(v) for k, v in (row or {}).items()}

    def _connection(
        self, on: Connection[DictRow] | None
    ) -> AbstractContextManager[Connection[DictRow]]:
        return nullcontext(on) if on is not None else self.pool.connection()
