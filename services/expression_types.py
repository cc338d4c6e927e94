"""The type checker of CEL conditions and value expressions against what they read: a case
type's fields (each kind has its type, below), the case facts rules see, a connector's record.
Pure: no I/O. Used when a case-type draft or a connector is checked, before anything runs.

    facts = case_facts(definition_fields, states=["submitted", "review"])
    check_condition("fields.estimate > 5000", facts)
    # [TypeProblem("fields.estimate is money ({amount, currency}) and 5000 is a whole number:
    #   they cannot be compared", hint="compare its amount: fields.estimate.amount > 5000")]

What each field kind is in an expression (docs/case-types.md, "Expression types"):

==========  ==============================================================================
text        text; ``party`` and ``document`` too
number      a number, whole or decimal (JSON does not say which): comparisons mix freely,
            arithmetic needs ``double(...)`` (CEL does not add a whole number to a decimal)
money       a map ``{amount: number, currency: text}``: compare ``fields.x.amount``
date        text written ``YYYY-MM-DD``: compare with another date, or a text of that form
boolean     true or false
choice      text, one of the choices: compared only with them, and never ordered
==========  ==============================================================================

The checker is strict where it knows types: a money compared with a number, a date with a
timestamp, a choice with a value it does not have, an unknown field or function, a condition
that is not true or false are refused, each with how to write it. What is not known (the
record of a connector, ``event.data``, undeclared fields with ``extra_fields: true``, and what
``dyn(...)`` wraps) is ``dyn``: operations on it are accepted and checked when they run. An
expression the parser of :mod:`services.cel_parser` cannot read is refused, never waved
through.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from domain.definition import PRIORITIES, FieldSpec
from services.cel_parser import (
    Binary,
    Call,
    CelSyntaxError,
    Conditional,
    Ident,
    Index,
    ListLit,
    Literal,
    MapLit,
    Node,
    Select,
    Unary,
    parse,
)


@dataclass(frozen=True)
class Type:
    """The type of a value in an expression. ``kind`` is one of bool, int, uint, double,
    number (a JSON number: whole or decimal), string, bytes, null, timestamp, duration, type,
    list, map, record (a map whose keys are known), dyn (unknown) and error (already refused).
    ``tag`` narrows a kind for messages and checks: a string tagged ``date`` or ``choice``, a
    record tagged ``money``. ``values`` lists the texts a string can hold, when known."""

    kind: str
    tag: str = ""
    values: frozenset[str] | None = None
    item: Type | None = None  # of a list, or the values of a map
    key: Type | None = None  # of a map
    members: tuple[tuple[str, Type], ...] = ()  # of a record
    open: bool = False  # a record that may hold more members than it lists (dyn)
    what: str = ""  # how to call members in messages: "field" for fields

    def member(self, name: str) -> Type | None:
        return dict(self.members).get(name)


BOOL, INT, UINT, DOUBLE = Type("bool"), Type("int"), Type("uint"), Type("double")
NUMBER, STRING, BYTES, NULL = Type("number"), Type("string"), Type("bytes"), Type("null")
TIMESTAMP, DURATION, TYPE = Type("timestamp"), Type("duration"), Type("type")
DYN, ERROR = Type("dyn"), Type("error")
DATE = Type("string", tag="date")
_NUMERIC = ("int", "uint", "double", "number")
_LOOSE = ("dyn", "error")


def money(currencies: Sequence[str] = ()) -> Type:
    currency = Type("string", values=frozenset(currencies) or None)
    return Type("record", tag="money", members=(("amount", NUMBER), ("currency", currency)))


def field_type(spec: FieldSpec) -> Type:
    """The type a field of the case type has in expressions."""
    kinds = {
        "text": STRING, "party": STRING, "document": STRING, "number": NUMBER,
        "date": DATE, "boolean": BOOL,
    }  # fmt: skip
    if spec.kind == "money":
        return money(spec.currencies)
    if spec.kind == "choice":
        return Type("string", tag="choice", values=frozenset(spec.choices))
    return kinds[spec.kind]


def _record(members: Iterable[tuple[str, Type]], **extra: object) -> Type:
    return Type("record", members=tuple(members), **extra)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Facts:
    """The names an expression can read, with their types."""

    roots: Mapping[str, Type]
    functions: Mapping[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    """Plugin functions by qualified name (``geo_risk.score``): their parameters' types and
    their result's, as :mod:`services.plugins` names them (``string``, ``double?``, ``dyn``)."""
    namespaces: frozenset[str] = frozenset()
    """Plugin names whose other calls are checked by :mod:`services.plugins`, not here."""
    required: Mapping[str, int] = field(default_factory=dict)
    """How many arguments each plugin function requires (those without a default), when
    fewer than its parameters; a function not listed requires them all."""
    signatures: Mapping[str, str] = field(default_factory=dict)
    """Plugin functions' signatures as messages show them:
    ``geo_risk.score(postcode: string) -> double``."""

    def names(self) -> str:
        return ", ".join(self.roots)


def case_facts(
    fields: Mapping[str, FieldSpec],
    *,
    states: Collection[str] = (),
    roles: Collection[str] = (),
    extra_fields: bool = False,
) -> Facts:
    """What conditions read (``domain.rules.facts``): ``case``, ``fields``, ``event``, ``actor``."""
    status = Type("string", tag="status", values=frozenset([*states, "closed"]) if states else None)
    text = STRING
    case = _record(
        [
            ("id", text), ("case_type", text), ("case_type_version", INT), ("title", text),
            ("status", status), ("priority", Type("string", tag="priority",
                                                  values=frozenset(PRIORITIES))),
            ("assignee", text), ("queue", text), ("version", INT), ("party_id", text),
            ("escalations", INT),
        ]
    )  # fmt: skip
    fields_type = _record(
        ((name, field_type(spec)) for name, spec in fields.items()),
        open=extra_fields,
        what="field",
    )
    event = _record([("type", STRING), ("data", Type("map", key=STRING, item=DYN))])
    role = Type("string", tag="role", values=frozenset([*roles, "system"]) if roles else None)
    actor = _record([("id", STRING), ("role", role)])
    return Facts({"case": case, "fields": fields_type, "event": event, "actor": actor})


RECORD_FACTS = Facts({"record": Type("map", key=STRING, item=DYN)})
"""What a connector's mapping reads: the source ``record``, of unknown shape."""


@dataclass(frozen=True)
class TypeProblem:
    """One problem of an expression: what is wrong, and how to write it."""

    message: str
    hint: str = ""

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


FUNCTIONS = ("size", "int", "uint", "double", "string", "bytes", "timestamp", "duration", "dyn",
             "type", "has", "matches")  # fmt: skip
"""The functions CEL conditions may call as ``f(x)``."""
METHODS = (
    "contains", "startsWith", "endsWith", "matches", "size", "all", "exists", "exists_one",
    "map", "filter", "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek",
    "getDayOfYear", "getHours", "getMinutes", "getSeconds", "getMilliseconds",
)  # fmt: skip
"""The methods they may call as ``x.f(...)``."""
_MACROS = ("all", "exists", "exists_one", "map", "filter")
_CONVERSIONS: dict[str, tuple[Type, tuple[str, ...]]] = {
    "int": (INT, ("int", "uint", "double", "number", "string")),
    "uint": (UINT, ("int", "uint", "double", "number", "string")),
    "double": (DOUBLE, ("int", "uint", "double", "number", "string")),
    "string": (STRING, ("int", "uint", "double", "number", "string", "bytes", "timestamp",
                        "duration")),
    "bytes": (BYTES, ("string", "bytes")),
    "timestamp": (TIMESTAMP, ("string", "timestamp")),
    "duration": (DURATION, ("string", "duration")),
}  # fmt: skip
_STRING_METHODS = ("contains", "startsWith", "endsWith", "matches")
_TIME_METHODS = {
    "timestamp": ("getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek",
                  "getDayOfYear", "getHours", "getMinutes", "getSeconds", "getMilliseconds"),
    "duration": ("getHours", "getMinutes", "getSeconds", "getMilliseconds"),
}  # fmt: skip


def describe(kind: Type) -> str:
    """A type as administrators read it: ``money ({amount, currency})``, ``a date``."""
    if kind.tag == "money":
        return "money ({amount, currency})"
    if kind.tag == "date":
        return "a date (text YYYY-MM-DD)"
    if kind.tag == "zen_date":
        return 'a date read by date("YYYY-MM-DD")'
    if kind.tag in ("choice", "priority", "status", "role"):
        return f"a {kind.tag} (text)"
    if kind.kind == "string" and kind.values is not None and len(kind.values) == 1:
        return "text"
    names = {
        "bool": "true or false", "int": "a whole number", "uint": "an unsigned whole number",
        "double": "a decimal number", "number": "a number", "string": "text", "bytes": "bytes",
        "null": "null", "timestamp": "a timestamp", "duration": "a duration", "type": "a type",
        "list": "a list", "map": "a map", "record": "a map", "dyn": "any value",
        "error": "any value",
    }  # fmt: skip
    return names[kind.kind]


def closest(name: str, names: Iterable[str]) -> str | None:
    """The name among ``names`` that ``name`` most likely misspells, or None."""
    found = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return found[0] if found else None


def _did_you_mean(name: str, names: Iterable[str]) -> str:
    near = closest(name, names)
    return f"did you mean {near!r}?" if near else ""


def _listed(names: Iterable[str]) -> str:
    shown = list(names)
    return ", ".join(shown) if shown else "none"


def _is_date_text(text: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


@dataclass
class _Checker:
    source: str
    facts: Facts
    problems: list[TypeProblem] = field(default_factory=list)
    scope: dict[str, Type] = field(default_factory=dict)  # comprehension variables

    def text(self, node: Node) -> str:
        return self.source[node.start : node.end]

    def refuse(self, message: str, hint: str = "") -> Type:
        self.problems.append(TypeProblem(message, hint))
        return ERROR

    def rewrite(self, whole: Node, changes: Mapping[Node, str]) -> str:
        """The source of ``whole`` with each node of ``changes`` replaced by its new text."""
        text, at = "", whole.start
        for node in sorted(changes, key=lambda n: n.start):
            text += self.source[at : node.start] + changes[node]
            at = node.end
        return text + self.source[at : whole.end]

    # -- nodes ---------------------------------------------------------------------------

    def infer(self, node: Node) -> Type:
        handlers: dict[type[Node], Callable[[Node], Type]] = {
            Literal: self._literal,  # type: ignore[dict-item]
            Ident: self._ident,  # type: ignore[dict-item]
            Select: self._select,  # type: ignore[dict-item]
            Index: self._index,  # type: ignore[dict-item]
            Call: self._call,  # type: ignore[dict-item]
            Unary: self._unary,  # type: ignore[dict-item]
            Binary: self._binary,  # type: ignore[dict-item]
            Conditional: self._conditional,  # type: ignore[dict-item]
            ListLit: self._list,  # type: ignore[dict-item]
            MapLit: self._map,  # type: ignore[dict-item]
        }
        return handlers[type(node)](node)

    def _literal(self, node: Literal) -> Type:
        if node.kind == "string":
            return Type("string", values=frozenset([node.value]))
        return {"int": INT, "uint": UINT, "double": DOUBLE, "bytes": BYTES, "bool": BOOL,
                "null": NULL}[node.kind]  # fmt: skip

    def _ident(self, node: Ident) -> Type:
        if node.name in self.scope:
            return self.scope[node.name]
        if node.name in self.facts.roots:
            return self.facts.roots[node.name]
        if node.name in ("int", "uint", "double", "string", "bytes", "bool", "list", "map",
                         "null_type", "type", "timestamp", "duration"):  # fmt: skip
            return TYPE
        near = _did_you_mean(node.name, self.facts.roots)
        return self.refuse(f"unknown name {node.name!r}; use {self.facts.names()}", near)

    def _select(self, node: Select) -> Type:
        owner = self.infer(node.operand)
        return self._member(node, owner, node.field)

    def _member(self, node: Select, owner: Type, name: str) -> Type:  # noqa: PLR0911 - one answer per type rule
        if owner.kind in _LOOSE:
            return owner
        if owner.kind == "map":
            return owner.item or DYN
        if owner.kind == "record":
            found = owner.member(name)
            if found is not None:
                return found
            if owner.open:
                return DYN
            names = [n for n, _ in owner.members]
            near = _did_you_mean(name, names)
            if owner.what == "field":
                return self.refuse(f"unknown field {name!r}; fields are {_listed(names)}", near)
            shown = self.text(node.operand)
            if owner.tag == "money":
                return self.refuse(f"{shown} is money: it has only amount and currency", near)
            return self.refuse(f"{shown} has no {name!r}; it has {_listed(names)}", near)
        return self.refuse(
            f"{self.text(node.operand)} is {describe(owner)}: it has no members such as {name!r}"
        )

    def _index(self, node: Index) -> Type:
        owner, index = self.infer(node.operand), self.infer(node.index)
        if owner.kind in _LOOSE:
            return owner
        if owner.kind == "list":
            if index.kind not in ("int", "uint", *_LOOSE):
                return self.refuse(
                    f"{self.text(node.index)} is {describe(index)}; a list is indexed by a "
                    "whole number"
                )
            return owner.item or DYN
        if owner.kind in ("map", "record"):
            key = node.index
            if owner.kind == "record" and isinstance(key, Literal) and isinstance(key.value, str):
                fake = Select(node.start, node.end, node.operand, key.value)
                return self._member(fake, owner, key.value)
            self._comparable(node, owner.key or STRING, index, node.operand, node.index)
            return owner.item or DYN
        return self.refuse(
            f"{self.text(node.operand)} is {describe(owner)}; only lists and maps have items"
        )

    def _unary(self, node: Unary) -> Type:
        operand = self.infer(node.operand)
        if operand.kind in _LOOSE:
            return operand
        if node.op == "!":
            if operand.kind != "bool":
                return self.refuse(
                    f"! needs true or false, and {self.text(node.operand)} is {describe(operand)}"
                )
            return BOOL
        if operand.kind not in ("int", "double", "number"):
            return self.refuse(
                f"- needs a number, and {self.text(node.operand)} is {describe(operand)}"
            )
        return replace(operand, values=None)

    def _conditional(self, node: Conditional) -> Type:
        self.boolean(node.condition, "the test of ? :")
        then, otherwise = self.infer(node.then), self.infer(node.otherwise)
        return self.join(node, then, otherwise, node.then, node.otherwise)

    def join(self, node: Node, one: Type, other: Type, left: Node, right: Node) -> Type:  # noqa: PLR0911 - one answer per type rule
        """The type of a value that is either ``one`` or ``other`` (branches, list items)."""
        if one.kind in _LOOSE or other.kind == "null":
            return one if one.kind != "error" else other
        if other.kind in _LOOSE or one.kind == "null":
            return other if other.kind != "error" else one
        if one.kind == other.kind == "string":
            values = (
                one.values | other.values
                if one.values is not None and other.values is not None
                else None
            )
            return Type("string", tag=one.tag if one.tag == other.tag else "", values=values)
        if one.kind == other.kind and one.tag == other.tag:
            return one
        if one.kind in _NUMERIC and other.kind in _NUMERIC:
            return NUMBER
        if one.kind in ("map", "record") and other.kind in ("map", "record"):
            return Type("map", key=STRING, item=DYN)
        if one.kind == other.kind == "list":
            return Type("list", item=DYN)
        return DYN  # mixed values are legal; what uses them is checked when it runs

    def _list(self, node: ListLit) -> Type:
        item: Type | None = None
        for element in node.items:
            found = self.infer(element)
            item = found if item is None else self.join(node, item, found, node, element)
        return Type("list", item=item or DYN)

    def _map(self, node: MapLit) -> Type:
        key: Type | None = None
        value: Type | None = None
        for k, v in node.entries:
            found_key, found_value = self.infer(k), self.infer(v)
            if found_key.kind not in ("string", "int", "uint", "bool", *_LOOSE):
                self.refuse(f"{self.text(k)} is {describe(found_key)}; map keys are text, "
                            "whole numbers or true/false")  # fmt: skip
            key = found_key if key is None else self.join(node, key, found_key, k, k)
            value = found_value if value is None else self.join(node, value, found_value, v, v)
        return Type("map", key=key or DYN, item=value or DYN)

    # -- operators -----------------------------------------------------------------------

    def _binary(self, node: Binary) -> Type:
        if node.op in ("&&", "||"):
            self.boolean(node.left, f"each side of {node.op}")
            self.boolean(node.right, f"each side of {node.op}")
            return BOOL
        left, right = self.infer(node.left), self.infer(node.right)
        if node.op in ("==", "!="):
            self._comparable(node, left, right, node.left, node.right)
            return BOOL
        if node.op in ("<", "<=", ">", ">="):
            self._ordered(node, left, right)
            return BOOL
        if node.op == "in":
            return self._in(node, left, right)
        return self._arithmetic(node, left, right)

    def boolean(self, node: Node, what: str) -> None:
        found = self.infer(node)
        if found.kind not in ("bool", *_LOOSE):
            self.refuse(
                f"{what} must be true or false, and {self.text(node)} is {describe(found)}",
                self._test_hint(node, found),
            )

    def _test_hint(self, node: Node, found: Type) -> str:
        shown = self.text(node)
        if found.tag == "money":
            return f"compare its amount, e.g. {shown}.amount > 0"
        if found.kind in _NUMERIC:
            return f"compare it, e.g. {shown} > 0"
        if found.kind == "string" and found.values and len(found.values) <= 8:
            return f"compare it, e.g. {shown} == {_quoted(sorted(found.values)[0])}"
        if found.kind == "string":
            return f'compare it, e.g. {shown} != ""'
        return "compare it with a value"

    def _money_hint(self, whole: Node, sides: Iterable[tuple[Node, Type]]) -> str:
        changes = {n: f"{self.text(n)}.amount" for n, t in sides if t.tag == "money"}
        return f"compare its amount: {self.rewrite(whole, changes)}"

    def _date_problem(self, whole: Node, sides: Sequence[tuple[Node, Type]]) -> bool:
        """Refuse a date compared with something that is not a date; True when refused."""
        (one, one_type), (other, other_type) = sides
        if other_type.tag == "date":
            (one, one_type), (other, other_type) = (other, other_type), (one, one_type)
        if one_type.tag != "date" or other_type.kind in (*_LOOSE, "null"):
            return False
        date_text = self.text(one)
        if other_type.tag == "date":
            return False
        example = f'{date_text} >= "2026-01-31"'
        if other_type.kind == "string" and other_type.values is not None:
            bad = sorted(v for v in other_type.values if not _is_date_text(v))
            if not bad:
                return False
            self.refuse(
                f"{date_text} is {describe(one_type)}, and {_quoted(bad[0])} is not a date "
                "written YYYY-MM-DD: the texts would be compared letter by letter",
                f"write the date as YYYY-MM-DD, e.g. {example}",
            )
            return True
        if other_type.kind == "timestamp":
            literal = _timestamp_literal(other)
            day = literal[:10] if literal and _is_date_text(literal[:10]) else "2026-01-31"
            self.refuse(
                f"{date_text} is {describe(one_type)}, and {self.text(other)} is a timestamp: "
                "they cannot be compared",
                f"compare with a date in quotes: {self.rewrite(whole, {other: _quoted(day)})}",
            )
            return True
        self.refuse(
            f"{date_text} is {describe(one_type)}, and {self.text(other)} is "
            f"{describe(other_type)}: a date is compared only with another date",
            f"compare with another date field or a date in quotes, e.g. {example}",
        )
        return True

    def _comparable(  # noqa: PLR0911 - one answer per type rule
        self, whole: Node, left: Type, right: Type, left_node: Node, right_node: Node
    ) -> None:
        """Refuse ``==`` (and ``in``, map keys) between values that can never be equal."""
        if left.kind in (*_LOOSE, "null") or right.kind in (*_LOOSE, "null"):
            return
        sides = ((left_node, left), (right_node, right))
        if left.tag == "money" or right.tag == "money":
            if left.tag == right.tag:
                return
            self.refuse(
                f"{self._both(sides)}: they are never equal",
                self._money_hint(whole, sides),
            )
            return
        if left.kind in _NUMERIC and right.kind in _NUMERIC:
            return
        if left.kind == right.kind == "string":
            if self._date_problem(whole, sides):
                return
            self._values_meet(whole, left, right, left_node, right_node)
            return
        if left.kind == right.kind or (
            left.kind in ("map", "record") and right.kind in ("map", "record")
        ):
            return
        self.refuse(f"{self._both(sides)}: they are never equal", self._same_kind_hint(sides))

    def _values_meet(
        self, whole: Node, left: Type, right: Type, left_node: Node, right_node: Node
    ) -> None:
        if left.values is None or right.values is None or left.values & right.values:
            return
        tagged, (_, kind) = (
            ((left_node, left), (right_node, right))
            if left.tag
            else ((right_node, right), (left_node, left))
        )
        allowed = sorted(tagged[1].values or ())
        given = sorted(kind.values or ())
        what = tagged[1].tag or "text"
        plural = {"status": "states", "priority": "priorities", "choice": "choices"}.get(
            what, f"{what}s"
        )
        near = closest(given[0], allowed) if given else None
        self.refuse(
            f"{self.text(tagged[0])} is never {_quoted(given[0]) if given else 'that'}; "
            f"its {plural} are {_listed(allowed)}",
            f"did you mean {_quoted(near)}?" if near else "",
        )

    def _both(self, sides: Sequence[tuple[Node, Type]]) -> str:
        (one, one_type), (other, other_type) = sides
        return (
            f"{self.text(one)} is {describe(one_type)} and {self.text(other)} is "
            f"{describe(other_type)}"
        )

    def _same_kind_hint(self, sides: Sequence[tuple[Node, Type]]) -> str:
        (one, one_type), (other, other_type) = sides
        for node, kind, partner in ((one, one_type, other_type), (other, other_type, one_type)):
            if partner.kind == "string" and kind.kind in _NUMERIC:
                return f"convert the number to text: string({self.text(node)})"
        return "compare values of the same kind"

    def _ordered(self, whole: Node, left: Type, right: Type) -> None:
        node = whole
        assert isinstance(node, Binary)
        sides = ((node.left, left), (node.right, right))
        if left.kind in _LOOSE or right.kind in _LOOSE:
            return
        if left.tag == "money" or right.tag == "money":
            other = right if left.tag == "money" else left
            self.refuse(
                f"{self._both(sides)}: they cannot be compared"
                if other.tag != "money"
                else f"{self._both(sides)}: money values have no order, their amounts do",
                self._money_hint(whole, sides),
            )
            return
        for side, kind in sides:
            if kind.tag in ("choice", "priority", "status", "role"):
                listed = f"[{', '.join(_quoted(v) for v in sorted(kind.values or ())[:3])}]"
                self.refuse(
                    f"{self.text(side)} is {describe(kind)}: its values have no order "
                    "(they would be compared letter by letter)",
                    f"test the values it may have: {self.text(side)} in {listed}",
                )
                return
        if left.kind in _NUMERIC and right.kind in _NUMERIC:
            return
        if left.kind == right.kind == "string":
            self._date_problem(whole, sides)
            return
        if left.kind == right.kind and left.kind in ("timestamp", "duration", "bool", "bytes"):
            return
        if not self._date_problem(whole, sides):
            self.refuse(
                f"{self._both(sides)}: they cannot be compared", self._same_kind_hint(sides)
            )

    def _in(self, node: Binary, left: Type, right: Type) -> Type:
        if right.kind in _LOOSE:
            return BOOL
        if right.kind == "list":
            item = right.item or DYN
            self._comparable(node, left, item, node.left, node.right)
            if left.tag and left.values is not None and item.values is not None:
                missing = sorted(item.values - left.values)
                if missing and item.values & left.values:
                    self._values_meet(node, left, replace(item, values=frozenset(missing[:1])),
                                      node.left, node.right)  # fmt: skip
        elif right.kind in ("map", "record"):
            self._comparable(node, left, right.key or STRING, node.left, node.right)
        else:
            self.refuse(
                f"in needs a list or a map on its right, and {self.text(node.right)} is "
                f"{describe(right)}",
                f'write {self.text(node.left)} in ["a", "b"]',
            )
        return BOOL

    def _arithmetic(self, node: Binary, left: Type, right: Type) -> Type:  # noqa: PLR0911 - one answer per type rule
        sides = ((node.left, left), (node.right, right))
        if left.kind == "error" or right.kind == "error":
            return ERROR
        op = node.op
        if left.tag == "money" or right.tag == "money":
            changes = {n: f"{self.text(n)}.amount" for n, t in sides if t.tag == "money"}
            return self.refuse(
                f"{self._both(sides)}: {op} does not apply to money",
                f"compute with its amount: {self.rewrite(node, changes)}",
            )
        if left.kind == "dyn" or right.kind == "dyn":
            known = right if left.kind == "dyn" else left
            if op == "+" and known.kind in ("string", "bytes", "list"):
                return replace(known, tag="", values=None)  # only that kind adds to it
            return DYN
        if left.kind in _NUMERIC and right.kind in _NUMERIC:
            return self._numbers(node, left, right)
        pair = (left.kind, right.kind)
        results = {
            "+": {("string", "string"): STRING, ("bytes", "bytes"): BYTES,
                  ("timestamp", "duration"): TIMESTAMP, ("duration", "timestamp"): TIMESTAMP,
                  ("duration", "duration"): DURATION},
            "-": {("timestamp", "timestamp"): DURATION, ("timestamp", "duration"): TIMESTAMP,
                  ("duration", "duration"): DURATION},
        }  # fmt: skip
        if op == "+" and pair == ("list", "list"):
            return self.join(node, left, right, node.left, node.right)
        found = results.get(op, {}).get(pair)
        if found is not None:
            return found
        return self.refuse(
            f"{self._both(sides)}: {op} does not apply to them", self._plus_hint(node, sides)
        )

    def _plus_hint(self, node: Binary, sides: Sequence[tuple[Node, Type]]) -> str:
        if node.op == "+" and any(t.kind == "string" for _, t in sides):
            changes = {n: f"string({self.text(n)})" for n, t in sides if t.kind in _NUMERIC}
            if changes:
                return f"convert the number to text: {self.rewrite(node, changes)}"
        if any(t.tag == "date" for _, t in sides):
            return 'dates are texts; to compute with time, use timestamp(... + "T00:00:00Z")'
        return "use values of the same kind"

    def _numbers(self, node: Binary, left: Type, right: Type) -> Type:
        sides = ((node.left, left), (node.right, right))
        vague = "number" in (left.kind, right.kind)
        if node.op == "%" and "double" not in (left.kind, right.kind) and vague:
            changes = {n: f"int({self.text(n)})" for n, t in sides if t.kind == "number"}
            return self.refuse(
                f"{' and '.join(self.text(n) for n in changes)} may hold a decimal, and % "
                "applies to whole numbers only",
                f"convert to a whole number: {self.rewrite(node, changes)}",
            )
        if node.op == "%" and "double" in (left.kind, right.kind):
            return self.refuse(f"% applies to whole numbers, not to {self.text(node)}")
        if vague:
            changes = {n: _as_double(self.text(n), t, n) for n, t in sides}
            named = [self.text(n) for n, t in sides if t.kind == "number"]
            return self.refuse(
                f"{' and '.join(named)} may hold a whole number or a decimal, and CEL does not "
                f"mix them in arithmetic ({node.op})",
                f"convert to decimals: {self.rewrite(node, changes)}",
            )
        if left.kind != right.kind:
            changes = {n: _as_double(self.text(n), t, n) for n, t in sides}
            return self.refuse(
                f"{self._both(sides)}: CEL does not mix them in arithmetic ({node.op})",
                f"write both as decimals: {self.rewrite(node, changes)}",
            )
        return left

    # -- calls ---------------------------------------------------------------------------

    def _call(self, node: Call) -> Type:
        if node.target is None:
            return self._function(node)
        if node.name in _MACROS:
            return self._macro(node)
        if (
            isinstance(node.target, Ident)
            and node.target.name not in self.scope
            and (node.target.name not in self.facts.roots)
        ):
            qualified = f"{node.target.name}.{node.name}"
            if qualified in self.facts.functions:
                return self._plugin_call(node, qualified)
            if node.target.name in self.facts.namespaces:
                return DYN
            return self.refuse(
                f"unknown function {qualified!r}",
                f"functions are {_listed(FUNCTIONS)}; methods (x.f()) are {_listed(METHODS)}",
            )
        target = self.infer(node.target)
        args = [self.infer(arg) for arg in node.args]
        return self._method(node, target, args)

    def _plugin_call(self, node: Call, qualified: str) -> Type:
        params, returns = self.facts.functions[qualified]
        least = self.facts.required.get(qualified, len(params))
        if not least <= len(node.args) <= len(params):
            for arg in node.args:
                self.infer(arg)  # what the arguments name is checked all the same
            return self.refuse(
                f"{qualified}() takes {_how_many(least, len(params))}, and "
                f"{self.text(node)} gives {len(node.args)}",
                f"its signature is {self.facts.signatures[qualified]}"
                if qualified in self.facts.signatures
                else "",
            )
        for arg, wanted in zip(node.args, params, strict=False):
            found = self.infer(arg)
            expected = _PLUGIN_TYPES.get(wanted.rstrip("?"), DYN)
            if expected.kind == "dyn" or found.kind in (*_LOOSE, "null"):
                continue
            fits = (
                found.kind == expected.kind
                or (found.kind in _NUMERIC and expected.kind in _NUMERIC)
                or (found.kind == "record" and expected.kind == "map")
            )
            if not fits:
                self.refuse(
                    f"{qualified}() takes {describe(expected)} here, and {self.text(arg)} is "
                    f"{describe(found)}",
                    self._money_hint(arg, [(arg, found)]) if found.tag == "money" else "",
                )
        return _PLUGIN_TYPES.get((returns or "dyn").rstrip("?"), DYN)

    def _function(self, node: Call) -> Type:  # noqa: PLR0911 - one answer per type rule
        name = node.name
        if name == "has":
            return self._has(node)
        if name not in FUNCTIONS:
            return self.refuse(
                f"unknown function {name!r}",
                f"{_hint_near(name, (*FUNCTIONS, *METHODS))}functions are "
                f"{_listed(FUNCTIONS)}; methods (x.f()) are {_listed(METHODS)}",
            )
        args = [self.infer(arg) for arg in node.args]
        if name == "matches":
            if len(args) != 2:
                return self.refuse(f"matches() takes a text and a pattern, not {len(args)} values")
            return self._method(node, args[0], args[1:], node.args[0])
        if len(args) != 1:
            return self.refuse(f"{name}() takes one value, not {len(args)}")
        [arg] = args
        if name in ("dyn",):
            return DYN
        if name == "type":
            return TYPE
        if name == "size":
            return self._size(node, arg, node.args[0])
        result, accepts = _CONVERSIONS[name]
        if arg.kind in _LOOSE or arg.kind in accepts:
            if name == "timestamp" and arg.kind == "string" and arg.values:
                self._timestamp_text(node, arg)
            if name == "string" and arg.tag == "date":
                return arg
            return result
        hint = ""
        if arg.tag == "money" and name in ("int", "uint", "double", "string"):
            hint = f"convert its amount: {name}({self.text(node.args[0])}.amount)"
        return self.refuse(
            f"{name}() does not take {describe(arg)} ({self.text(node.args[0])}); it takes "
            f"{_listed(_kind_names(accepts))}",
            hint,
        )

    def _timestamp_text(self, node: Call, arg: Type) -> None:
        for value in sorted(arg.values or ()):
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})", value):
                self.refuse(
                    f"timestamp({_quoted(value)}): the text is not a time written like "
                    "2026-01-31T09:00:00Z",
                    'write timestamp("2026-01-31T09:00:00Z")',
                )

    def _size(self, node: Node, arg: Type, arg_node: Node) -> Type:
        if arg.kind in (*_LOOSE, "string", "bytes", "list", "map", "record"):
            return INT
        return self.refuse(
            f"size() takes text, a list or a map, and {self.text(arg_node)} is {describe(arg)}"
        )

    def _has(self, node: Call) -> Type:
        if len(node.args) != 1 or not isinstance(node.args[0], Select):
            return self.refuse(
                f"has() takes a member such as fields.photos, not {self.text(node)}",
                "write has(fields.<name>)",
            )
        self.infer(node.args[0])
        return BOOL

    def _method(  # noqa: PLR0911 - one answer per type rule
        self, node: Call, target: Type, args: list[Type], target_node: Node | None = None
    ) -> Type:
        name, owner = node.name, target_node or node.target
        assert owner is not None
        shown = self.text(owner)
        if name not in METHODS:
            return self.refuse(
                f"unknown method {name!r}",
                f"{_hint_near(name, METHODS)}methods are {_listed(METHODS)}",
            )
        if name == "size":
            if args:
                return self.refuse(f"size() takes no value here: write {shown}.size()")
            return self._size(node, target, owner)
        if target.kind == "error":
            return ERROR
        if name in _STRING_METHODS:
            if target.kind not in ("string", "dyn"):
                return self.refuse(f"{name}() applies to text, and {shown} is {describe(target)}")
            if len(args) != 1:
                return self.refuse(f"{name}() takes one text, not {len(args)} values")
            if args[0].kind not in ("string", *_LOOSE):
                value = node.args[-1]
                return self.refuse(
                    f"{name}() takes text, and {self.text(value)} is {describe(args[0])}",
                    f"write {shown}.{name}({_quoted(self.text(value))})",
                )
            return BOOL
        kinds = [kind for kind, names in _TIME_METHODS.items() if name in names]
        if target.kind not in (*kinds, "dyn"):
            return self.refuse(
                f"{name}() applies to {' and '.join(_kind_names(kinds))}, and {shown} is "
                f"{describe(target)}",
                f'dates are texts; read one as a time with timestamp({shown} + "T00:00:00Z")'
                if target.tag == "date"
                else "",
            )
        if args:
            return self.refuse(f"{name}() takes no value")
        return INT

    def _macro(self, node: Call) -> Type:
        assert node.target is not None
        target = self.infer(node.target)
        if len(node.args) not in (2, 3) or not isinstance(node.args[0], Ident):
            return self.refuse(
                f"{node.name}() takes a variable and an expression: "
                f"{self.text(node.target)}.{node.name}(x, x > 0)"
            )
        if target.kind in ("list",):
            element = target.item or DYN
        elif target.kind in ("map", "record"):
            element = target.key or STRING
        elif target.kind in _LOOSE:
            element = DYN
        else:
            return self.refuse(
                f"{node.name}() runs over a list or a map, and {self.text(node.target)} is "
                f"{describe(target)}"
            )
        variable = node.args[0].name
        saved = self.scope.get(variable)
        self.scope[variable] = element
        try:
            if node.name == "map":
                if len(node.args) == 3:
                    self.boolean(node.args[1], f"the filter of {node.name}()")
                return Type("list", item=self.infer(node.args[-1]))
            if len(node.args) == 3:
                return self.refuse(f"{node.name}() takes a variable and one expression")
            self.boolean(node.args[1], f"the test of {node.name}()")
            return Type("list", item=element) if node.name == "filter" else BOOL
        finally:
            if saved is None:
                del self.scope[variable]
            else:
                self.scope[variable] = saved


_PLUGIN_TYPES = {
    "string": STRING, "int": INT, "double": DOUBLE, "bool": BOOL, "list": Type("list", item=DYN),
    "map": Type("map", key=STRING, item=DYN), "timestamp": TIMESTAMP, "null": NULL, "dyn": DYN,
}  # fmt: skip


def _how_many(least: int, most: int) -> str:
    if least == most:
        return "no argument" if most == 0 else f"{most} argument{'s' * (most != 1)}"
    return f"{least} to {most} arguments"


def _hint_near(name: str, names: Iterable[str]) -> str:
    near = closest(name, names)
    return f"did you mean {near!r}? " if near else ""


def _kind_names(kinds: Iterable[str]) -> list[str]:
    return [describe(Type(kind)) for kind in kinds]


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _timestamp_literal(node: Node) -> str | None:
    if (
        isinstance(node, Call)
        and node.name == "timestamp"
        and node.target is None
        and len(node.args) == 1
        and isinstance(node.args[0], Literal)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value
    return None


def _as_double(text: str, kind: Type, node: Node) -> str:
    if isinstance(node, Literal) and node.kind == "int":
        return f"{node.value}.0"
    if kind.kind in ("int", "uint", "number"):
        return f"double({text})"
    return text


# -- entry points ------------------------------------------------------------------------------


def infer(source: str, facts: Facts) -> tuple[Type, list[TypeProblem]]:
    """The type of the expression ``source`` and its problems (``[]`` when it is well typed).
    An expression the parser cannot read is one problem, saying why."""
    try:
        tree = parse(source)
    except CelSyntaxError as error:
        return ERROR, [
            TypeProblem(
                f"the type checker cannot read this expression: {error}",
                'simplify it (docs/case-types.md, "Expression types")',
            )
        ]
    except RecursionError:
        return ERROR, [TypeProblem("the expression nests too deep to be checked", "simplify it")]
    checker = _Checker(source, facts)
    found = checker.infer(tree)
    return found, checker.problems


def check_condition(source: str, facts: Facts) -> list[TypeProblem]:
    """Every type problem of a condition, which must give true or false."""
    found, problems = infer(source, facts)
    if problems or found.kind in (*_LOOSE, "bool"):
        return problems
    checker = _Checker(source, facts)
    hint = checker._test_hint(parse(source), found)
    return [
        TypeProblem(f"a condition must be true or false, and {source} is {describe(found)}", hint)
    ]


FIELD_CONVERSIONS: Mapping[str, tuple[str, ...]] = {
    "text": ("text", "party", "document", "choice"),
    "number": ("number",),
    "integer": ("number",),
    "money": ("money",),
    "date": ("date", "text", "party", "document"),
    "boolean": ("boolean",),
    "timestamp": ("text", "party", "document"),
}
"""Which field kinds each connector conversion (``as:``) can feed."""


def check_value(
    source: str, facts: Facts, target: FieldSpec, convert: str | None = None
) -> list[TypeProblem]:
    """Every type problem of an expression computing the value of the field ``target``
    (a connector mapping), converted by ``convert`` (``as:``) first when given."""
    found, problems = infer(source, facts)
    if problems:
        return problems
    if convert is not None:
        if target.kind in FIELD_CONVERSIONS.get(convert, (target.kind,)):
            return []
        fits = [name for name, kinds in FIELD_CONVERSIONS.items() if target.kind in kinds]
        return [
            TypeProblem(
                f"as: {convert} gives {_conversion_gives(convert)}, and the field "
                f"{target.name!r} is {target.kind}",
                f"use as: {' or as: '.join(fits)}" if fits else "leave as: out",
            )
        ]
    problem = value_problem(found, target)
    return [] if problem is None else [problem]


def _conversion_gives(convert: str) -> str:
    return {"text": "text", "number": "a number", "integer": "a whole number",
            "money": "money", "date": "a date", "boolean": "true or false",
            "timestamp": "a timestamp text"}[convert]  # fmt: skip


def value_problem(found: Type, target: FieldSpec) -> TypeProblem | None:  # noqa: PLR0911 - one answer per type rule
    """Why a value of type ``found`` does not fit the field ``target``, or None."""
    if found.kind in (*_LOOSE, "null"):
        return None
    wanted = field_type(target)
    where = f"the field {target.name!r} is {target.kind}"
    if target.kind == "money":
        if found.kind in ("map", "record") and found.tag in ("", "money"):
            return None
        return TypeProblem(
            f"{where} and the expression gives {describe(found)}",
            "add as: money (with currency: EUR, say) to read an amount",
        )
    if target.kind == "number":
        return None if found.kind in _NUMERIC else TypeProblem(
            f"{where} and the expression gives {describe(found)}", "add as: number"
        )  # fmt: skip
    if target.kind == "boolean":
        return None if found.kind == "bool" else TypeProblem(
            f"{where} and the expression gives {describe(found)}", "add as: boolean"
        )  # fmt: skip
    if found.kind != "string":
        return TypeProblem(
            f"{where} and the expression gives {describe(found)}",
            "add as: text" if target.kind != "date" else "add as: date",
        )
    if target.kind == "date":
        if found.tag == "date":
            return None
        bad = sorted(v for v in found.values or () if not _is_date_text(v))
        if found.values is not None and not bad:
            return None
        return TypeProblem(
            f"{where} and the expression gives text that may not be a date written YYYY-MM-DD",
            "add as: date (with format: if the source writes dates otherwise)",
        )
    if target.kind == "choice" and found.values is not None and wanted.values is not None:
        missing = sorted(found.values - wanted.values)
        if missing:
            near = closest(missing[0], wanted.values)
            return TypeProblem(
                f"{where}, and {_quoted(missing[0])} is not one of its choices "
                f"({_listed(sorted(wanted.values))})",
                f"did you mean {_quoted(near)}?" if near else "map the source value to a choice",
            )
    return None


# -- decision tables ---------------------------------------------------------------------------
# A table's inputs are zen expressions over the same facts as conditions, and each cell is a
# zen "unary test" on its input (docs/case-types.md, "Decision tables"). Zen shares CEL's
# member paths, so an input that is a member path (``fields.claimed.amount``,
# ``case.priority``) is typed by the checker above; ``date(<path>)`` and ``len(<path>)`` are
# typed too. Any other input (arithmetic, ``??``, zen's own functions) has zen semantics this
# checker does not model: it is left untyped (any value), and its cells are checked for syntax
# only. Cells are read the same way: comparisons, ranges and lists of values over literals,
# ``date("...")`` and member paths; a cell of another form (``startsWith($, "a")``) is left to
# zen.

ZEN_DATE = Type("timestamp", tag="zen_date")
"""What zen's ``date("2026-01-31")`` (or ``date(fields.incident)``) gives: a point in time,
compared only with another ``date(...)``."""
_ORDERED = ("<", "<=", ">", ">=", "..")
_ZEN_VALUE = re.compile(
    r'(?P<string>"[^"]*"|\'[^\']*\')'
    r"|(?P<number>-?\s*\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<word>true|false|null)"
    r'|date\(\s*(?P<date>"[^"]*"|\'[^\']*\')\s*\)'
    r"|(?P<path>[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*|\[\s*(?:\"[^\"]*\"|'[^']*')\s*\])*)"
)
_COMPARISON = re.compile(r"(?P<op><=|>=|<|>|==|!=)?\s*(?P<value>.+)", re.DOTALL)
_RANGE = re.compile(r"[\[(]\s*(?P<low>.+?)\s*\.\.\s*(?P<high>.+?)\s*[\])]", re.DOTALL)
_JOIN = re.compile(r"\s+(?:and|or)\s+")
_COMMA = re.compile(r"\s*,\s*")
_LONGEST_CELL = 200


def _member_path(node: Node) -> bool:
    while isinstance(node, Select | Index):
        if isinstance(node, Index) and not (
            isinstance(node.index, Literal) and isinstance(node.index.value, str)
        ):
            return False
        node = node.operand
    return isinstance(node, Ident)


def table_input_type(source: str, facts: Facts) -> tuple[Type, list[TypeProblem]]:  # noqa: PLR0911 - one answer per form
    """The type of a decision-table input, and its problems (an unknown field, a member money
    does not have). An input the checker does not model is ``dyn``, with no problem: zen
    checks its syntax, and its cells are checked for syntax only."""
    try:
        tree = parse(source)
    except (CelSyntaxError, RecursionError):
        return DYN, []  # zen syntax (``a ?? b``, ``$``): not modelled
    if _member_path(tree):
        return infer(source, facts)
    if (
        isinstance(tree, Call)
        and tree.target is None
        and tree.name in ("date", "len")
        and len(tree.args) == 1
        and _member_path(tree.args[0])
    ):
        found, problems = infer(source[tree.args[0].start : tree.args[0].end], facts)
        if problems or found.kind in _LOOSE:
            return DYN, problems
        if tree.name == "len" and found.kind in ("string", "list", "map"):
            return NUMBER, []
        if tree.name == "date" and found.kind == "string":
            return ZEN_DATE, []
        what = "a date written YYYY-MM-DD" if tree.name == "date" else "text or a list"
        argument = source[tree.args[0].start : tree.args[0].end]
        problem = TypeProblem(f"{tree.name}() reads {what}, and {argument} is {describe(found)}")
        return ERROR, [problem]
    return DYN, []


def _split(text: str, at: re.Pattern[str]) -> list[str] | None:
    """``text`` split where ``at`` matches outside quotes and brackets; None when its
    brackets do not pair up (an open range such as ``]1..5[``: not modelled)."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(text):
        char = text[i]
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0 and (found := at.match(text, i)) is not None:
            parts.append(text[start:i])
            start = i = found.end()
            continue
        i += 1
    return [*parts, text[start:]] if depth == 0 and not quote else None


def cell_tests(cell: str) -> list[tuple[str, list[str]]] | None:
    """The tests of a decision-table cell, as ``(operator, [values])``: ``"==", ['"water"']``
    for ``"water"``, ``"..", ["1", "10"]`` for ``[1..10]``; None when the cell has a form this
    checker does not model (zen still checks its syntax)."""
    if len(cell) > _LONGEST_CELL:
        return None  # not a value a business user types: left to zen, and quick to check
    alternatives = _split(cell.strip(), _COMMA)
    if alternatives is None:
        return None
    tests = []
    for alternative in alternatives:
        parts = _split(alternative.strip(), _JOIN)
        if parts is None:
            return None
        for part in parts:
            test = part.strip()
            ranged = _RANGE.fullmatch(test)
            if ranged and all(_ZEN_VALUE.fullmatch(v) for v in ranged.groups()):
                tests.append(("..", [ranged["low"], ranged["high"]]))
                continue
            compared = _COMPARISON.fullmatch(test)
            if compared is None or not _ZEN_VALUE.fullmatch(compared["value"].strip()):
                return None
            tests.append((compared["op"] or "==", [compared["value"].strip()]))
    return tests


def _zen_value_type(source: str, facts: Facts) -> tuple[Type, list[TypeProblem]]:  # noqa: PLR0911 - one answer per form
    found = _ZEN_VALUE.fullmatch(source)
    assert found is not None
    if found["string"]:
        return Type("string", values=frozenset([source[1:-1]])), []
    if found["number"]:
        return NUMBER, []
    if found["word"]:
        return (NULL if source == "null" else BOOL), []
    if found["date"]:
        text = found["date"][1:-1]
        if _is_date_text(text):
            return ZEN_DATE, []
        return ERROR, [
            TypeProblem(
                f"{source} is not a date written YYYY-MM-DD: the cell never matches",
                'write the date as date("2026-01-31")',
            )
        ]
    if re.split(r"[.\[\s]", source, maxsplit=1)[0] in facts.roots:
        return infer(source, facts)
    return DYN, []  # ``$`` and zen's own names: not modelled


def check_cell(input_source: str, input_type: Type, cell: str, facts: Facts) -> list[TypeProblem]:
    """Every type problem of the decision-table cell ``cell`` on an input of ``input_type``
    (from :func:`table_input_type`): a value it can never match, each with how to write it."""
    if input_type.kind in _LOOSE or not cell.strip():
        return []
    tests = cell_tests(cell)
    problems: list[TypeProblem] = []
    for op, values in tests or ():
        for value in values:
            found, own = _zen_value_type(value, facts)
            problems += own
            if found.kind in (*_LOOSE, "null"):
                continue
            problem = _cell_mismatch(input_source, input_type, cell, op, value, found)
            if problem is not None and problem not in problems:
                problems.append(problem)
    return problems


def _cell_mismatch(  # noqa: PLR0911 - one answer per type rule
    source: str, kind: Type, cell: str, op: str, value: str, found: Type
) -> TypeProblem | None:
    never = f"the cell {cell.strip()!r} never matches"
    both = f"{source} is {describe(kind)}, and {value} is {describe(found)}: {never}"
    if kind.tag == "money":
        part = "currency" if found.kind == "string" else "amount"
        return TypeProblem(
            f"{source} is money ({{amount, currency}}), and the cell {cell.strip()!r} compares "
            f"it with {describe(found)}: it never matches",
            f"use {source}.{part} as the input",
        )
    if found.tag == "money":
        return TypeProblem(both, f"write {value}.amount")
    if kind.kind in _NUMERIC:
        if found.kind in _NUMERIC:
            return None
        text = value[1:-1] if found.kind == "string" else ""
        if text and _ZEN_VALUE.fullmatch(text) and _ZEN_VALUE.fullmatch(text)["number"]:  # type: ignore[index]
            return TypeProblem(both, f"write the number without quotes: {_unquoted(cell, value)}")
        return TypeProblem(both, "write a number, e.g. > 10000")
    if kind.kind == "bool":
        if op in _ORDERED:
            return TypeProblem(f"{source} is true or false: it has no order, so {never}",
                               "write true or false")  # fmt: skip
        if found.kind == "bool":
            return None
        if found.kind == "string" and value[1:-1] in ("true", "false"):
            return TypeProblem(both, f"write {value[1:-1]} without quotes")
        return TypeProblem(both, "write true or false")
    if kind.tag == "zen_date":
        if found.tag == "zen_date":
            return None
        text = value[1:-1] if found.kind == "string" else ""
        day = text if _is_date_text(text) else "2026-01-31"
        return TypeProblem(both, f'write the date as date("{day}")')
    if kind.kind != "string":
        return None  # lists, maps: not modelled
    return _text_cell(source, kind, cell, op, value, found, both)


def _text_cell(  # noqa: PLR0911 - one answer per type rule
    source: str, kind: Type, cell: str, op: str, value: str, found: Type, both: str
) -> TypeProblem | None:
    never = f"the cell {cell.strip()!r} never matches"
    if op in _ORDERED:
        if kind.tag == "date":
            dated = re.sub(r"\"([^\"]*)\"|'([^']*)'", lambda m: f'date("{m[1] or m[2]}")', cell)
            return TypeProblem(
                f"{source} is {describe(kind)}, and a decision table cannot order texts: {never}",
                f"use date({source}) as the input and write the cell {dated.strip()}",
            )
        if kind.tag in ("choice", "priority", "status", "role"):
            shown = ", ".join(_quoted(v) for v in sorted(kind.values or ())[:3])
            return TypeProblem(
                f"{source} is {describe(kind)}: its values have no order, so {never}",
                f"list the values it may have: {shown}" if shown else "list the values it may have",
            )
        return TypeProblem(
            f"{source} is text, and a decision table cannot order texts: {never}",
            'list the texts it may be, in double quotes: "a", "b"',
        )
    if found.kind != "string":
        if kind.tag == "date":
            return TypeProblem(both, 'write the date in double quotes, e.g. "2026-01-31"')
        return TypeProblem(both, f"write text in double quotes: {_quoted(value)}")
    given = sorted(found.values or ())
    if kind.tag == "date":
        bad = [v for v in given if not _is_date_text(v)]
        if bad:
            return TypeProblem(
                f"{source} is {describe(kind)}, and {_quoted(bad[0])} is not a date written "
                f"YYYY-MM-DD: {never}",
                'write the date as YYYY-MM-DD, e.g. "2026-01-31"',
            )
        return None
    if kind.values is None or found.values is None or found.values & kind.values:
        return None
    what = kind.tag or "text"
    plural = {"status": "states", "priority": "priorities", "choice": "choices"}
    plural_of = plural.get(what, f"{what}s")
    near = closest(given[0], kind.values)
    return TypeProblem(
        f"{source} is never {_quoted(given[0])}; its {plural_of} are "
        f"{_listed(sorted(kind.values))}: {never}",
        f"did you mean {_quoted(near)}?" if near else "",
    )


def _unquoted(cell: str, value: str) -> str:
    return cell.strip().replace(value, value[1:-1], 1)
