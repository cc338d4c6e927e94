"""The cells both CSV exports write (the case list's and the read models'): what a
spreadsheet would run as a formula is defused, and numbers, times and lists keep their
meaning."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from services.csv_text import cell, lines


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (-5, "-5"),
        (-0.5, "-0.5"),
        (
            datetime(2026, 11, 2, 10, 40, tzinfo=timezone(timedelta(hours=1))),
            "2026-11-02T09:40:00+00:00",
        ),
        (date(2026, 11, 2), "2026-11-02"),
        ("=1+1", "'=1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("a=b", "a=b"),
        (["été", "=x"], '["été", "=x"]'),
    ],
)
def test_a_cell_is_safe_in_a_spreadsheet_and_keeps_its_meaning(value: object, text: str) -> None:
    assert cell(value) == text


def test_lines_are_quoted_where_needed_and_end_with_crlf() -> None:
    assert lines([["a,b", 'say "hi"'], ["x", ""]]) == '"a,b","say ""hi"""\r\nx,\r\n'
