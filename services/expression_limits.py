"""The static limits of conditions, decision tables and templates, checked when a case type is
checked: what could run away is refused before it is ever published (see docs/case-types.md,
"Limits"). The budgets at run time are in :mod:`services.sandbox`."""

from __future__ import annotations

import re
from collections.abc import Iterator

MAX_CONDITION_LENGTH = 2_000
"""The longest CEL condition, in characters (a huge list literal is refused by it)."""
MAX_TEMPLATE_LENGTH = 10_000
"""The longest template, in characters."""
MAX_TABLE_SOURCE_LENGTH = 1_000
"""The longest decision-table input or cell, in characters."""
MAX_TABLE_ROWS = 500
MAX_TABLE_INPUTS = 20
MAX_NESTING = 2
"""How deep CEL comprehensions, zen closures and template loops may nest."""
MAX_RANGE = 1_000
"""The most items a template's ``range(...)`` may give."""
MAX_TEXT = 100_000
"""The longest text (or list) a template may build, and the longest it may render."""
MAX_DIGITS = 4_300
"""The longest number a template may build, in decimal digits (Python's own limit)."""

STRING = (
    r"""[rRbB]{0,2}(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''"""
    r"""|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`[^`]*`)"""
)
"""A string literal of CEL or zen, to skip over when reading a source."""

CEL_COMPREHENSION = r"\.\s*(?:all|exists|exists_one|map|filter)\s*\("
ZEN_CLOSURE = r"(?<![\w.$])(?:map|filter|all|some|none|one|count|flatMap)\s*\("
ZEN_RANGE = r"\.\."


def _tokens(source: str, opener: str) -> Iterator[str]:
    """``"open"`` for each match of ``opener``, ``"("`` and ``")"`` for other parentheses,
    in order, leaving out string literals."""
    pattern = re.compile(rf"(?P<string>{STRING})|(?P<open>{opener})|(?P<paren>[()])")
    for match in pattern.finditer(source):
        if match["open"]:
            yield "open"
        elif match["paren"]:
            yield match["paren"]


def nesting(source: str, opener: str) -> int:
    """How deep the constructs that ``opener`` starts (up to their ``(``) nest in ``source``:
    ``a.all(x, b.all(y, true))`` nests CEL comprehensions 2 deep."""
    stack: list[bool] = []
    deepest = 0
    for kind in _tokens(source, opener):
        if kind == ")":
            if stack:
                stack.pop()
            continue
        stack.append(kind == "open")
        deepest = max(deepest, sum(stack))
    return deepest


def uses(source: str, construct: str) -> bool:
    """Whether ``source`` uses ``construct`` (a pattern) outside its string literals."""
    return re.search(construct, re.sub(STRING, '""', source)) is not None


def too_long(source: str, limit: int) -> str | None:
    if len(source) <= limit:
        return None
    return f"is {len(source):,} characters long; the limit is {limit:,} characters"


def cel_problem(source: str) -> str | None:
    """Why a CEL condition could run away, or None."""
    depth = nesting(source, CEL_COMPREHENSION)
    if depth > MAX_NESTING:
        return f"comprehensions nest {depth} deep; the limit is {MAX_NESTING}"
    return too_long(source, MAX_CONDITION_LENGTH)


def zen_problem(source: str) -> str | None:
    """Why a decision-table input or cell could run away, or None."""
    depth = nesting(source, ZEN_CLOSURE)
    if depth > MAX_NESTING:
        return f"closures nest {depth} deep; the limit is {MAX_NESTING}"
    return too_long(source, MAX_TABLE_SOURCE_LENGTH)


def table_size_problems(inputs: int, rows: int) -> list[str]:
    """Why a decision table is too big to check and run quickly, as ``"where: why"`` lines."""
    problems = []
    if inputs > MAX_TABLE_INPUTS:
        problems.append(f"inputs: has {inputs} inputs; the limit is {MAX_TABLE_INPUTS}")
    if rows > MAX_TABLE_ROWS:
        problems.append(f"rows: has {rows} rows; the limit is {MAX_TABLE_ROWS}")
    return problems
