"""Property tests of the decision-table type checks, over tables generated for a generated set
of fields (the strategy of tests/unit/test_expression_properties.py): a table whose cells are
well typed for their inputs is accepted, and the same table with one cell replaced by an
ill-typed one is refused at that cell's place."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.case_type_document import problems_in
from tests.unit.test_expression_properties import fields


@st.composite
def column(draw: st.DrawFn, name: str, spec: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    """An input on ``fields.<name>``, the well-typed cells it may have, and ill-typed ones."""
    f = f"fields.{name}"
    n = draw(st.integers(-1000, 1000))
    day = draw(st.dates(date(1990, 1, 1), date(2100, 12, 31))).isoformat()
    kind = spec["type"]
    if kind in ("number", "money"):
        source = f if kind == "number" else f"{f}.amount"
        return source, [f"> {n}", f"[{n}..{n + 10}]", f"{n}", f"<= {n}.5"], [f'"{n}"', '> "x"']
    if kind == "date":
        slashed = f'"{day[8:10]}/{day[5:7]}/{day[:4]}"'
        return f, [f'"{day}"'], [f'> "{day}"', slashed, f"{n}"]
    if kind == "choice":
        choices = spec["choices"]
        listed = ", ".join(f'"{c}"' for c in choices)
        return f, [f'"{choices[0]}"', listed], [f'"{choices[0]}ZZ"', f'> "{choices[0]}"', f"{n}"]
    if kind == "text":
        return f, ['"a"', '"a", "b"'], [f"> {n}", f"{n}"]
    return f, ["true", "false"], ['"true"', "1", "> 1"]


@st.composite
def tables(draw: st.DrawFn) -> tuple[dict[str, Any], list[str], list[list[str]], list[list[str]]]:
    declared = draw(fields())
    names = draw(st.lists(st.sampled_from(sorted(declared)), min_size=1, max_size=4))
    columns = [draw(column(name, declared[name])) for name in names]
    rows = draw(st.integers(1, 5))
    good = [[draw(st.sampled_from(["", *c[1]])) for c in columns] for _ in range(rows)]
    bad = [c[2] for c in columns]
    return declared, [c[0] for c in columns], good, bad


def document(declared: dict[str, Any], inputs: list[str], rows: list[list[str]]) -> dict[str, Any]:
    return {
        "name": "generated", "labels": {"en": "Generated"},
        "states": {"open": {"initial": True}, "done": {"final": True}},
        "fields": declared,
        "decision_tables": {"t": {"inputs": inputs, "outputs": ["queue"],
                                  "rows": [{"when": when, "then": {"queue": "q"}}
                                           for when in rows]}},
        "rules": [{"name": "r", "on": ["CaseOpened"], "do": [{"assign": {"table": "t"}}]}],
    }  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(tables())
def test_well_typed_tables_are_accepted(
    generated: tuple[dict[str, Any], list[str], list[list[str]], list[list[str]]],
) -> None:
    declared, inputs, rows, _ = generated
    assert problems_in(document(declared, inputs, rows)) == [], (inputs, rows)


@settings(max_examples=100, deadline=None)
@given(tables(), st.data())
def test_one_ill_typed_cell_is_refused_at_its_place(
    generated: tuple[dict[str, Any], list[str], list[list[str]], list[list[str]]],
    data: st.DataObject,
) -> None:
    declared, inputs, rows, bad = generated
    r = data.draw(st.integers(0, len(rows) - 1))
    c = data.draw(st.integers(0, len(inputs) - 1))
    rows[r][c] = data.draw(st.sampled_from(bad[c]))
    problems = problems_in(document(declared, inputs, rows))
    assert problems, (inputs, rows)
    assert all(p.startswith(f"decision_tables.t.rows[{r}].when[{c}]: ") for p in problems), problems
