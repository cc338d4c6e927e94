"""Exports: the case list as CSV (``GET /exports/cases.csv``), with the filters of
``GET /cases`` and the same read rights, streamed page by page in constant memory."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from services.api.case_search import case_filter
from services.api.cases import reader
from services.api.csv_stream import csv_response
from services.api.deps import CurrentCaller, Deps, authenticated, known_query_only
from services.api.language import Languages
from services.api.schemas import ErrorBody
from services.case_view_csv import export_csv
from services.queries import CaseFilter

#: Cases read per query while exporting: one page is all an export holds in memory.
PAGE_SIZE = 500

router = APIRouter(
    prefix="/exports",
    tags=["exports"],
    responses={code: {"model": ErrorBody} for code in (401, 404, 422, 503, 504)},
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)


@router.get(
    "/cases.csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "the cases, newest first: a header line, then one line per case",
        }
    },
)
def export_cases(
    deps: Deps,
    caller: CurrentCaller,
    languages: Languages,
    where: Annotated[CaseFilter, Depends(case_filter)],
) -> StreamingResponse:
    """The case list as CSV, with the filters of ``GET /cases``, newest first, whatever its
    size. Columns: ``id``, then with ``?case_type=`` the list columns of your role's view of
    it, else the attributes every case has; status, priority and case type are followed by
    their labels in the language of your Accept-Language header. Fields your role's view
    hides are never exported. Text a spreadsheet would run as a formula starts with '."""
    chunks = export_csv(deps.views, deps.cases, where, reader(caller, languages), PAGE_SIZE)
    return csv_response("cases", chunks, deps.deadline_s)
