"""Exports: the case list as CSV (``GET /exports/cases.csv``), with the filters of
``GET /cases`` and the same read rights, streamed page by page in constant memory."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from services.api.case_search import case_filter
from services.api.cases import reader
from services.api.deps import CurrentCaller, Deps, authenticated, known_query_only
from services.api.language import Languages
from services.api.schemas import ErrorBody
from services.case_view_csv import export_csv
from services.deadline import deadline_in
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
    return StreamingResponse(
        _each_within(chunks, deps.deadline_s),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="cases.csv"'},
    )


def _each_within(chunks: Iterator[str], seconds: float | None) -> Iterator[str]:
    """``chunks``, each read under a deadline of its own: the request's deadline covers the
    first page (read before the answer starts), and a long export is not cut off when it
    passes. Each chunk is read in a fresh context, outside the request's deadline."""
    while True:
        chunk = contextvars.Context().run(_next_within, chunks, seconds)
        if chunk is None:
            return
        yield chunk


def _next_within(chunks: Iterator[str], seconds: float | None) -> str | None:
    with deadline_in(seconds):
        return next(chunks, None)
