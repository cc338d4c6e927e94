"""The read-model queries beside the case list: counts, SLA status, cycle times, throughput
and workload, over the tables the projections own (``case_list``, ``status_history``,
``sla_outcomes``). It only reads them. What an SLA clock's state is comes from
``infra.sla_states``, as for the case search and the analysts' views."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from infra.sla_states import NO_JIT, case_sla_rank_sql, clock_state_sql, running_clock_sql
from services.queries import SlaState
from services.read_models import (
    ANY_STATE,
    CountBy,
    CycleBy,
    CycleTime,
    KeyCount,
    SlaClock,
    SlaCursor,
    SlaPage,
    SlaWhere,
    ThroughputDay,
    Workload,
    WorkloadBy,
)

_COUNTED = {
    "status": "status",
    "case_type": "case_type",
    "assignee": "assignee",
    "queue": "queue",
    "priority": "priority",
}

# One row per open case with running clocks: its worst clock. The cases are walked in the
# order of their nearest deadline (``case_list_deadline``), and a case is breached exactly
# when that deadline has passed, so each state reads a range of the index and stops at the
# page's end, however many cases are open.
_SLA_STATUS = f"""
SELECT c.case_id, c.title, c.case_type, c.assignee, c.queue, c.sla_deadline,
       w.sla, w.due_at, w.state
FROM case_list c
CROSS JOIN LATERAL (
    SELECT k.sla, k.due_at, k.state FROM (
        SELECT s.sla, (s.clock->>'deadline')::timestamptz AS due_at,
               {clock_state_sql("%(now)s")} AS state
        FROM jsonb_each(c.slas) AS s(sla, clock) WHERE {running_clock_sql()}
    ) k
    ORDER BY CASE k.state WHEN 'breached' THEN 0 WHEN 'at_risk' THEN 1 ELSE 2 END,
             k.due_at, k.sla
    LIMIT 1
) w
WHERE NOT c.final AND c.sla_deadline IS NOT NULL {{filters}}
ORDER BY c.sla_deadline, c.case_id
LIMIT %(limit)s
"""
#: The range of nearest deadlines each state lies in, and what else it asks of the worst.
_STATE_RANGE = {
    None: "",
    "breached": "AND c.sla_deadline <= %(now)s",
    "at_risk": "AND c.sla_deadline > %(now)s AND w.state = 'at_risk'",
    "on_time": "AND c.sla_deadline > %(now)s AND w.state = 'on_time'",
}

_CYCLE_CASES = """
SELECT case_type, NULL::text AS state, {month} AS month, count(*) AS count,
       percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP
           (ORDER BY extract(epoch FROM closed_at - opened_at)) AS p
FROM case_list
WHERE closed_at IS NOT NULL {filters}
GROUP BY 1, 2, 3 ORDER BY 1, 3
"""
_CYCLE_STATES = """
SELECT case_type, status AS state, NULL::text AS month, count(*) AS count,
       percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP
           (ORDER BY extract(epoch FROM left_at - entered_at)) AS p
FROM status_history
WHERE left_at IS NOT NULL {filters}
GROUP BY 1, 2 ORDER BY 1, 2
"""

# A stay counts as a closing when it enters a final state from one that is not: only the
# final stays (few) read the stay before them. Days are counted first, then every day of
# the range is listed, with zeros for days without a move.
_CLOSES = "h.closes"
_THROUGHPUT = f"""
WITH moves AS (
    SELECT (h.entered_at AT TIME ZONE 'UTC')::date AS day,
           count(*) FILTER (WHERE h.kind = 'opened') AS opened,
           count(*) FILTER (WHERE {_CLOSES}) AS closed,
           count(*) FILTER (WHERE h.kind = 'reopened') AS reopened
    FROM status_history h
    WHERE h.entered_at >= %(first)s::date::timestamp AT TIME ZONE 'UTC'
      AND h.entered_at < (%(last)s::date + 1)::timestamp AT TIME ZONE 'UTC' {{filters}}
    GROUP BY 1
)
SELECT d.day::date AS day, coalesce(m.opened, 0) AS opened, coalesce(m.closed, 0) AS closed,
       coalesce(m.reopened, 0) AS reopened
FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d(day)
LEFT JOIN moves m ON m.day = d.day::date
ORDER BY d.day
"""

# Open and breached cases are counted from the columns alone (a case is breached exactly
# when its nearest deadline has passed); only cases whose nearest deadline is still ahead
# have their clocks read, to find those at risk.
_WORKLOAD = f"""
SELECT c.{{column}} AS key, count(*) AS open,
       count(*) FILTER (WHERE {case_sla_rank_sql("%(now)s")} = 2) AS at_risk,
       count(*) FILTER (WHERE c.sla_deadline <= %(now)s) AS breached
FROM case_list c WHERE NOT c.final GROUP BY 1
ORDER BY open DESC, key NULLS LAST
"""


class ReadModelStore:
    """Answers :class:`services.read_models.ReadModelQueries` from PostgreSQL."""

    def __init__(self, pool: ConnectionPool[Connection[DictRow]]) -> None:
        self.pool = pool

    def _rows(self, sql: str, params: dict[str, Any]) -> list[DictRow]:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(NO_JIT)
            return conn.execute(sql.encode(), params).fetchall()

    def counts(self, by: CountBy, case_type: str | None) -> list[KeyCount]:
        """Cases per value of one column: an index-only scan of that column's index."""
        column = _COUNTED[by]
        where = "WHERE case_type = %(case_type)s" if case_type is not None else ""
        rows = self._rows(
            f"SELECT {column} AS key, count(*) AS n FROM case_list {where} GROUP BY 1",
            {"case_type": case_type},
        )
        return [KeyCount(r["key"], r["n"]) for r in rows]

    def sla_status(
        self,
        state: SlaState | None,
        where: SlaWhere,
        limit: int,
        cursor: SlaCursor | None,
        now: datetime,
    ) -> SlaPage:
        params: dict[str, Any] = {"now": now, "limit": limit + 1}
        filters = [_STATE_RANGE[state]]
        for column in ("case_type", "queue", "assignee"):
            if getattr(where, column) is not None:
                filters.append(f"AND c.{column} = %({column})s")
                params[column] = getattr(where, column)
        if cursor is not None:
            filters.append("AND (c.sla_deadline, c.case_id) > (%(after)s, %(case_id)s)")
            params.update(after=cursor.deadline, case_id=UUID(cursor.case_id))
        rows = self._rows(_SLA_STATUS.format(filters=" ".join(filters)), params)
        items = [
            SlaClock(
                case_id=str(r["case_id"]),
                title=r["title"],
                case_type=r["case_type"],
                sla=r["sla"],
                state=r["state"],
                due_at=r["due_at"],
                time_left_s=(r["due_at"] - now).total_seconds(),
                assignee=r["assignee"],
                queue=r["queue"],
                deadline=r["sla_deadline"],
            )
            for r in rows[:limit]
        ]
        last = items[-1] if len(rows) > limit else None
        after = SlaCursor(state or ANY_STATE, last.deadline, last.case_id) if last else None
        return SlaPage(items, after)

    def cycle_times(self, by: CycleBy, case_type: str | None) -> list[CycleTime]:
        filters = "AND case_type = %(case_type)s" if case_type is not None else ""
        if by == "state":
            sql = _CYCLE_STATES.format(filters=filters)
        else:
            month = "to_char(closed_at AT TIME ZONE 'UTC', 'YYYY-MM')" if by == "month" else "NULL"
            sql = _CYCLE_CASES.format(month=month, filters=filters)
        return [
            CycleTime(
                r["case_type"], r["state"], r["month"], r["p"][0], r["p"][1], r["p"][2], r["count"]
            )
            for r in self._rows(sql, {"case_type": case_type})
        ]

    def throughput(self, first: date, last: date, case_type: str | None) -> list[ThroughputDay]:
        filters = "AND h.case_type = %(case_type)s" if case_type is not None else ""
        rows = self._rows(
            _THROUGHPUT.format(filters=filters),
            {"first": first, "last": last, "case_type": case_type},
        )
        return [ThroughputDay(r["day"], r["opened"], r["closed"], r["reopened"]) for r in rows]

    def workload(self, by: WorkloadBy, now: datetime) -> list[Workload]:
        column = {"assignee": "assignee", "queue": "queue"}[by]
        rows = self._rows(_WORKLOAD.format(column=column), {"now": now})
        return [Workload(r["key"], r["open"], r["at_risk"], r["breached"]) for r in rows]
