"""Property tests of the expression type checker, over conditions generated from a grammar of
well-typed parts for a generated set of fields:

- every well-typed condition is accepted, and the real CEL engine evaluates it on generated
  values of those fields to true or false, never to a type error;
- the same condition with one part replaced by an ill-typed mutant (money compared with a
  number, a date with a timestamp, an unknown field, a function that does not exist, a number
  in arithmetic without conversion...) is refused, and the problem names its path.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import date
from typing import Any

import cel
from hypothesis import given, settings
from hypothesis import strategies as st

from services.case_type_document import problems_in
from services.expressions import plain

KINDS = ("number", "money", "date", "choice", "text", "boolean")
WORDS = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=6)
NUMBERS = st.one_of(
    st.integers(-1_000_000, 1_000_000),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)


@dataclass(frozen=True)
class Part:
    """A well-typed condition on one field, and an ill-typed mutant of it."""

    good: str
    bad: str


@st.composite
def fields(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=6))
    declared: dict[str, dict[str, Any]] = {}
    for index, kind in enumerate(kinds):
        spec: dict[str, Any] = {"type": kind}
        if kind == "choice":
            spec["choices"] = draw(st.lists(WORDS, min_size=1, max_size=4, unique=True))
        declared[f"f{index}"] = spec
    return declared


def _date(day: date) -> str:
    return day.isoformat()


@st.composite
def part(draw: st.DrawFn, name: str, spec: dict[str, Any]) -> Part:
    """One condition on ``fields.<name>`` and a mutant that breaks its types."""
    f = f"fields.{name}"
    n = draw(st.integers(-1000, 1000))
    x = draw(st.floats(-1000, 1000, allow_nan=False, allow_infinity=False))
    day = _date(draw(st.dates(date(1990, 1, 1), date(2100, 12, 31))))
    kind = spec["type"]
    options: list[Part] = [Part(f"has({f})", f"has(fields.{name}zz)")]
    if kind == "number":
        options += [
            Part(f"{f} > {n}", f'{f} == "{n}"'),
            Part(f"{f} <= {x!r}", f'{f}.startsWith("1")'),
            Part(f"double({f}) * 1.5 > {x!r}", f"{f} * 2 > {n}"),
        ]
    elif kind == "money":
        options += [
            Part(f"{f}.amount > {n}", f"{f} > {n}"),
            Part(f'{f}.currency == "EUR"', f"{f} == {n}"),
            Part(f"double({f}.amount) + 1.0 > {x!r}", f"{f}.amount + 1 > {n}"),
        ]
    elif kind == "date":
        slashed = f"{day[8:10]}/{day[5:7]}/{day[:4]}"
        options += [
            Part(f'{f} >= "{day}"', f'{f} >= "{slashed}"'),
            Part(f'{f} < "{day}"', f'{f} < timestamp("{day}T00:00:00Z")'),
            Part(
                f'timestamp({f} + "T00:00:00Z").getFullYear() > 1900',
                f"{f}.getFullYear() > 1900",
            ),
        ]
    elif kind == "choice":
        choice = draw(st.sampled_from(spec["choices"]))
        listed = ", ".join(f'"{c}"' for c in spec["choices"])
        options += [
            Part(f'{f} == "{choice}"', f'{f} == "{choice}zz"'),
            Part(f"{f} in [{listed}]", f'{f} > "{choice}"'),
        ]
    elif kind == "text":
        options += [
            Part(f'{f}.contains("a")', f"{f}.contains(1)"),
            Part(f"size({f}) < {abs(n)}", f"lenght({f}) < {abs(n)}"),
            Part(f'{f} + "x" != ""', f"{f} > {n}"),
        ]
    else:
        options += [
            Part(f"{f}", f"{f} > 1"),
            Part(f"!{f}", f"{f} + 1 > 0"),
            Part(f"{f} == true", f"{f}.size() == 1"),
        ]
    options += [
        Part('case.priority in ["high", "urgent"]', 'case.priority > "high"'),
        Part(f"case.version > {n}", f'case.version > "{n}"'),
    ]
    return draw(st.sampled_from(options))


@st.composite
def conditions(draw: st.DrawFn) -> tuple[dict[str, dict[str, Any]], list[Part], list[str]]:
    declared = draw(fields())
    names = draw(st.lists(st.sampled_from(sorted(declared)), min_size=1, max_size=4))
    parts = [draw(part(name, declared[name])) for name in names]
    joins = draw(st.lists(st.sampled_from(["&&", "||"]), min_size=len(parts) - 1,
                          max_size=len(parts) - 1))  # fmt: skip
    return declared, parts, joins


def joined(parts: list[str], joins: list[str]) -> str:
    source = f"({parts[0]})"
    for join, text in zip(joins, parts[1:], strict=True):
        source += f" {join} ({text})"
    return source


def document(declared: dict[str, dict[str, Any]], condition: str) -> dict[str, Any]:
    return {
        "name": "generated", "labels": {"en": "Generated"},
        "states": {"open": {"initial": True}, "done": {"final": True}},
        "fields": declared,
        "rules": [{"name": "r", "on": ["CaseOpened"], "if": condition,
                   "do": [{"set_priority": "high"}]}],
    }  # fmt: skip


@st.composite
def value(draw: st.DrawFn, spec: dict[str, Any]) -> Any:
    kind = spec["type"]
    if kind == "number":
        return draw(NUMBERS)
    if kind == "money":
        return {"amount": draw(NUMBERS), "currency": "EUR"}
    if kind == "date":
        return draw(st.dates(date(1000, 1, 1), date(9999, 12, 31))).isoformat()
    if kind == "choice":
        return draw(st.sampled_from(spec["choices"]))
    if kind == "text":
        return draw(st.text(alphabet=string.printable, max_size=12))
    return draw(st.booleans())


@settings(max_examples=150, deadline=None)
@given(conditions(), st.data())
def test_well_typed_conditions_pass_and_evaluate_without_a_type_error(
    generated: tuple[dict[str, dict[str, Any]], list[Part], list[str]], data: st.DataObject
) -> None:
    declared, parts, joins = generated
    source = joined([p.good for p in parts], joins)
    assert problems_in(document(declared, source)) == [], source
    values = {name: data.draw(value(spec)) for name, spec in declared.items()}
    facts = {
        "case": {"priority": data.draw(st.sampled_from(["low", "normal", "high", "urgent"])),
                 "version": data.draw(st.integers(1, 100))},
        "fields": values,
    }  # fmt: skip
    result = cel.compile(source).execute(plain(facts))
    assert result is True or result is False, (source, result)


@settings(max_examples=150, deadline=None)
@given(conditions(), st.data())
def test_one_ill_typed_part_is_refused_and_named_by_its_path(
    generated: tuple[dict[str, dict[str, Any]], list[Part], list[str]], data: st.DataObject
) -> None:
    declared, parts, joins = generated
    broken = data.draw(st.integers(0, len(parts) - 1))
    texts = [p.bad if i == broken else p.good for i, p in enumerate(parts)]
    source = joined(texts, joins)
    problems = problems_in(document(declared, source))
    assert problems, source
    assert all(problem.startswith("rules[0].if: ") for problem in problems), problems
