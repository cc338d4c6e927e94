"""The expression engines behind case-type documents, compiled once and evaluated many times.

- :class:`CelCondition`: a CEL boolean condition (``common-expression-language``);
- :class:`DecisionTable`: a first-match decision table run by zen-engine (JDM model);
- :class:`SandboxedTemplate`: a jinja2 text template in the immutable sandbox.

They implement the ``Condition``, ``Decision`` and ``Template`` protocols of
``domain.definition``. Each refuses bad source at construction with a ``ValueError`` whose
message an administrator can act on; at run time none of them raises (see each class).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Any, TypeVar

import cel
import zen
from jinja2 import Template, TemplateSyntaxError, meta, nodes

from domain.errors import BudgetExceeded
from services.expression_limits import (
    CEL_COMPREHENSION,
    MAX_TEMPLATE_LENGTH,
    STRING,
    ZEN_CLOSURE,
    ZEN_RANGE,
    cel_problem,
    table_size_problems,
    too_long,
    uses,
    zen_problem,
)
from services.sandbox import shared_pool
from services.template_sandbox import ENVIRONMENT, check_output, is_bounded, prepare
from services.template_sandbox import template_problems as _template_problems

log = logging.getLogger(__name__)

FACT_ROOTS = ("case", "fields", "event", "actor")
"""The names every condition, table input and template can use."""

# A member access ``root.name`` or ``root["name"]``, or a string literal to skip over.
_MEMBER = re.compile(
    rf"(?P<string>{STRING})"
    r"|(?<![\w.])(?P<root>[A-Za-z_]\w*)\s*"
    r"(?:\.\s*(?P<dot>[A-Za-z_]\w*)|\[\s*(?P<key>\"[^\"\\]*\"|'[^'\\]*')\s*\])"
)
_COMPREHENSION = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_CEL_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): (?:Syntax error: )?([^\n]*)")
_CEL_NATIVE = (datetime, timedelta)  # CEL timestamps and durations
_CEL_RUNTIME_ERRORS = (RuntimeError, LookupError, TypeError, ValueError, ArithmeticError)


_PLAIN: tuple[tuple[type | tuple[type, ...], Callable[[Any], Any]], ...] = (
    (Decimal, lambda d: int(d) if d.is_finite() and d == d.to_integral_value() else float(d)),
    ((datetime, date), lambda d: d.isoformat()),
    (timedelta, lambda d: d.total_seconds()),
    (Enum, lambda e: e.value),
)


def plain(value: Any, *, native: tuple[type, ...] = ()) -> Any:
    """``value`` made of JSON values only (dates as ISO texts, UUIDs as texts, Decimals as
    numbers), keeping the types in ``native`` as they are; the engines refuse other types."""
    if value is None or isinstance(value, (str, bool, int, float, *native)):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v, native=native) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v, native=native) for v in value]
    for kind, convert in _PLAIN:
        if isinstance(value, kind):
            return plain(convert(value), native=native)
    return str(value)


def _zen_engine(name: str, jdm: str) -> zen.ZenEngine:
    return zen.ZenEngine({"loader": {"type": "static", "content": {name: json.loads(jdm)}}})


def _zen_row(engine: zen.ZenEngine, name: str, known: dict[str, Any]) -> Any:
    """The number of the first matching row, or None (also when the facts cannot be read)."""
    try:
        return engine.evaluate(name, known)["result"].get("row")
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - zen raises bare Exception on NaN, huge ints
        log.warning("decision table %r could not be evaluated: %s", name, error)
        return None


def members_in(source: str) -> frozenset[tuple[str, str]]:
    """The ``(root, name)`` pairs of ``root.name`` / ``root["name"]`` in a CEL or zen source,
    ignoring text inside string literals: ``fields.amount > 3`` gives ``("fields", "amount")``."""
    found = set()
    for match in _MEMBER.finditer(source):
        if match["root"]:
            found.add((match["root"], match["dot"] or match["key"][1:-1]))
    return frozenset(found)


T = TypeVar("T")


def _within(where: str, run: Callable[[], T]) -> T:
    """``run()``, its budget overrun named after ``where`` (``the condition at rules[0].if``)."""
    try:
        return run()
    except BudgetExceeded as error:
        raise BudgetExceeded(f"{where} {error.message}", hint=error.hint) from None


def _short(source: str) -> str:
    return source if len(source) <= 60 else f"{source[:57]}..."


class CelCondition:
    """A CEL condition such as ``fields.claimed.amount > 10000 && case.priority != "low"``.

    ``holds`` is true only when the expression evaluates to the boolean ``true``; a missing
    key, a type error or a non-boolean result makes it false rather than raising. A condition
    with comprehensions (``all``, ``exists``, ``map``…) runs in the sandbox pool, within its
    budget; going over it raises :class:`BudgetExceeded`, which fails the command.
    """

    def __init__(self, source: str, where: str = "the condition") -> None:
        self.source, self.where = source, where
        self._program = _compiled_cel(source, "condition")
        self._reads = tuple(self._program.variables())  # only these facts are converted
        bound = set(_COMPREHENSION.findall(source))
        self.names: tuple[str, ...] = tuple(n for n in self._reads if n not in bound)
        """The top-level names the condition reads (comprehension variables left out)."""
        self.members = members_in(source)
        """The ``(root, name)`` member accesses: ``("fields", "category")``."""
        self._inline = not uses(source, CEL_COMPREHENSION)

    def holds(self, facts: Mapping[str, Any]) -> bool:
        known = {n: plain(facts[n], native=_CEL_NATIVE) for n in self._reads if n in facts}
        if self._inline:
            return _cel_holds(self._program, known)
        return _within(self.where, lambda: shared_pool().run("cel", self.source, known) is True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CelCondition) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"CelCondition({self.source!r})"


class CelValue:
    """A CEL expression that computes a value, as connector mappings use them:
    ``record.claim_no``, ``double(record.amount) * 1.2``, ``{"A": "open"}[record.state]``.

    Unlike a condition, a value that cannot be computed is an error the caller reports
    (:class:`MappingError`, naming the expression and why): a record is quarantined with it,
    never ingested with a silently missing value. Comprehensions run in the sandbox pool.
    """

    def __init__(self, source: str, where: str = "the expression") -> None:
        self.source, self.where = source, where
        self._program = _compiled_cel(source, "expression")
        self._reads = tuple(self._program.variables())
        self._inline = not uses(source, CEL_COMPREHENSION)

    def value(self, facts: Mapping[str, Any]) -> Any:
        known = {n: plain(facts[n], native=_CEL_NATIVE) for n in self._reads if n in facts}
        if self._inline:
            answer = _cel_value(self._program, known)
        else:
            answer = _within(self.where, lambda: shared_pool().run("cel_value", self.source, known))
        if "error" in answer:
            raise MappingError(f"{self.where} ({_short(self.source)!r}): {answer['error']}")
        return answer["value"]

    def __repr__(self) -> str:
        return f"CelValue({self.source!r})"


class MappingError(ValueError):
    """A mapping expression could not compute its value from a record."""


def _cel_value(program: cel.Program, known: dict[str, Any]) -> dict[str, Any]:
    """``{"value": ...}`` (JSON values, timestamps as ISO texts) or ``{"error": why}``."""
    try:
        return {"value": plain(program.execute(known))}
    except KeyError as error:
        return {
            "error": f"found nothing at {error.args[0]!r}: the record has no such field, or a "
            "map in the expression has no such key"
        }
    except _CEL_RUNTIME_ERRORS as error:
        return {"error": str(error) or type(error).__name__}


def _cel_holds(program: cel.Program, known: dict[str, Any]) -> bool:
    try:
        return program.execute(known) is True
    except _CEL_RUNTIME_ERRORS:
        return False


def _compiled_cel(source: str, what: str) -> cel.Program:
    """``source`` compiled, or a ``ValueError`` saying why it is too costly or invalid."""
    problem = cel_problem(source)
    if problem is not None:
        raise ValueError(f"{_short(source)!r} is too costly: {problem}")
    try:
        return cel.compile(source)
    except ValueError as error:
        raise ValueError(_cel_message(source, str(error), what)) from None


def _cel_message(source: str, raw: str, what: str = "condition") -> str:
    found = _CEL_ERROR.search(raw)
    if found is None:
        return f"{source!r} is not a valid {what}: {raw}"
    line, column, detail = found.groups()
    detail = re.sub(r" expecting \{.*\}$", "", detail)
    return f"{source!r} is not a valid {what}: line {line}, column {column}: {detail}"


def _zen_message(error: Exception) -> str:
    first = str(error).split("\n", 1)[0]
    try:
        return str(json.loads(first)["source"])
    except (ValueError, KeyError, TypeError):
        return first


_BARE_WORD = re.compile(r"[A-Za-z_]\w*")
_ZEN_WORDS = ("true", "false", "null")


def cell_problem(cell: str) -> str | None:
    """Why a decision-table cell (a zen unary test such as ``> 10000``) is refused, or None."""
    if cell == "":
        return None
    if _BARE_WORD.fullmatch(cell) and cell not in (*FACT_ROOTS, *_ZEN_WORDS):
        return f"{cell!r} is not a value; write text in double quotes: '\"{cell}\"'"
    try:
        zen.compile_unary_expression(cell)
    except RuntimeError as error:
        return f"{cell!r} is not a valid cell: {_zen_message(error)}"
    return None


Rows = Sequence[tuple[Sequence[str], Mapping[str, Any]]]
"""A decision table's rows: the cells (one per input), then the outputs the row gives."""


def table_problems(inputs: Sequence[str], outputs: Sequence[str], rows: Rows) -> list[str]:
    """Every problem of a decision table, each as ``"rows[0].when[1]: why"``."""
    too_big = table_size_problems(len(inputs), len(rows))
    if too_big:
        return too_big  # not worth checking each cell of a table that cannot be used
    problems = [
        f"inputs[{i}]: {_short(source)!r} is too costly: {problem}"
        for i, source in enumerate(inputs)
        if (problem := zen_problem(source)) is not None
    ]
    problems += [
        f"inputs[{i}]: {source!r} is not a valid expression: {found['source']}"
        for i, source in enumerate(inputs)
        if (found := zen.validate_expression(source)) is not None
    ]
    for r, (when, then) in enumerate(rows):
        if len(when) != len(inputs):
            problems.append(
                f"rows[{r}].when: has {len(when)} cells; the table has {len(inputs)} inputs"
            )
        problems += [
            f"rows[{r}].when[{c}]: {problem}"
            for c, cell in enumerate(when)
            if (problem := zen_problem(cell) or cell_problem(cell)) is not None
        ]
        problems += [
            f"rows[{r}].then.{key}: not an output of the table; outputs are {', '.join(outputs)}"
            for key in then
            if key not in outputs
        ]
    return problems


class DecisionTable:
    """A decision table: ``inputs`` are zen expressions over the facts, each row holds one
    unary test per input (``""`` matches anything) and the outputs it gives. The first
    matching row wins; ``decide`` gives ``{}`` when no row matches or the facts cannot be
    evaluated. A table whose inputs use closures (``map``, ``filter``…) or ranges runs in the
    sandbox pool, within its budget; going over it raises :class:`BudgetExceeded`."""

    def __init__(
        self,
        name: str,
        inputs: Sequence[str],
        outputs: Sequence[str],
        rows: Rows,
    ) -> None:
        self.name, self.inputs, self.outputs = name, tuple(inputs), tuple(outputs)
        problems = table_problems(inputs, outputs, rows)
        if problems:
            raise ValueError("; ".join(problems))
        self._outputs = tuple(dict(then) for _, then in rows)
        self._key = json.dumps([name, self.inputs, self.outputs, rows], default=str)
        sources = [*self.inputs, *(cell for when, _ in rows for cell in when)]
        joined = " ".join(sources)
        self._reads = [root for root in FACT_ROOTS if re.search(rf"\b{root}\b", joined)]
        self._jdm = json.dumps(self.jdm(rows))
        self._engine = _zen_engine(name, self._jdm)
        self._engine.get_decision(name).validate()
        self._inline = not any(uses(s, ZEN_CLOSURE) for s in sources) and not any(
            uses(s, ZEN_RANGE) for s in self.inputs
        )

    def jdm(self, rows: Rows) -> dict[str, Any]:
        """The table as a JSON Decision Model graph: input node -> table node -> output node.

        The table's one output is the matching row's number; :meth:`decide` maps it to that
        row's outputs, so outputs keep their exact values (zen strings have no escapes)."""
        at = {"x": 0, "y": 0}
        content = {
            "hitPolicy": "first",
            "inputs": [{"id": f"i{i}", "name": s, "field": s} for i, s in enumerate(self.inputs)],
            "outputs": [{"id": "row", "name": "row", "field": "row"}],
            "rules": [
                {"_id": f"r{r}", "row": str(r)} | {f"i{i}": cell for i, cell in enumerate(when)}
                for r, (when, _) in enumerate(rows)
            ],
        }
        return {
            "nodes": [
                {"id": "in", "type": "inputNode", "name": "facts", "position": at},
                {"id": "table", "type": "decisionTableNode", "name": self.name,
                 "position": at, "content": content},
                {"id": "out", "type": "outputNode", "name": "outputs", "position": at},
            ],
            "edges": [
                {"id": "e0", "sourceId": "in", "targetId": "table", "type": "edge"},
                {"id": "e1", "sourceId": "table", "targetId": "out", "type": "edge"},
            ],
        }  # fmt: skip

    def decide(self, facts: Mapping[str, Any]) -> dict[str, Any]:
        known = {root: plain(facts[root]) for root in self._reads if root in facts}
        if self._inline:
            row = _zen_row(self._engine, self.name, known)
        else:
            task = ("zen", (self.name, self._jdm), known)
            row = _within(f"decision table {self.name!r}", lambda: shared_pool().run(*task))
        return dict(self._outputs[int(row)]) if row is not None else {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DecisionTable) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"DecisionTable({self.name!r}, inputs={self.inputs!r}, outputs={self.outputs!r})"


class SandboxedTemplate:
    """A jinja2 template (``Claim {{ case.title }} received``) rendered in the immutable
    sandbox of :mod:`services.template_sandbox`, without HTML escaping.

    A missing value renders as empty text (``{{ fields.contact.name }}`` on a case without
    ``contact``). An ordinary error (a sandbox refusal, a type error) renders as the
    placeholder ``[template error: <reason>]`` and is logged, so that one bad template cannot
    stop the rule that sends it. Going over a budget (text too long, loops too slow) or
    rendering text the database cannot store raises :class:`BudgetExceeded` instead, which
    fails the command. A template with loops or variables renders in the sandbox pool.
    """

    def __init__(self, source: str, where: str = "the template") -> None:
        self.source, self.where = source, where
        problem = too_long(source, MAX_TEMPLATE_LENGTH)
        if problem is not None:
            raise ValueError(f"the template {problem}")
        try:
            tree = ENVIRONMENT.parse(source)
            problems = _template_problems(tree)
            if problems:
                raise ValueError("; ".join(problems))
            self._template = ENVIRONMENT.from_string(prepare(tree))
        except TemplateSyntaxError as error:
            raise ValueError(f"template error at line {error.lineno}: {error.message}") from None
        self.names = tuple(sorted(meta.find_undeclared_variables(tree)))
        """The top-level names the template reads: ``case``, ``fields``, …"""
        self.members = frozenset(_template_members(tree))
        """The ``(root, name)`` member accesses: ``("fields", "category")``."""
        self._inline = is_bounded(tree)

    def render(self, facts: Mapping[str, Any]) -> str:
        known = {name: facts[name] for name in self.names if name in facts}
        return _within(self.where, lambda: self._render(known))

    def _render(self, known: dict[str, Any]) -> str:
        if self._inline:
            text = _render_text(self._template, self.source, known)
        else:
            text = str(shared_pool().run("jinja", self.source, known))
        check_output(text)
        return text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SandboxedTemplate) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"SandboxedTemplate({self.source!r})"


def _render_text(template: Template, source: str, known: dict[str, Any]) -> str:
    try:
        return template.render(known)
    except (BudgetExceeded, MemoryError):
        raise
    except Exception as error:  # noqa: BLE001 - documented: an ordinary error renders a placeholder
        log.warning("template %r could not be rendered: %s", source, error)
        return f"[template error: {error}]"


@lru_cache(maxsize=256)
def _compiled(kind: str, spec: Any) -> Callable[[dict[str, Any]], Any]:
    if kind == "cel":
        program = cel.compile(spec)
        return lambda known: _cel_holds(program, known)
    if kind == "cel_value":
        program = cel.compile(spec)
        return lambda known: _cel_value(program, known)
    if kind == "zen":
        name, jdm = spec
        engine = _zen_engine(name, jdm)
        return lambda known: _zen_row(engine, name, known)
    template = ENVIRONMENT.from_string(prepare(ENVIRONMENT.parse(spec)))
    return lambda known: _render_text(template, spec, known)


def run_here(kind: str, spec: Any, known: dict[str, Any]) -> Any:
    """Evaluate, in this process, what a sandbox worker was sent: a CEL source (``cel``), a
    decision table's name and JSON model (``zen``) or a template source (``jinja``)."""
    return _compiled(kind, spec)(known)


def _template_members(tree: nodes.Template) -> set[tuple[str, str]]:
    found = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            found.add((node.node.name, node.attr))
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.node, nodes.Name)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            found.add((node.node.name, node.arg.value))
    return found
