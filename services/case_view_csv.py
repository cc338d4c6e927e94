"""The case list as CSV, written page by page as the rows are read, so that an export of any
size holds one page in memory.

Columns: the case id, then the columns of the reader's role view when the export is of one
case type (``views:`` ``columns``, without fields the view hides), else the attributes every
case has. Status, priority and case type come with their labels in the reader's language
beside them. Cells are escaped by the ``csv`` module, and text that a spreadsheet would run
as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is
prefixed with ``'`` (OWASP's advice on CSV injection).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from services.case_views import CaseViews, Reader, RowView
from services.queries import CaseFilter, CaseListQueries

COMMON = (
    "case_type",
    "title",
    "status",
    "priority",
    "queue",
    "assignee",
    "party_id",
    "escalations",
    "sla_breaches",
    "version",
    "opened_at",
    "updated_at",
)
LABELLED = {
    "status": "status_label",
    "priority": "priority_label",
    "case_type": "case_type_label",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FIELD = "fields."


def export_csv(
    views: CaseViews,
    cases: CaseListQueries,
    where: CaseFilter,
    reader: Reader,
    page_size: int,
) -> Iterator[str]:
    """The case list filtered by ``where`` as ``reader`` may read it, as CSV text in chunks.
    The first page is read before this returns, so that what refuses the export (an unknown
    case type, the database down) is raised here, not halfway through a stream."""
    role = reader.role.value
    view_columns, sees = None, None
    if where.case_type is not None:
        view_columns = views.columns(where.case_type, role)
        sees = views.visible_fields(where.case_type, role)
    pages = views.pages(cases, where, reader, page_size)
    first = next(pages)
    return csv_chunks(chain([first], pages), export_columns(view_columns, sees))


def export_columns(view_columns: list[str] | None, sees: frozenset[str] | None) -> list[str]:
    """The CSV's columns: ``id``, then the role's view columns (``None``: the common ones)
    without the fields its view hides (``sees``: the fields it sees, ``None`` for all), each
    labelled key followed by its label."""
    chosen = list(COMMON) if view_columns is None else view_columns
    columns = ["id"]
    for column in chosen:
        if column.startswith(_FIELD) and sees is not None and column[len(_FIELD) :] not in sees:
            continue
        columns.append(column)
        if column in LABELLED:
            columns.append(LABELLED[column])
    return columns


def csv_chunks(pages: Iterable[list[RowView]], columns: list[str]) -> Iterator[str]:
    """The CSV text: the header line, then one chunk per page of rows."""
    yield _lines([columns])
    for rows in pages:
        if rows:
            yield _lines([[cell(row, column) for column in columns] for row in rows])


def _lines(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def cell(row: RowView, column: str) -> str:
    """The text of ``column`` for ``row``, safe to open in a spreadsheet."""
    if column == "id":
        return row.row.case_id
    if column.startswith(_FIELD):
        value = row.fields.get(column[len(_FIELD) :])
    elif column in LABELLED.values():
        value = getattr(row, column)
    else:
        value = getattr(row.row, column, None)
    return _text(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)  # a number cannot be a formula, and "-5" must stay -5
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text.startswith(_FORMULA_START) else text
