"""The ``case_list`` read model's owner: its table (``projections.case_list``, written by the
projection runner) and the queries over it: case search with filters on every common
attribute, full-text search, sorts and keyset pagination (docs/read-models.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from infra.sla_states import NO_JIT, SLA_RANK, case_sla_rank_sql
from projections.case_list import CaseRow
from services.queries import CaseFilter, CaseListPage, PageCursor

#: The columns a page shows (not the search text and its tsvector, which can be large).
_COLUMNS = ", ".join(CaseRow.__dataclass_fields__)
#: The case list keeps each priority's rank (``projections.case_list.PRIORITY_RANK``).
_PRIORITY = "priority_rank"
#: The SQL each sort orders by, before the case id that breaks ties.
_SORT_KEYS = {
    "opened_at": ("opened_at",),
    "updated_at": ("updated_at",),
    "sla_deadline": ("sla_deadline",),
    "priority": (_PRIORITY, "opened_at"),
}


@dataclass
class _Query:
    """A ``WHERE`` clause being built, with its named parameters."""

    clauses: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, clause: str, **params: Any) -> None:
        self.clauses.append(clause)
        self.params.update(params)

    @property
    def where(self) -> str:
        return " WHERE " + " AND ".join(self.clauses) if self.clauses else ""


class CaseListStore:
    """Answers the case-list queries."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[DictRow]],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pool = pool
        #: The time SLA states are judged at (the ledger's clock).
        self.clock = clock

    def list_cases(self, where: CaseFilter, limit: int, cursor: PageCursor | None) -> CaseListPage:
        """One page of cases, filtered and sorted by ``where``; ``cursor`` continues a
        listing with the same sort (another sort's cursor is refused)."""
        query = self._filtered(where)
        if cursor is not None:
            where.check_cursor(cursor)
            _after(query, where, cursor)
        keys = [*_SORT_KEYS[where.sort], "case_id"]
        direction = "DESC" if where.direction == "desc" else "ASC"
        # Cases without a deadline come last either way; other keys are never null (and a
        # NULLS clause they do not need would keep PostgreSQL from reading their index).
        order = ", ".join(
            f"{key} {direction}" + (" NULLS LAST" if key == "sla_deadline" else "") for key in keys
        )
        sql = f"SELECT {_COLUMNS} FROM case_list{query.where} ORDER BY {order} LIMIT %(limit)s"
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(NO_JIT)
            rows = conn.execute(sql.encode(), {**query.params, "limit": limit + 1}).fetchall()
        cases = [CaseRow.of(r) for r in rows[:limit]]
        last = cases[-1] if cases and len(rows) > limit else None
        return CaseListPage(
            cases=cases, next_cursor=PageCursor.after(last, where) if last else None
        )

    def _filtered(self, where: CaseFilter) -> _Query:
        query = _Query()
        for column in ("status", "case_type", "assignee", "queue", "priority", "party_id"):
            value = getattr(where, column)
            if value is not None:
                query.add(f"{column} = %({column})s", **{column: value})
        if where.unassigned:
            query.add("assignee IS NULL")
        if where.final is not None:
            query.add("final = %(final)s", final=where.final)
        for bound, column, op in (
            ("opened_from", "opened_at", ">="),
            ("opened_to", "opened_at", "<"),
            ("closed_from", "closed_at", ">="),
            ("closed_to", "closed_at", "<"),
        ):
            if getattr(where, bound) is not None:
                query.add(f"{column} {op} %({bound})s", **{bound: getattr(where, bound)})
        if where.sla_state == "breached":  # a range of the deadline index
            query.add("NOT final AND sla_deadline <= %(now)s", now=self.clock())
        elif where.sla_state is not None:
            rank = case_sla_rank_sql("%(now)s", "case_list")
            query.add(
                f"NOT final AND sla_deadline > %(now)s AND {rank} = %(sla_rank)s",
                now=self.clock(),
                sla_rank=SLA_RANK[where.sla_state],
            )
        if where.q:
            _search(query, where.q)
        return query

    def open_case_ids(self, case_type: str, below_version: int) -> list[UUID]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT case_id FROM case_list WHERE case_type = %s AND case_type_version < %s"
                " AND status <> 'closed' ORDER BY opened_at",
                (case_type, below_version),
            ).fetchall()
        return [r["case_id"] for r in rows]


def _search(query: _Query, text: str) -> None:
    """Full-text search over title, text fields and notes, or a case or party id."""
    found = ["search @@ websearch_to_tsquery('simple', %(q)s)", "party_id = %(q)s"]
    try:
        query.params["q_id"] = UUID(text.strip())
        found.append("case_id = %(q_id)s")
    except ValueError:
        pass
    query.add("(" + " OR ".join(found) + ")", q=text)


def _after(query: _Query, where: CaseFilter, cursor: PageCursor) -> None:
    """Keep the rows that come after the cursor in ``where``'s order."""
    op = "<" if where.direction == "desc" else ">"
    case_id = UUID(cursor.case_id)
    if where.sort == "priority":
        assert isinstance(cursor.value, tuple)
        rank, opened_at = cursor.value
        query.add(
            f"({_PRIORITY}, opened_at, case_id) {op} (%(c_rank)s, %(c_at)s, %(c_id)s)",
            c_rank=rank,
            c_at=opened_at,
            c_id=case_id,
        )
    elif where.sort == "sla_deadline" and cursor.value is None:
        # Cases without a deadline come last in either order, by case id.
        query.add(f"sla_deadline IS NULL AND case_id {op} %(c_id)s", c_id=case_id)
    elif where.sort == "sla_deadline":
        query.add(
            f"((sla_deadline, case_id) {op} (%(c_at)s, %(c_id)s) OR sla_deadline IS NULL)",
            c_at=cursor.value,
            c_id=case_id,
        )
    else:
        query.add(
            f"({where.sort}, case_id) {op} (%(c_at)s, %(c_id)s)",
            c_at=cursor.value,
            c_id=case_id,
        )
