"""The PostgreSQL tables of the live metrics, and their one writer: the live-metrics workers.

Each worker writes the figures of the topic partitions it owns, one row per partition, so
several workers never write the same row and a partition that moves to another worker is
rewritten by its new owner. Readers add the partitions up.

- ``live_metrics``: per partition, metric (``opened``, ``closed``, ``breached``), hour,
  case type and queue (``''``: none), the count; kept for ``KEEP_HOURS``.
- ``live_metrics_backlog``: per partition, case type and queue, the open cases.
- ``live_metrics_workers``: per worker, the partitions it counts and its counters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from infra.db import schema_lock
from infra.live_metrics_rules import BREACHED, CLOSED, OPENED
from services.api.live_metrics import (
    BacklogEntry,
    HourBucket,
    LiveMetricsPublic,
    WorkerEntry,
)

KEEP_HOURS = 25
#: A worker that has not reported for this long is no longer listed.
WORKER_SILENT_S = 60
WRITE_TIMEOUT_MS = 5_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS live_metrics (
    metric     text NOT NULL,
    hour       timestamptz NOT NULL,
    case_type  text NOT NULL,
    queue      text NOT NULL,
    partition  integer NOT NULL,
    value      bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hour, case_type, queue, metric, partition)
);
CREATE TABLE IF NOT EXISTS live_metrics_backlog (
    case_type  text NOT NULL,
    queue      text NOT NULL,
    partition  integer NOT NULL,
    open_cases bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_type, queue, partition)
);
CREATE TABLE IF NOT EXISTS live_metrics_workers (
    worker             text PRIMARY KEY,
    partitions         integer[] NOT NULL,
    events_counted     bigint NOT NULL,
    duplicates_skipped bigint NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
"""

_UPSERT_HOUR = """
INSERT INTO live_metrics (metric, hour, case_type, queue, partition, value)
VALUES (%s, to_timestamp(%s), %s, %s, %s, %s)
ON CONFLICT (hour, case_type, queue, metric, partition)
DO UPDATE SET value = EXCLUDED.value, updated_at = now()
"""
_UPSERT_BACKLOG = """
INSERT INTO live_metrics_backlog (case_type, queue, partition, open_cases)
VALUES (%s, %s, %s, %s)
ON CONFLICT (case_type, queue, partition)
DO UPDATE SET open_cases = EXCLUDED.open_cases, updated_at = now()
"""
_UPSERT_WORKER = """
INSERT INTO live_metrics_workers (worker, partitions, events_counted, duplicates_skipped)
VALUES (%(worker)s, %(partitions)s, %(events_counted)s, %(duplicates_skipped)s)
ON CONFLICT (worker) DO UPDATE SET partitions = EXCLUDED.partitions,
    events_counted = EXCLUDED.events_counted,
    duplicates_skipped = EXCLUDED.duplicates_skipped, updated_at = now()
"""
_READ_HOURS = """
SELECT hour, case_type, queue,
       coalesce(sum(value) FILTER (WHERE metric = %(opened)s), 0) AS opened,
       coalesce(sum(value) FILTER (WHERE metric = %(closed)s), 0) AS closed,
       coalesce(sum(value) FILTER (WHERE metric = %(breached)s), 0) AS breached
FROM live_metrics WHERE hour >= %(since)s
GROUP BY hour, case_type, queue HAVING sum(value) <> 0
ORDER BY hour, case_type, queue
"""
_READ_BACKLOG = """
SELECT case_type, queue, sum(open_cases) AS open_cases FROM live_metrics_backlog
GROUP BY case_type, queue HAVING sum(open_cases) <> 0 ORDER BY case_type, queue
"""
_READ_WORKERS = """
SELECT worker, partitions, events_counted, duplicates_skipped, updated_at
FROM live_metrics_workers WHERE updated_at > now() - make_interval(secs => %s)
ORDER BY worker
"""
_LAST_UPDATE = """
SELECT greatest((SELECT max(updated_at) FROM live_metrics),
                (SELECT max(updated_at) FROM live_metrics_backlog)) AS at
"""

#: (partition, metric, hour as epoch seconds, case type, queue)
HourKey = tuple[int, str, float, str, str]
#: (partition, case type, queue)
BacklogKey = tuple[int, str, str]


@dataclass(frozen=True)
class WorkerReport:
    """What one worker says of itself at each write."""

    worker: str
    partitions: tuple[int, ...]
    events_counted: int
    duplicates_skipped: int


class LiveMetricsStore:
    """Owns the live-metrics tables: the workers write their figures, the API reads the sum."""

    def __init__(self, pool: ConnectionPool[Connection[DictRow]]) -> None:
        self.pool = pool
        with schema_lock(pool), pool.connection() as conn:
            conn.execute(SCHEMA)  # a constant, not user input

    def write(
        self,
        hourly: Mapping[HourKey, int],
        backlog: Mapping[BacklogKey, int],
        report: WorkerReport,
    ) -> None:
        """Write the figures that changed, and the worker's report, in one transaction."""
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = {WRITE_TIMEOUT_MS}")
            with conn.cursor() as cursor:
                if hourly:
                    rows = sorted((m, h, t, q, p, v) for (p, m, h, t, q), v in hourly.items())
                    cursor.executemany(_UPSERT_HOUR, rows)
                if backlog:
                    cursor.executemany(
                        _UPSERT_BACKLOG, sorted((t, q, p, v) for (p, t, q), v in backlog.items())
                    )
                cursor.execute(
                    _UPSERT_WORKER,
                    {**report.__dict__, "partitions": list(report.partitions)},
                )

    def prune(self, now: datetime | None = None) -> None:
        """Forget hours older than ``KEEP_HOURS`` and workers silent for a day."""
        now = now or datetime.now(UTC)
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = {WRITE_TIMEOUT_MS}")
            conn.execute(
                "DELETE FROM live_metrics WHERE hour < %s", (now - timedelta(hours=KEEP_HOURS),)
            )
            conn.execute(
                "DELETE FROM live_metrics_workers WHERE updated_at < %s",
                (now - timedelta(days=1),),
            )

    def read(self, since: datetime) -> LiveMetricsPublic:
        """The figures from the hour ``since`` on, added up over partitions."""
        with self.pool.connection() as conn:
            params = {"since": since, "opened": OPENED, "closed": CLOSED, "breached": BREACHED}
            hours = conn.execute(_READ_HOURS, params).fetchall()
            backlog = conn.execute(_READ_BACKLOG).fetchall()
            workers = conn.execute(_READ_WORKERS, (WORKER_SILENT_S,)).fetchall()
            last = conn.execute(_LAST_UPDATE).fetchone()
        return LiveMetricsPublic(
            since=since,
            hours=[HourBucket(**_with_queue(row)) for row in hours],
            backlog=[BacklogEntry(**_with_queue(row)) for row in backlog],
            workers=[WorkerEntry(**row) for row in workers],
            updated_at=last["at"] if last else None,
        )


def _with_queue(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**row, "queue": row["queue"] or None}
