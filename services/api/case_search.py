"""The query parameters of case search (``GET /cases`` and ``GET /exports/cases.csv``):
filters on every common attribute, full-text ``q``, the SLA state and the sort, read into
one :class:`services.queries.CaseFilter` (docs/read-models.md, "Case search")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query

from domain.errors import InvalidCommand
from services.api.schemas import NO_NUL
from services.queries import CaseFilter, CaseSort, Order, SlaState

_Text = Annotated[str | None, Query(max_length=100, pattern=NO_NUL)]
_Name = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]
# An instant as ISO 8601 text with its offset, and nothing else (pydantic would also take a
# number of seconds since 1970 for a datetime).
INSTANT = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})$"
_From = Query(
    max_length=40,
    pattern=INSTANT,
    description="the first instant included: ISO 8601 with its offset, e.g. 2026-11-01T00:00:00Z",
)
_To = Query(max_length=40, pattern=INSTANT, description="the first instant excluded")


def case_filter(
    status: _Text = None,
    case_type: _Text = None,
    assignee: _Name = None,
    queue: _Name = None,
    priority: Annotated[str | None, Query(max_length=20, pattern=NO_NUL)] = None,
    party_id: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="the party's cases")
    ] = None,
    unassigned: Annotated[bool, Query(description="only cases nobody is assigned")] = False,
    final: Annotated[
        bool | None, Query(description="true: closed or in a final state; false: open")
    ] = None,
    opened_from: Annotated[str | None, _From] = None,
    opened_to: Annotated[str | None, _To] = None,
    closed_from: Annotated[str | None, _From] = None,
    closed_to: Annotated[str | None, _To] = None,
    sla_state: Annotated[
        SlaState | None,
        Query(description="open cases whose worst running SLA clock is in this state"),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=NO_NUL,
            description="full-text search of title, text fields and notes (words, "
            '"a phrase", or, -word), or a case id, or a party id',
        ),
    ] = None,
    sort: Annotated[
        CaseSort,
        Query(
            description="opened_at (newest first), updated_at, sla_deadline (nearest "
            "first, cases without one last), priority (most urgent first)"
        ),
    ] = "opened_at",
    order: Annotated[Order | None, Query(description="default: the sort's natural one")] = None,
) -> CaseFilter:
    """The filters of the case list (the list and its CSV export take the same)."""
    return CaseFilter(
        status=status,
        case_type=case_type,
        assignee=assignee,
        queue=queue,
        priority=priority,
        party_id=party_id,
        unassigned=unassigned,
        final=final,
        opened_from=instant("opened_from", opened_from),
        opened_to=instant("opened_to", opened_to),
        closed_from=instant("closed_from", closed_from),
        closed_to=instant("closed_to", closed_to),
        sla_state=sla_state,
        q=q or None,
        sort=sort,
        order=order,
    )


def instant(name: str, text: str | None) -> datetime | None:
    """The instant ``text`` names (already shaped by :data:`INSTANT`), or a 422."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise InvalidCommand(
            f"{name}={text!r} is not a date and time that exists",
            hint="give an ISO 8601 instant with its offset, e.g. 2026-11-01T09:30:00+01:00",
        ) from None
