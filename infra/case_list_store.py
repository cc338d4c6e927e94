"""The ``case_list`` read model's owner: its table (``projections.case_list``, written by the
projection runner) and the queries over it."""

from __future__ import annotations

from uuid import UUID

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from projections.case_list import CaseRow
from services.queries import CaseFilter, CaseListPage, PageCursor


class CaseListStore:
    """Answers the case-list queries."""

    def __init__(self, pool: ConnectionPool[Connection[DictRow]]) -> None:
        self.pool = pool

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
        cases = [CaseRow.of(r) for r in rows[:limit]]
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
