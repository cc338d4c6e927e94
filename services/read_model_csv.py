"""The read models as CSV: a header line, then the rows, written page by page as they are
read so that an export holds one page in memory.

Cells follow the case list's export (``services.case_view_csv``): times in UTC ISO 8601,
empty for null, and text a spreadsheet would run as a formula (starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return) prefixed with ``'`` (OWASP's advice on CSV
injection); numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_pages(columns: Sequence[str], pages: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The CSV text of ``pages`` (each a list of dataclass rows), one chunk per page;
    ``columns`` name the fields written, in order."""
    yield lines([list(columns)])
    for page in pages:
        if page:
            yield lines([[cell(asdict(row)[c]) for c in columns] for row in page])


def lines(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def cell(value: object) -> str:
    """The text of one value, safe to open in a spreadsheet."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)  # a number cannot be a formula, and "-5" must stay -5
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text
