"""The case list as CSV, written page by page as the rows are read, so that an export of any
size holds one page in memory.

Columns: the case id, then the columns of the reader's role view when the export is of one
case type (``views:`` ``columns``, without fields the view hides), else the attributes every
case has. Status, priority and case type come with their labels in the reader's language
beside them, and so do the choice fields of an export of one case type (``fields.category``
then ``fields.category_label``); a personal value erased with its subject reads
``(erased)``. Lines and cells are written by ``services.csv_text``:
escaped by the ``csv`` module, and text that a spreadsheet would run as a formula is
prefixed with ``'`` (OWASP's advice on CSV injection).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

from services.case_views import CaseViews, Reader, RowView
from services.csv_text import cell, lines
from services.personal_data import ERASED_TEXT
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
    view_columns, sees, choices = None, None, frozenset[str]()
    if where.case_type is not None:
        view_columns = views.columns(where.case_type, role)
        sees = views.visible_fields(where.case_type, role)
        choices = views.choice_fields(where.case_type)
    pages = views.pages(cases, where, reader, page_size)
    first = next(pages)
    return csv_chunks(chain([first], pages), export_columns(view_columns, sees, choices))


@dataclass(frozen=True)
class Column:
    """A column of the export: its header, and what it shows of a row."""

    header: str
    value: Callable[[RowView], Any]


def export_columns(
    view_columns: list[str] | None,
    sees: frozenset[str] | None,
    choice_fields: frozenset[str] = frozenset(),
) -> list[Column]:
    """The CSV's columns: ``id``, then the role's view columns (``None``: the common ones)
    without the fields its view hides (``sees``: the fields it sees, ``None`` for all), each
    labelled key followed by its label: status, priority, case type, and the fields among
    ``choice_fields`` (``fields.<name>_label``)."""
    chosen = list(COMMON) if view_columns is None else view_columns
    columns = [Column("id", lambda row: row.row.case_id)]
    for column in chosen:
        name = column[len(_FIELD) :] if column.startswith(_FIELD) else None
        if name is None:
            columns.append(Column(column, _attribute(column)))
            if column in LABELLED:
                columns.append(Column(LABELLED[column], _label(LABELLED[column])))
        elif sees is None or name in sees:
            columns.append(Column(column, _field(name)))
            if name in choice_fields:
                columns.append(Column(f"{column}_label", _choice_label(name)))
    return columns


def _attribute(name: str) -> Callable[[RowView], Any]:
    return lambda row: getattr(row.row, name, None)


def _label(name: str) -> Callable[[RowView], Any]:
    return lambda row: getattr(row, name)


def _field(name: str) -> Callable[[RowView], Any]:
    def value(row: RowView) -> Any:
        found = row.fields.get(name)
        return ERASED_TEXT if found is None and name in row.erased else found

    return value


def _choice_label(name: str) -> Callable[[RowView], Any]:
    return lambda row: row.choice_labels.get(name)


def csv_chunks(pages: Iterable[list[RowView]], columns: list[Column]) -> Iterator[str]:
    """The CSV text: the header line, then one chunk per page of rows."""
    yield lines([[column.header for column in columns]])
    for rows in pages:
        if rows:
            yield lines([[cell(column.value(row)) for column in columns] for row in rows])
