"""A parser for CEL (https://cel.dev) expressions into a small syntax tree, for the type checker
of :mod:`services.expression_types`. Pure: no I/O.

The ``common-expression-language`` package compiles and runs CEL but exposes no syntax tree, so
this reads the language's grammar (the CEL specification's "Syntax" section) itself: literals
(numbers, texts with their escapes, bytes, ``true``/``false``/``null``), names, member access,
indexing, function and method calls (macros are calls too), unary, binary and conditional
operators, list and map literals. Message construction (``Type{field: 1}``) and optional
syntax (``a.?b``), which the engine does not run either, are refused as :class:`CelSyntaxError`.

    tree = parse("fields.claimed.amount > 10000")
    # Binary(op=">", left=Select(Select(Ident("fields"), "claimed"), "amount"), right=Literal(...))

Each node keeps its ``start`` and ``end`` offsets in the source, so messages can quote it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 60
"""How deep an expression may nest (parentheses, calls, lists): deeper is refused."""


class CelSyntaxError(ValueError):
    """The source is not an expression this parser reads."""


@dataclass(frozen=True)
class Node:
    start: int
    end: int


@dataclass(frozen=True)
class Literal(Node):
    kind: str  # int, uint, double, string, bytes, bool, null
    value: Any


@dataclass(frozen=True)
class Ident(Node):
    name: str


@dataclass(frozen=True)
class Select(Node):
    operand: Node
    field: str


@dataclass(frozen=True)
class Index(Node):
    operand: Node
    index: Node


@dataclass(frozen=True)
class Call(Node):
    target: Node | None  # the receiver of a method call: ``target.name(args)``
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "!" or "-"
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Conditional(Node):
    condition: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True)
class ListLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class MapLit(Node):
    entries: tuple[tuple[Node, Node], ...]


_STRING = r"(?P<prefix>[rRbB]{0,2})(?P<quote>\"\"\"|'''|\"|')"  # the body is read by _string
_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<double>(?:\d+\.\d+|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)"
    r"|(?P<int>0[xX][0-9a-fA-F]+[uU]?|\d+[uU]?)"
    rf"|(?P<string>{_STRING})"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\|\||&&|==|!=|<=|>=|[<>+\-*/%!?:.,()\[\]{}])"
)
_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", "?": "?", '"': '"', "'": "'", "`": "`",
}  # fmt: skip
_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-3][0-7]{2}|.)")
_RESERVED = frozenset(
    ("as", "break", "const", "continue", "else", "for", "function", "if", "import", "let",
     "loop", "package", "namespace", "return", "var", "void", "while")
)  # fmt: skip


@dataclass(frozen=True)
class Token:
    kind: str  # op, ident, literal, end
    text: str
    start: int
    end: int
    value: Any = None
    literal: str = ""


def _unescape(body: str) -> str:
    def one(match: re.Match[str]) -> str:
        text = match[0][1:]
        if text[0] in "xuU":
            return chr(int(text[1:], 16))
        if text[0] in "0123" and len(text) == 3:
            return chr(int(text, 8))
        if text in _ESCAPES:
            return _ESCAPES[text]
        raise CelSyntaxError(f"unknown escape \\{text}")

    return _ESCAPE.sub(one, body)


def _string(source: str, match: re.Match[str]) -> Token:
    prefix, quote = match["prefix"].lower(), match["quote"]
    start, at = match.start(), match.end()
    while True:
        close = source.find(quote, at)
        if close < 0 or (len(quote) == 1 and "\n" in source[at:close]):
            raise CelSyntaxError(f"a text starting at column {start + 1} is not closed")
        escaped = len(source[at:close]) - len(source[at:close].rstrip("\\"))
        if "r" in prefix or escaped % 2 == 0:
            break
        at = close + 1
    body = source[match.end() : close]
    text = body if "r" in prefix else _unescape(body)
    kind = "bytes" if "b" in prefix else "string"
    value: Any = text.encode("utf-8", "surrogatepass") if kind == "bytes" else text
    end = close + len(quote)
    return Token("literal", source[start:end], start, end, value, kind)


def tokens(source: str) -> list[Token]:
    """The tokens of ``source``; a :class:`CelSyntaxError` at a character no token starts."""
    found, at = [], 0
    while at < len(source):
        match = _TOKEN.match(source, at)
        if match is None:
            raise CelSyntaxError(f"unexpected character {source[at]!r} at column {at + 1}")
        kind = match.lastgroup or ""
        if kind == "string":
            token = _string(source, match)
        elif kind == "double":
            token = Token("literal", match[0], at, match.end(), float(match[0]), "double")
        elif kind == "int":
            text = match[0].rstrip("uU")
            number = int(text, 16) if text[:2].lower() == "0x" else int(text)
            literal = "uint" if match[0][-1] in "uU" else "int"
            token = Token("literal", match[0], at, match.end(), number, literal)
        elif kind == "ident":
            token = Token("ident", match[0], at, match.end())
        elif kind == "op":
            token = Token("op", match[0], at, match.end())
        else:
            token = Token("space", "", at, match.end())
        if token.kind != "space":
            found.append(token)
        at = token.end
    found.append(Token("end", "", len(source), len(source)))
    return found


_RELATIONS = ("<", "<=", ">=", ">", "==", "!=", "in")
_WORDS = {"true": ("bool", True), "false": ("bool", False), "null": ("null", None)}


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokens(source)
        self.at = 0
        self.depth = 0

    def peek(self, text: str) -> bool:
        token = self.tokens[self.at]
        return token.kind in ("op", "ident") and token.text == text

    def take(self, text: str) -> Token:
        token = self.tokens[self.at]
        if not self.peek(text):
            shown = repr(token.text) if token.kind != "end" else "the end"
            raise CelSyntaxError(f"expected {text!r} at column {token.start + 1}, found {shown}")
        self.at += 1
        return token

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise CelSyntaxError(f"nests more than {MAX_DEPTH} levels deep")
        condition = self.binary(0)
        if self.peek("?"):
            self.take("?")
            then = self.binary(0)
            self.take(":")
            otherwise = self.expr()
            condition = Conditional(condition.start, otherwise.end, condition, then, otherwise)
        self.depth -= 1
        return condition

    _LEVELS: tuple[tuple[str, ...], ...] = (
        ("||",),
        ("&&",),
        _RELATIONS,
        ("+", "-"),
        ("*", "/", "%"),
    )

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while (op := self.tokens[self.at]).kind in ("op", "ident") and op.text in self._LEVELS[
            level
        ]:
            self.at += 1
            right = self.binary(level + 1)
            left = Binary(left.start, right.end, op.text, left, right)
        return left

    def unary(self) -> Node:
        token = self.tokens[self.at]
        if token.kind == "op" and token.text in ("!", "-"):
            self.at += 1
            following = self.tokens[self.at]
            if (
                token.text == "-"
                and following.kind == "literal"
                and following.start == token.end
                and following.literal in ("int", "double")  # a negative number literal
            ):
                self.at += 1
                literal = Literal(token.start, following.end, following.literal, -following.value)
                return self.member(literal)
            operand = self.unary()
            return Unary(token.start, operand.end, token.text, operand)
        return self.member(self.primary())

    def member(self, node: Node) -> Node:
        while True:
            if self.peek("."):
                self.take(".")
                name = self.ident()
                if self.peek("("):
                    args, end = self.arguments(")")
                    node = Call(node.start, end, node, name.text, args)
                else:
                    node = Select(node.start, name.end, node, name.text)
            elif self.peek("["):
                self.take("[")
                index = self.expr()
                end = self.take("]").end
                node = Index(node.start, end, node, index)
            elif self.peek("{"):
                raise CelSyntaxError(
                    f"message construction at column {self.tokens[self.at].start + 1} is not "
                    "supported"
                )
            else:
                return node

    def ident(self) -> Token:
        token = self.tokens[self.at]
        if token.kind != "ident" or token.text in _WORDS or token.text == "in":
            shown = repr(token.text) if token.kind != "end" else "the end"
            raise CelSyntaxError(f"expected a name at column {token.start + 1}, found {shown}")
        if token.text in _RESERVED:
            raise CelSyntaxError(f"{token.text!r} is a reserved word")
        self.at += 1
        return token

    def arguments(self, close: str) -> tuple[tuple[Node, ...], int]:
        self.take("(" if close == ")" else "[")
        items = []
        while not self.peek(close):
            items.append(self.expr())
            if not self.peek(close):
                self.take(",")
        return tuple(items), self.take(close).end

    def primary(self) -> Node:  # noqa: PLR0911 - one return per kind of primary
        token = self.tokens[self.at]
        if token.kind == "literal":
            self.at += 1
            return Literal(token.start, token.end, token.literal, token.value)
        if token.kind == "ident" and token.text in _WORDS:
            self.at += 1
            kind, value = _WORDS[token.text]
            return Literal(token.start, token.end, kind, value)
        if self.peek("."):
            self.take(".")  # a leading dot names the root scope: .fields is fields
        if self.tokens[self.at].kind == "ident":
            name = self.ident()
            if self.peek("("):
                args, end = self.arguments(")")
                return Call(name.start, end, None, name.text, args)
            return Ident(name.start, name.end, name.text)
        if self.peek("("):
            self.take("(")
            inner = self.expr()
            self.take(")")
            return inner
        if self.peek("["):
            items, end = self.arguments("]")
            return ListLit(token.start, end, items)
        if self.peek("{"):
            return self.map_literal()
        shown = repr(token.text) if token.kind != "end" else "the end"
        raise CelSyntaxError(f"unexpected {shown} at column {token.start + 1}")

    def map_literal(self) -> Node:
        start = self.take("{").start
        entries = []
        while not self.peek("}"):
            key = self.expr()
            self.take(":")
            entries.append((key, self.expr()))
            if not self.peek("}"):
                self.take(",")
        return MapLit(start, self.take("}").end, tuple(entries))


def parse(source: str) -> Node:
    """The syntax tree of the CEL expression ``source``, or a :class:`CelSyntaxError`."""
    parser = _Parser(source)
    tree = parser.expr()
    rest = parser.tokens[parser.at]
    if rest.kind != "end":
        raise CelSyntaxError(f"unexpected {rest.text!r} at column {rest.start + 1}")
    return tree
