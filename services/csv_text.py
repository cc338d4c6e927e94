"""The text of the CSV exports (the case list's and the read models'), written the same way
for both: lines escaped by the ``csv`` module and ended by CRLF; times in UTC ISO 8601;
empty for null; numbers stay numbers; lists and objects as JSON; and text a spreadsheet
would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return) prefixed with ``'`` (OWASP's advice on CSV injection).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def lines(rows: list[list[str]]) -> str:
    """The CSV text of ``rows``, one line each."""
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
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text.startswith(_FORMULA_START) else text
