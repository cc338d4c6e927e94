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
from typing import Any

import cel
import zen
from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import ChainableUndefined, Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

log = logging.getLogger(__name__)

FACT_ROOTS = ("case", "fields", "event", "actor")
"""The names every condition, table input and template can use."""

# A member access ``root.name`` or ``root["name"]``, or a string literal to skip over.
_STRING = (
    r"""[rRbB]{0,2}(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''"""
    r"""|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`[^`]*`)"""
)
_MEMBER = re.compile(
    rf"(?P<string>{_STRING})"
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


def members_in(source: str) -> frozenset[tuple[str, str]]:
    """The ``(root, name)`` pairs of ``root.name`` / ``root["name"]`` in a CEL or zen source,
    ignoring text inside string literals: ``fields.amount > 3`` gives ``("fields", "amount")``."""
    found = set()
    for match in _MEMBER.finditer(source):
        if match["root"]:
            found.add((match["root"], match["dot"] or match["key"][1:-1]))
    return frozenset(found)


class CelCondition:
    """A CEL condition such as ``fields.claimed.amount > 10000 && case.priority != "low"``.

    ``holds`` is true only when the expression evaluates to the boolean ``true``; a missing
    key, a type error or a non-boolean result makes it false rather than raising.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self._program = cel.compile(source)
        except ValueError as error:
            raise ValueError(_cel_message(source, str(error))) from None
        self._reads = tuple(self._program.variables())  # only these facts are converted
        bound = set(_COMPREHENSION.findall(source))
        self.names: tuple[str, ...] = tuple(n for n in self._reads if n not in bound)
        """The top-level names the condition reads (comprehension variables left out)."""
        self.members = members_in(source)
        """The ``(root, name)`` member accesses: ``("fields", "category")``."""

    def holds(self, facts: Mapping[str, Any]) -> bool:
        known = {n: plain(facts[n], native=_CEL_NATIVE) for n in self._reads if n in facts}
        try:
            return self._program.execute(known) is True
        except _CEL_RUNTIME_ERRORS:
            return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CelCondition) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"CelCondition({self.source!r})"


def _cel_message(source: str, raw: str) -> str:
    found = _CEL_ERROR.search(raw)
    if found is None:
        return f"{source!r} is not a valid condition: {raw}"
    line, column, detail = found.groups()
    detail = re.sub(r" expecting \{.*\}$", "", detail)
    return f"{source!r} is not a valid condition: line {line}, column {column}: {detail}"


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
    problems = [
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
            if (problem := cell_problem(cell)) is not None
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
    evaluated."""

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
        sources = " ".join([*self.inputs, *(cell for when, _ in rows for cell in when)])
        self._reads = [root for root in FACT_ROOTS if re.search(rf"\b{root}\b", sources)]
        self._engine = zen.ZenEngine(
            {"loader": {"type": "static", "content": {name: self.jdm(rows)}}}
        )
        self._engine.get_decision(name).validate()

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
        try:
            result = self._engine.evaluate(self.name, known)["result"]
        except Exception as error:  # noqa: BLE001 - zen raises bare Exception on NaN, huge ints
            log.warning("decision table %r could not be evaluated: %s", self.name, error)
            return {}
        row = result.get("row")
        return dict(self._outputs[int(row)]) if row is not None else {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DecisionTable) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"DecisionTable({self.name!r}, inputs={self.inputs!r}, outputs={self.outputs!r})"


MAX_REPEAT = 10_000
"""The longest text or list a template may build with ``*``; bigger products are refused."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """The jinja2 immutable sandbox, with ``*`` and ``**`` kept from building huge values."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 100:
            raise SecurityError("exponents above 100 are not allowed in templates")
        if operator == "*":
            sizes = [len(x) for x in (left, right) if isinstance(x, str | list | tuple)]
            counts = [x for x in (left, right) if isinstance(x, int)]
            if sizes and counts and sizes[0] * counts[0] > MAX_REPEAT:
                raise SecurityError(f"templates may not build values over {MAX_REPEAT} long")
        return super().call_binop(context, operator, left, right)


_ENVIRONMENT = _Sandbox(autoescape=False, undefined=ChainableUndefined, keep_trailing_newline=True)


class SandboxedTemplate:
    """A jinja2 template (``Claim {{ case.title }} received``) rendered in the immutable
    sandbox, without HTML escaping.

    A missing value renders as empty text (``{{ fields.contact.name }}`` on a case without
    ``contact``). ``render`` never raises: any other error (a sandbox refusal, a type error)
    renders as the placeholder ``[template error: <reason>]`` and is logged, so that one bad
    template cannot stop the rule that sends it.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            tree = _ENVIRONMENT.parse(source)
            self._template = _ENVIRONMENT.from_string(tree)
        except TemplateSyntaxError as error:
            raise ValueError(f"template error at line {error.lineno}: {error.message}") from None
        self.names = tuple(sorted(meta.find_undeclared_variables(tree)))
        """The top-level names the template reads: ``case``, ``fields``, …"""
        self.members = frozenset(_template_members(tree))
        """The ``(root, name)`` member accesses: ``("fields", "category")``."""

    def render(self, facts: Mapping[str, Any]) -> str:
        try:
            return self._template.render(facts)
        except Exception as error:  # noqa: BLE001 - documented: a template never raises
            log.warning("template %r could not be rendered: %s", self.source, error)
            return f"[template error: {error}]"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SandboxedTemplate) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"SandboxedTemplate({self.source!r})"


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
