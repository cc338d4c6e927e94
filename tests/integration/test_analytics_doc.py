"""docs/read-models.md documents every column of every relation of the ``analytics`` schema
(the analysts' contract) and of the projections' tables, as PostgreSQL has them after a
bootstrap: a column added, renamed or dropped without the document fails here."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from infra.bootstrap import Container

DOC = Path(__file__).resolve().parents[2] / "docs" / "read-models.md"
#: The projections' tables the document describes column by column.
TABLES = (
    "case_list",
    "status_history",
    "sla_outcomes",
    "sla_timers",
    "notification_outbox",
    "projection_state",
    "projection_dead_letters",
)
_HEADING = re.compile(r"^#+\s")
_NAMED = re.compile(r"`([\w.]+)`")
_PARAGRAPH = re.compile(r"^`([\w.]+)`:\s*$")
_ROW = re.compile(r"^\|\s*(`\w+`(?:,\s*`\w+`)*)\s*\|")


def documented_columns(text: str) -> dict[str, set[str]]:
    """Relation -> the columns its tables list, from the heading (or a "`name`:" line)
    above each column table."""
    columns: dict[str, set[str]] = defaultdict(set)
    current: str | None = None
    for line in text.splitlines():
        if _HEADING.match(line):
            named = _NAMED.search(line)
            current = named.group(1) if named else None
        elif paragraph := _PARAGRAPH.match(line):
            current = paragraph.group(1)
        elif (row := _ROW.match(line)) and current is not None:
            columns[current].update(_NAMED.findall(row.group(1)))
    return columns


def actual_columns(container: Container) -> dict[str, set[str]]:
    with container.pool.connection() as conn:
        rows = conn.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'analytics'"
            " OR (table_schema = 'public' AND table_name = ANY(%s))",
            (list(TABLES),),
        ).fetchall()
    found: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        prefix = "analytics." if r["table_schema"] == "analytics" else ""
        found[prefix + r["table_name"]].add(r["column_name"])
    return found


def test_every_analytics_view_and_read_model_table_is_documented_column_for_column(
    container: Container,
) -> None:
    documented = documented_columns(DOC.read_text())
    actual = actual_columns(container)
    assert any(name.startswith("analytics.") for name in actual)
    problems = []
    for name, columns in sorted(actual.items()):
        missing = sorted(columns - documented.get(name, set()))
        if missing:
            problems.append(f"{name}: not documented: {', '.join(missing)}")
    for name, columns in sorted(documented.items()):
        if name.startswith("analytics.") or name in TABLES:
            absent = sorted(columns - actual.get(name, set()))
            if absent:
                problems.append(f"{name}: documented but absent: {', '.join(absent)}")
    assert not problems, "docs/read-models.md is out of date:\n" + "\n".join(problems)


def test_the_parser_reads_headings_paragraph_names_and_column_cells() -> None:
    text = (
        "### `analytics.cases` — one row\n| column | type |\n|---|---|\n"
        "| `case_id` | uuid |\n| `a`, `b` | x |\n## Other\n| `ignored` | x |\n"
        "`status_history`:\n\n| `seq` | integer |\n"
    )
    assert documented_columns(text) == {
        "analytics.cases": {"case_id", "a", "b"},
        "status_history": {"seq"},
    }
