"""Queries over read models: what the API asks, independent of how the view is stored.

The case list (case search) takes a :class:`CaseFilter` (every common attribute, full-text
``q``, the SLA state, and the sort) and pages with a :class:`PageCursor` that carries the
sort it was made for: a cursor continues only the listing that gave it out.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, get_args
from uuid import UUID

from domain.errors import InvalidCommand
from projections.case_list import PRIORITY_RANK, CaseRow

CaseSort = Literal["opened_at", "updated_at", "sla_deadline", "priority"]
Order = Literal["asc", "desc"]
SlaState = Literal["on_time", "at_risk", "breached"]
SORTS: tuple[str, ...] = get_args(CaseSort)
SLA_STATES: tuple[str, ...] = get_args(SlaState)
#: Each sort's direction when none is asked for: newest, latest change, nearest deadline,
#: most urgent first.
NATURAL_ORDER: dict[str, Order] = {
    "opened_at": "desc",
    "updated_at": "desc",
    "sla_deadline": "asc",
    "priority": "desc",
}
#: A running SLA clock is breached once its deadline has passed; at risk once a warning
#: milestone (or its goal) is reached, or once less than ``AT_RISK_SHARE`` of the time
#: between its start and its deadline is left; else on time. Priorities rank from least to
#: most urgent (``PRIORITY_RANK``). Both are defined with the case list, which keeps each
#: case's rank and the instant it becomes at risk (``projections.case_list``).


@dataclass(frozen=True)
class CaseFilter:
    """Filters and sort of the case list; ``None`` means any.

    Dates are ranges ``[from, to)``. ``final`` is true for cases closed or in a final state,
    false for open ones. ``sla_state`` keeps cases whose worst running SLA clock is in that
    state (docs/read-models.md, "SLA status"). ``q`` is full-text search over title, text
    fields and notes (PostgreSQL ``websearch_to_tsquery('simple', q)``: words, "a phrase",
    ``or``, ``-word``), and also finds a case by its id or its party's id.
    """

    status: str | None = None
    case_type: str | None = None
    assignee: str | None = None
    queue: str | None = None
    priority: str | None = None
    party_id: str | None = None
    unassigned: bool = False
    final: bool | None = None
    opened_from: datetime | None = None
    opened_to: datetime | None = None
    closed_from: datetime | None = None
    closed_to: datetime | None = None
    sla_state: SlaState | None = None
    q: str | None = None
    sort: CaseSort = "opened_at"
    order: Order | None = None

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise InvalidCommand(
                f"cannot sort by {self.sort!r}", hint=f"sort by one of {', '.join(SORTS)}"
            )
        if self.unassigned and self.assignee is not None:
            raise InvalidCommand(
                "assignee and unassigned=true ask for different cases",
                hint="give one of them: assignee=NAME for a handler's cases, unassigned=true "
                "for cases nobody holds",
            )
        for name in ("opened", "closed"):
            start, end = getattr(self, f"{name}_from"), getattr(self, f"{name}_to")
            if start is not None and end is not None and start >= end:
                raise InvalidCommand(
                    f"{name}_from ({start.isoformat()}) is not before {name}_to "
                    f"({end.isoformat()})",
                    hint=f"{name}_from is the first instant included, {name}_to the first "
                    "excluded: give a range that is not empty",
                )
        if self.sla_state is not None and self.sla_state not in SLA_STATES:
            raise InvalidCommand(
                f"no SLA state is called {self.sla_state!r}",
                hint=f"SLA states: {', '.join(SLA_STATES)}",
            )

    @property
    def direction(self) -> Order:
        return self.order or NATURAL_ORDER[self.sort]

    def check_cursor(self, cursor: PageCursor) -> None:
        """Refuse a cursor that another sort gave out: it would skip or repeat cases."""
        if (cursor.sort, cursor.order) != (self.sort, self.direction):
            raise InvalidCommand(
                f"this cursor continues a list sorted by {cursor.sort} {cursor.order}, "
                f"not by {self.sort} {self.direction}",
                hint="pass the same sort and order as the request that gave the cursor, "
                "or omit the cursor to start again",
            )


SortValue = datetime | int | None


@dataclass(frozen=True)
class PageCursor:
    """Where the previous page ended: the sort's values in its last row (``value``; for
    the priority sort, the rank and the opening time) and that row's case id."""

    value: SortValue | tuple[int, datetime]
    case_id: str
    sort: str = "opened_at"
    order: str = "desc"

    @classmethod
    def after(cls, row: CaseRow, where: CaseFilter) -> PageCursor:
        """The cursor that continues ``where``'s listing after ``row``."""
        value: SortValue | tuple[int, datetime]
        if where.sort == "priority":
            value = (PRIORITY_RANK.get(row.priority, 0), row.opened_at)
        else:
            value = getattr(row, where.sort)
        return cls(value, row.case_id, where.sort, where.direction)

    def encode(self) -> str:
        if isinstance(self.value, tuple):
            value: Any = [self.value[0], self.value[1].isoformat()]
        else:
            value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        raw = json.dumps({"s": self.sort, "o": self.order, "v": value, "id": self.case_id})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> PageCursor:
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if isinstance(raw, list) and len(raw) == 2:  # before sorts: newest first
                raw = {"s": "opened_at", "o": "desc", "v": raw[0], "id": raw[1]}
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                raise TypeError("a cursor holds its sort and a case id")
            sort, order = raw.get("s"), raw.get("o")
            if sort not in SORTS or order not in ("asc", "desc"):
                raise ValueError(f"unknown sort {sort!r} {order!r}")
            return cls(_sort_value(sort, raw.get("v")), str(UUID(raw["id"])), sort, order)
        except (ValueError, TypeError, KeyError, IndexError) as error:
            raise InvalidCommand(
                f"the cursor {token[:40]!r} is not one this API gave out",
                hint="pass the next_cursor of the previous page unchanged, or omit it",
            ) from error


def _sort_value(sort: str, value: object) -> SortValue | tuple[int, datetime]:
    """The sort value a cursor holds, checked (a forged cursor may hold anything)."""
    if sort == "priority":
        if not isinstance(value, list) or len(value) != 2 or type(value[0]) is not int:
            raise TypeError("a priority cursor holds a rank and a time")
        return (value[0], _instant(value[1]))
    if value is None and sort == "sla_deadline":
        return None
    return _instant(value)


def _instant(value: object) -> datetime:
    if not isinstance(value, str):
        raise TypeError("a cursor's time is a string")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("a cursor's time has its offset")
    return moment


@dataclass(frozen=True)
class CaseListPage:
    cases: list[CaseRow]
    next_cursor: PageCursor | None


class CaseListQueries(Protocol):
    """The case list, as the API reads it."""

    def list_cases(
        self, where: CaseFilter, limit: int, cursor: PageCursor | None
    ) -> CaseListPage: ...

    def open_case_ids(self, case_type: str, below_version: int) -> list[UUID]:
        """Cases of ``case_type`` not closed, pinned to a version below ``below_version``."""
        ...
