"""Read models for managers and analysts (docs/read-models.md): counts by status, case type,
assignee, queue or priority; the SLA status of open cases; cycle times; throughput per day;
workload per handler and queue; and every case of one party. Any authenticated role may
read them: the figures hold no field values, and a party's cases show each role only the
fields its view of the case type shows (``services.case_views``). Each list is also served
as CSV by ``services.api.read_model_exports``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from services.api.deps import CurrentCaller, Deps, authenticated, known_query_only
from services.api.language import Languages
from services.api.schemas import NO_NUL, ErrorBody
from services.case_views import Reader
from services.queries import CaseFilter, CaseSort, Order, PageCursor, SlaState
from services.read_models import (
    MAX_DAYS,
    CountBy,
    CycleBy,
    ReadModels,
    SlaWhere,
    WorkloadBy,
)

_errors: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 404, 422, 503, 504)
}
router = APIRouter(
    tags=["read models"],
    responses=_errors,
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)
Name = Annotated[str | None, Query(max_length=100, pattern=NO_NUL)]
CaseTypeParam = Annotated[
    str | None, Query(max_length=100, pattern=NO_NUL, description="only cases of this type")
]


async def read_models(deps: Deps) -> ReadModels:
    if deps.read_models is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "read models are not wired")
    return deps.read_models


Models = Annotated[ReadModels, Depends(read_models)]


class CountItem(BaseModel):
    key: str | None = Field(description="the value counted; null: none (unassigned, no queue)")
    label: str = Field(description="its label in the language of your Accept-Language")
    count: int


class CountsPublic(BaseModel):
    items: list[CountItem] = Field(description="most cases first")


class SlaClockItem(BaseModel):
    """An open case in the state of its worst running SLA clock (``sla``)."""

    case_id: UUID
    title: str
    case_type: str
    sla: str = Field(description="the SLA whose clock puts the case in this state")
    state: SlaState = Field(
        description="breached: its deadline passed; at_risk: a warning (or its goal) was "
        "reached, or less than a quarter of the time from its start to its deadline is left; "
        "on_time: otherwise"
    )
    due_at: datetime = Field(description="the deadline of the clock's current run")
    time_left_s: float = Field(description="seconds until the deadline (negative: past it)")
    assignee: str | None
    queue: str | None


class SlaStatusPublic(BaseModel):
    items: list[SlaClockItem] = Field(description="open cases, the nearest deadline first")
    next_cursor: str | None = Field(description="pass as cursor for the next page; null: last")


class CycleTimeItem(BaseModel):
    case_type: str
    state: str | None = Field(description="the state (by=state); null: opening to closing")
    month: str | None = Field(description="YYYY-MM of the closing (by=month), UTC")
    p50_s: float
    p90_s: float
    p99_s: float
    count: int = Field(description="closed cases (or stays in the state) measured")


class CycleTimesPublic(BaseModel):
    items: list[CycleTimeItem]


class ThroughputItem(BaseModel):
    day: date = Field(description="the day (UTC)")
    opened: int
    closed: int = Field(description="cases that entered a final state (or were closed)")
    reopened: int


class ThroughputPublic(BaseModel):
    items: list[ThroughputItem] = Field(description="every day, oldest first, today last")


class WorkloadItem(BaseModel):
    key: str | None = Field(description="the handler or queue; null: unassigned, no queue")
    label: str
    open: int = Field(description="open cases")
    at_risk: int = Field(description="open cases whose worst running SLA clock is at risk")
    breached: int = Field(description="open cases with a running SLA clock past its deadline")


class WorkloadPublic(BaseModel):
    items: list[WorkloadItem] = Field(description="most open cases first")


class PartyCase(BaseModel):
    id: UUID
    case_type: str
    case_type_label: str
    title: str
    status: str
    status_label: str
    final: bool = Field(description="closed, or in a final state of its case type")
    priority: str
    assignee: str | None
    queue: str | None
    opened_at: datetime
    closed_at: datetime | None
    fields: dict[str, Any] = Field(description="the field values your role's view shows")
    source: dict[str, Any] | None = Field(
        description="where the case came from: the silo (system), its record id there, the "
        "connector and its version; null: opened over the API"
    )


class PartyCasesPublic(BaseModel):
    party_id: str
    cases: list[PartyCase] = Field(description="across case types, in the sort asked for")
    next_cursor: str | None


@router.get("/read-models/counts")
def counts(
    models: Models,
    languages: Languages,
    by: Annotated[CountBy, Query(description="what to count cases by")] = "status",
    case_type: CaseTypeParam = None,
) -> CountsPublic:
    """How many cases (open and closed) have each status, case type, assignee, queue or
    priority, with labels beside the keys (a status shared by several case types takes the
    label of the type with most of its cases; give ``case_type`` to count one type)."""
    items = models.counts(by, case_type, languages)
    return CountsPublic(items=[CountItem(key=i.key, label=i.label, count=i.count) for i in items])


@router.get("/read-models/sla-status")
def sla_status(
    models: Models,
    state: Annotated[SlaState | None, Query(description="only clocks in this state")] = None,
    case_type: CaseTypeParam = None,
    queue: Name = None,
    assignee: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500, pattern=NO_NUL)] = None,
) -> SlaStatusPublic:
    """Open cases with running SLA clocks, the nearest deadline first, each in the state of
    its worst clock (breached, else at risk, else on time; paused clocks are not judged),
    with that clock's time left. ``analytics.sla_status`` lists every clock."""
    where = SlaWhere(case_type=case_type, queue=queue, assignee=assignee)
    page = models.sla_status(state, where, limit, cursor)
    return SlaStatusPublic(
        items=[SlaClockItem.model_validate(i, from_attributes=True) for i in page.items],
        next_cursor=page.next_cursor.encode() if page.next_cursor else None,
    )


@router.get("/read-models/cycle-times")
def cycle_times(
    models: Models,
    by: Annotated[CycleBy, Query(description="per case type, per state, or per month")] = (
        "case_type"
    ),
    case_type: CaseTypeParam = None,
) -> CycleTimesPublic:
    """How long cases take, in seconds, as the 50th, 90th and 99th percentiles: from
    opening to closing (entering a final state) per case type, or per case type and month
    of closing, or the time spent in each state per case type."""
    items = models.cycle_times(by, case_type)
    return CycleTimesPublic(
        items=[CycleTimeItem.model_validate(i, from_attributes=True) for i in items]
    )


@router.get("/read-models/throughput")
def throughput(
    models: Models,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="today and the days before")] = 30,
    case_type: CaseTypeParam = None,
) -> ThroughputPublic:
    """Cases opened, closed and reopened on each of the last ``days`` days (UTC)."""
    items = models.throughput(days, case_type)
    return ThroughputPublic(
        items=[ThroughputItem.model_validate(i, from_attributes=True) for i in items]
    )


@router.get("/read-models/workload")
def workload(
    models: Models,
    languages: Languages,
    by: Annotated[WorkloadBy, Query(description="per handler or per queue")] = "assignee",
) -> WorkloadPublic:
    """Open cases per handler or queue, and how many of them are at risk or breached."""
    items = models.workload(by, languages)
    return WorkloadPublic(
        items=[WorkloadItem.model_validate(i, from_attributes=True) for i in items]
    )


@router.get("/parties/{party_id}/cases")
def party_cases(
    deps: Deps,
    caller: CurrentCaller,
    languages: Languages,
    party_id: Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)],
    sort: Annotated[CaseSort, Query()] = "opened_at",
    order: Annotated[Order | None, Query(description="default: the sort's natural one")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500, pattern=NO_NUL)] = None,
) -> PartyCasesPublic:
    """Every case of one party (customer, patient, policy holder), across case types, with
    where each came from (``source``); newest first unless sorted otherwise."""
    where = CaseFilter(party_id=party_id, sort=sort, order=order)
    after = PageCursor.decode(cursor) if cursor else None
    reader = Reader(caller.role, caller.actor_id, languages)
    page = deps.views.page(deps.cases, where, limit, after, reader)
    return PartyCasesPublic(
        party_id=party_id,
        cases=[
            PartyCase(
                id=UUID(v.row.case_id),
                case_type=v.row.case_type,
                case_type_label=v.case_type_label,
                title=v.row.title,
                status=v.row.status,
                status_label=v.status_label,
                final=v.row.final,
                priority=v.row.priority,
                assignee=v.row.assignee,
                queue=v.row.queue,
                opened_at=v.row.opened_at,
                closed_at=v.row.closed_at,
                fields=v.fields,
                source=v.row.source,
            )
            for v in page.rows
        ],
        next_cursor=page.next_cursor.encode() if page.next_cursor else None,
    )
