"""The read models as CSV: a header line, then the rows, written page by page as they are
read so that an export holds one page in memory.

Lines and cells are written as the case list's export writes them (``services.csv_text``:
times in UTC ISO 8601, empty for null, numbers stay numbers, and text a spreadsheet would
run as a formula prefixed with ``'``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from typing import Any

from services.csv_text import cell, lines


def csv_pages(columns: Sequence[str], pages: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The CSV text of ``pages`` (each a list of dataclass rows), one chunk per page;
    ``columns`` name the fields written, in order."""
    yield lines([list(columns)])
    for page in pages:
        if page:
            yield lines([[cell(asdict(row)[c]) for c in columns] for row in page])
