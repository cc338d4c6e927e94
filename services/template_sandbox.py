"""The jinja2 sandbox that templates render in, with limits on what they may build.

- When a case type is checked (:func:`template_problems`): no macros or call blocks, loops
  nested at most :data:`MAX_NESTING` deep and never recursive, ``range`` of at most
  :data:`MAX_RANGE` items, an allowlist of filters and of methods, no text the database
  cannot store.
- While rendering (:data:`ENVIRONMENT`): ``~``, ``+``, ``*``, ``%``, ``join``, ``center``,
  ``format`` and ``replace`` refuse to build text longer than :data:`MAX_TEXT`, and ``*``
  and ``**`` numbers longer than :data:`MAX_DIGITS`, with :class:`BudgetExceeded`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sized
from typing import Any

from jinja2 import nodes
from jinja2.filters import FILTERS
from jinja2.runtime import ChainableUndefined, Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from domain.errors import BudgetExceeded, InvalidCommand
from domain.values import check_storable_text
from services.expression_limits import MAX_DIGITS, MAX_NESTING, MAX_RANGE, MAX_TEXT

_SIZE_PRESERVING = (
    "abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "filesizeformat",
    "first", "float", "int", "items", "last", "length", "list", "lower", "map", "max", "min",
    "reject", "rejectattr", "reverse", "round", "select", "selectattr", "sort", "string",
    "striptags", "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "urlencode",
    "wordcount",
)  # fmt: skip
_CAPPED = ("center", "format", "join", "replace")
FILTER_NAMES = tuple(sorted((*_SIZE_PRESERVING, *_CAPPED)))
"""The filters templates may use; others (``indent``, ``wordwrap``, ``batch``, ``attr``…) are
refused when the case type is checked."""
METHODS = (
    "capitalize", "count", "endswith", "find", "get", "isalpha", "isdigit", "isspace", "items",
    "keys", "lower", "lstrip", "rstrip", "split", "splitlines", "startswith", "strip", "title",
    "upper", "values",
)  # fmt: skip
"""The methods templates may call; none of them builds text longer than its input."""
FUNCTIONS = ("range", "namespace", "dict")
_MAX_BITS = int(MAX_DIGITS * 3.33)
_SHORTEN = "shorten the template, or build less text from the case's facts"


def _too_long(size: int) -> BudgetExceeded:
    return BudgetExceeded(
        f"builds text over {MAX_TEXT:,} characters ({size:,})",
        hint=f"{_SHORTEN}: templates may build and render at most {MAX_TEXT:,} characters",
    )


def _check_size(size: int) -> None:
    if size > MAX_TEXT:
        raise _too_long(size)


def _check_bits(bits: int) -> None:
    if bits > _MAX_BITS:
        raise BudgetExceeded(
            f"builds numbers over {MAX_DIGITS:,} digits",
            hint="use smaller numbers: templates may not build numbers that large",
        )


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(str(value))


_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")


def _format_size(text: str, args: Any) -> int:
    """An upper bound of the length of ``text % args``, found without building it."""
    values = list(args.values()) if isinstance(args, dict) else list(args)
    stars = iter(v for v in values if isinstance(v, int))
    size = len(text) + sum(_length(v) for v in values)
    for width, precision, kind in _SPEC.findall(text):
        for given in (width, precision):
            size += next(stars, 0) if given == "*" else int(given or 0)
        size += 400 if kind in "eEfFgG" else 0  # the digits of a float such as 1e300
    return size


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    text, given = str(value), kwargs or args
    _check_size(_format_size(text, given))
    return text % given


def _join(value: Iterable[Any], d: str = "", attribute: str | int | None = None) -> str:
    items = [v[attribute] if attribute is not None else v for v in value]
    _check_size(sum(_length(v) for v in items) + len(d) * max(len(items) - 1, 0))
    return d.join(str(v) for v in items)


def _center(value: Any, width: int = 80) -> str:
    _check_size(width)
    return str(value).center(width)


def _replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    text = str(value)
    found = text.count(old) if count is None else min(count, text.count(old))
    _check_size(len(text) + found * max(len(new) - len(old), 0))
    return text.replace(old, new, -1 if count is None else count)


def _range(*args: int) -> range:
    items = range(*args)
    if len(items) > MAX_RANGE:
        raise BudgetExceeded(
            f"asks for range of {len(items):,} items; the limit is {MAX_RANGE:,}",
            hint="loop over fewer items",
        )
    return items


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with ``+``, ``*``, ``**`` and ``%`` kept from building huge
    values."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        numbers = isinstance(left, int) and isinstance(right, int)
        if operator == "**" and isinstance(right, int | float) and abs(right) > 100:
            raise BudgetExceeded("uses an exponent above 100", hint="use smaller exponents")
        if operator == "**" and numbers:
            _check_bits(left.bit_length() * max(right, 0))
        elif operator == "*" and numbers:
            _check_bits(left.bit_length() + right.bit_length())
        elif operator == "*" and isinstance(left, Sized) and isinstance(right, int):
            _check_size(len(left) * right)
        elif operator == "*" and isinstance(right, Sized) and isinstance(left, int):
            _check_size(len(right) * left)
        elif operator == "+" and isinstance(left, Sized) and isinstance(right, Sized):
            _check_size(len(left) + len(right))
        elif operator == "%" and isinstance(left, str):
            return _format(left, *(right if isinstance(right, tuple) else (right,)))
        return super().call_binop(context, operator, left, right)


class _ConcatAsJoin(NodeTransformer):
    """``a ~ b`` becomes ``[a, b]|join``, so that ``~`` has the same size cap as ``join``."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        parts = [self.visit(part) for part in node.nodes]
        return nodes.Filter(nodes.List(parts), "join", [], [], None, None, lineno=node.lineno)


ENVIRONMENT = _Sandbox(autoescape=False, undefined=ChainableUndefined, keep_trailing_newline=True)
ENVIRONMENT.filters = {name: FILTERS[name] for name in _SIZE_PRESERVING} | {
    "center": _center,
    "format": _format,
    "join": _join,
    "replace": _replace,
}
ENVIRONMENT.globals = {"range": _range, "namespace": ENVIRONMENT.globals["namespace"], "dict": dict}


def prepare(tree: nodes.Template) -> nodes.Template:
    """The parsed template with its size caps in place, ready to compile."""
    prepared = _ConcatAsJoin().visit(tree)
    assert isinstance(prepared, nodes.Template)
    return prepared


def template_problems(tree: nodes.Template) -> list[str]:
    """Why a parsed template could run away or render unstorable text; empty when it cannot."""
    problems = []
    if tree.find(nodes.Macro) is not None or tree.find(nodes.CallBlock) is not None:
        problems.append("templates may not define macros or call blocks")
    if any(loop.recursive for loop in tree.find_all(nodes.For)):
        problems.append("templates may not use recursive loops")
    depth = _loop_depth(tree)
    if depth > MAX_NESTING:
        problems.append(f"loops nest {depth} deep; the limit is {MAX_NESTING}")
    problems += [
        f"filter {f.name!r} is not allowed; use one of {', '.join(FILTER_NAMES)}"
        for f in tree.find_all(nodes.Filter)
        if f.name not in FILTER_NAMES
    ]
    problems += [p for call in tree.find_all(nodes.Call) if (p := _call_problem(call))]
    problems += [p for c in tree.find_all((nodes.Const, nodes.TemplateData)) if (p := _text(c))]
    return problems


MAX_INLINE_NAMES = 20
"""A template that reads more names than this renders in the sandbox pool."""


def is_bounded(tree: nodes.Template) -> bool:
    """True when the template cannot repeat work (no loops, no variables of its own) and reads
    few names, so its cost follows its length and its facts: it renders in-process."""
    repeats = (nodes.For, nodes.Assign, nodes.AssignBlock, nodes.FilterBlock)
    names = sum(1 for _ in tree.find_all(nodes.Name))
    return next(tree.find_all(repeats), None) is None and names <= MAX_INLINE_NAMES


def _loop_depth(node: nodes.Node, depth: int = 0) -> int:
    here = depth + isinstance(node, nodes.For)
    return max([here, *(_loop_depth(child, here) for child in node.iter_child_nodes())])


def _call_problem(call: nodes.Call) -> str | None:
    target = call.node
    if isinstance(target, nodes.Name) and target.name in FUNCTIONS:
        return _range_problem(call) if target.name == "range" else None
    if isinstance(target, nodes.Getattr) and target.attr in METHODS:
        return None
    name = target.name if isinstance(target, nodes.Name) else getattr(target, "attr", "this")
    return (
        f"templates may not call {name!r}; they may call {', '.join(FUNCTIONS)} and the "
        f"methods {', '.join(METHODS)}"
    )


def _range_problem(call: nodes.Call) -> str | None:
    if not all(isinstance(arg, nodes.Const) and isinstance(arg.value, int) for arg in call.args):
        return None
    bounds = [arg.value for arg in call.args if isinstance(arg, nodes.Const)]
    size = len(range(*bounds)) if bounds else 0
    shown = ", ".join(str(b) for b in bounds)
    if size > MAX_RANGE:
        return f"range({shown}) is over {MAX_RANGE:,} items; loop over fewer items"
    return None


def _text(node: nodes.Node) -> str | None:
    value = getattr(node, "data", getattr(node, "value", None))
    if not isinstance(value, str):
        return None
    try:
        check_storable_text(value, "a text in the template ")
    except InvalidCommand as error:
        return error.message
    return None


def check_output(text: str) -> None:
    """Refuse rendered text that is too long or that the database cannot store."""
    _check_size(len(text))
    try:
        check_storable_text(text, "renders text that ")
    except InvalidCommand as error:
        raise BudgetExceeded(error.message, hint=f"{error.hint} from the template") from None
