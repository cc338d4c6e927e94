"""The read models as CSV (``GET /exports/<read model>.csv``), with the parameters of their
``GET /read-models/...`` routes, streamed: the SLA status is read page by page by its
cursor, so an export of any size holds one page in memory; the other read models are
aggregates of one row per key (per day, per handler...). The case list and a party's cases
export through ``GET /exports/cases.csv`` (``?party_id=``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from services.api.csv_stream import csv_response
from services.api.deps import Deps, authenticated, known_query_only
from services.api.language import Languages
from services.api.read_models import CaseTypeParam, Models, Name
from services.api.schemas import NO_NUL, ErrorBody
from services.queries import SlaState
from services.read_model_csv import csv_pages
from services.read_models import MAX_DAYS, CountBy, CycleBy, ReadModels, SlaWhere, WorkloadBy

#: Clocks read per query while exporting the SLA status.
PAGE_SIZE = 500
_CSV: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "a header line, then one line per row",
    }
}
router = APIRouter(
    prefix="/exports",
    tags=["exports"],
    responses={code: {"model": ErrorBody} for code in (401, 422, 503, 504)},
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)


def _csv(
    name: str, columns: Sequence[str], pages: Iterator[Sequence[Any]], seconds: float | None
) -> StreamingResponse:
    # The first page is read now: what refuses the export is raised before it starts.
    first = next(pages, [])
    chunks = csv_pages(columns, chain([first], pages))
    return csv_response(name, chunks, seconds)


@router.get("/counts.csv", response_class=StreamingResponse, responses=_CSV)
def export_counts(
    deps: Deps,
    models: Models,
    languages: Languages,
    by: Annotated[CountBy, Query()] = "status",
    case_type: CaseTypeParam = None,
) -> StreamingResponse:
    """``GET /read-models/counts`` as CSV: key, label, count."""
    rows = models.counts(by, case_type, languages)
    return _csv("counts", ("key", "label", "count"), iter([rows]), deps.deadline_s)


@router.get("/sla-status.csv", response_class=StreamingResponse, responses=_CSV)
def export_sla_status(
    deps: Deps,
    models: Models,
    state: Annotated[SlaState | None, Query()] = None,
    case_type: CaseTypeParam = None,
    queue: Name = None,
    assignee: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
) -> StreamingResponse:
    """``GET /read-models/sla-status`` as CSV, every page of it: case_id, title, case_type,
    sla, state, due_at, time_left_s, assignee, queue."""
    where = SlaWhere(case_type=case_type, queue=queue, assignee=assignee)
    columns = (
        "case_id",
        "title",
        "case_type",
        "sla",
        "state",
        "due_at",
        "time_left_s",
        "assignee",
        "queue",
    )
    pages = _sla_pages(models, state, where)
    return _csv("sla-status", columns, pages, deps.deadline_s)


def _sla_pages(
    models: ReadModels, state: SlaState | None, where: SlaWhere
) -> Iterator[Sequence[Any]]:
    cursor: str | None = None
    while True:
        page = models.sla_status(state, where, PAGE_SIZE, cursor)
        yield page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor.encode()


@router.get("/cycle-times.csv", response_class=StreamingResponse, responses=_CSV)
def export_cycle_times(
    deps: Deps,
    models: Models,
    by: Annotated[CycleBy, Query()] = "case_type",
    case_type: CaseTypeParam = None,
) -> StreamingResponse:
    """``GET /read-models/cycle-times`` as CSV: case_type, state, month, p50_s, p90_s,
    p99_s, count."""
    columns = ("case_type", "state", "month", "p50_s", "p90_s", "p99_s", "count")
    rows = models.cycle_times(by, case_type)
    return _csv("cycle-times", columns, iter([rows]), deps.deadline_s)


@router.get("/throughput.csv", response_class=StreamingResponse, responses=_CSV)
def export_throughput(
    deps: Deps,
    models: Models,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 30,
    case_type: CaseTypeParam = None,
) -> StreamingResponse:
    """``GET /read-models/throughput`` as CSV: day, opened, closed, reopened."""
    rows = models.throughput(days, case_type)
    columns = ("day", "opened", "closed", "reopened")
    return _csv("throughput", columns, iter([rows]), deps.deadline_s)


@router.get("/workload.csv", response_class=StreamingResponse, responses=_CSV)
def export_workload(
    deps: Deps,
    models: Models,
    languages: Languages,
    by: Annotated[WorkloadBy, Query()] = "assignee",
) -> StreamingResponse:
    """``GET /read-models/workload`` as CSV: key, label, open, at_risk, breached."""
    rows = models.workload(by, languages)
    columns = ("key", "label", "open", "at_risk", "breached")
    return _csv("workload", columns, iter([rows]), deps.deadline_s)
