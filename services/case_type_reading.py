"""Reading a case-type document: YAML or JSON, UTF-8, at most 256 KiB, plain data only.

Refusals raise :class:`InvalidDocument`, whose problems name the line and column; the same
error lists the problems ``services.case_type_document`` finds in a document it reads.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.cyaml import CParser  # type: ignore[attr-defined]
from yaml.resolver import Resolver

from domain.errors import InvalidCommand
from domain.values import escaped

MAX_DOCUMENT_BYTES = 256 * 1024
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
JSON_TYPES = ("application/json",)
_SHOWN_PROBLEMS = 10


class InvalidDocument(InvalidCommand):
    """A case-type document that cannot be read or compiled; ``problems`` lists each one as
    ``path: problem``."""

    code = "invalid_case_type"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        shown = "; ".join(self.problems[:_SHOWN_PROBLEMS])
        more = f"; and {count - _SHOWN_PROBLEMS} more" if count > _SHOWN_PROBLEMS else ""
        super().__init__(
            f"the case-type document has {count} problem{'s' * (count != 1)}: {shown}{more}",
            hint="fix each problem at its path (such as states.review or rules[2].do[1]); "
            "the format is described in docs/case-types.md",
        )


class _PlainData:
    """YAML restricted to plain data: the YAML 1.2 core scalars (only true/false are booleans,
    so ``on:`` stays a key, and dates stay text), no anchors or aliases (no "billion laughs"),
    no merge keys, no explicit tags, text keys only, no duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[attr-defined]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.MarkedYAMLError(
                problem="anchors and aliases (&name, *name) are not allowed; repeat the text",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)  # type: ignore[misc]

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)  # type: ignore[misc]
        seen: set[str] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[attr-defined]
            if not isinstance(key, str) or key in seen:
                why = "appears twice" if key in seen else "must be text"
                raise ConstructorError(
                    problem=f"the key {key!r} {why}", problem_mark=key_node.start_mark
                )
            seen.add(key)
        return mapping


class _Loader(_PlainData, yaml.SafeLoader):
    """:class:`_PlainData` with PyYAML's pure-Python reader: its refusals say the most."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 - PyYAML's class registries,
    yaml_constructors: ClassVar[dict[Any, Any]] = {}  # emptied to allow only what we add


class _FastLoader(_PlainData, Composer, CParser, SafeConstructor, Resolver):
    """:class:`_PlainData` with libyaml (PyYAML's C parser) scanning and parsing: the
    pure-Python parser took seconds for a 256 KiB document, most of a request's deadline.
    Nodes are still composed and constructed in Python, with the checks above. A document it
    cannot read is read again by :class:`_Loader`, whose refusals say more."""

    yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers  # the same registries
    yaml_constructors = _Loader.yaml_constructors
    get_single_node = Composer.get_single_node  # not CParser's, which composes in C

    def __init__(self, stream: Any) -> None:
        CParser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


for _tag, _pattern, _first in (
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("int", r"^[-+]?[0-9]+$", list("-+0123456789")),
    (
        "float",
        r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$",
        list("-+.0123456789"),
    ),
):
    _Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), _first)
for _tag in ("null", "bool", "str", "seq", "map"):
    _key = f"tag:yaml.org,2002:{_tag}"
    _Loader.add_constructor(_key, SafeConstructor.yaml_constructors[_key])


def _number_constructor(number: type[int] | type[float]) -> Any:
    def construct(loader: _Loader, node: Any) -> int | float:
        return number(loader.construct_scalar(node))

    return construct


for _tag, _number in (("int", int), ("float", float)):  # decimal, as in YAML 1.2 (08 is 8)
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _number_constructor(_number))
_undefined: Any = SafeConstructor.construct_undefined
_Loader.add_constructor(None, _undefined)


def read_document(body: bytes, content_type: str) -> dict[str, Any]:
    """The document in ``body``: YAML (``application/yaml``) or JSON (``application/json``),
    UTF-8, at most 256 KiB, a mapping at the top. Refusals raise :class:`InvalidDocument`
    whose problems name the line and column."""
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    if media not in (*YAML_TYPES, *JSON_TYPES):
        raise InvalidDocument(
            [
                f"content type: {media or 'none'!r} is not supported; send "
                f"{', '.join(YAML_TYPES)} or {JSON_TYPES[0]}"
            ]
        )
    if len(body) > MAX_DOCUMENT_BYTES:
        raise InvalidDocument(
            [
                f"document: {len(body)} bytes is over the limit of "
                f"{MAX_DOCUMENT_BYTES} bytes (256 KiB)"
            ]
        )
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidDocument([f"document: not UTF-8 text (byte {error.start})"]) from None
    try:
        document = _json(text) if media in JSON_TYPES else _yaml(text)
    except yaml.MarkedYAMLError as error:
        raise InvalidDocument([_yaml_problem(error)]) from None
    except json.JSONDecodeError as error:
        raise InvalidDocument([f"line {error.lineno}, column {error.colno}: {error.msg}"]) from None
    except (yaml.YAMLError, ValueError) as error:
        raise InvalidDocument([f"document: {error}"]) from None
    except RecursionError:
        raise InvalidDocument(["document: nested too deeply"]) from None
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        raise InvalidDocument(
            [f"document: is {kind}; it must be a mapping of name, labels, calendar, states, …"]
        )
    if problems := unstorable_text(document):
        raise InvalidDocument(problems)
    return document


def _yaml(text: str) -> Any:
    """The YAML document in ``text``, read fast when it is plain, else read again slowly so
    that a refusal says exactly what is wrong and where (or a lone surrogate is reported)."""
    try:
        return yaml.load(text, Loader=_FastLoader)  # type: ignore[arg-type]  # noqa: S506
    except Exception:  # noqa: BLE001, S110 - the slow reader below explains the refusal
        pass
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def unstorable_text(document: dict[str, Any]) -> list[str]:
    """A problem for each key or text in ``document`` that the event store, PostgreSQL or
    Kafka cannot hold: a NUL character or a lone surrogate (JSON ``"\\ud800"``, YAML
    ``"\\0"``). Paths show such characters escaped, so the answer itself can be sent."""
    problems = []
    pending: list[tuple[str, Any]] = [("", document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{escaped(key)}" if path else escaped(key)
                if problem := _text_problem(key):
                    problems.append(f"{where}: its key {problem}")
                pending.append((where, item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str) and (problem := _text_problem(value)):
            problems.append(f"{path}: {problem}")
    return sorted(problems)


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain NUL (\\u0000) characters; remove them"
    if escaped(text) != text:
        return "must be valid Unicode text; it holds a lone surrogate such as \\ud800"
    return None


def _yaml_problem(error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "document"
    return f"{where}: {', '.join(filter(None, (error.context, error.problem)))}"


def _json(text: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        mapping = dict(items)
        if len(mapping) != len(items):
            twice = next(k for k in mapping if sum(1 for key, _ in items if key == k) > 1)
            raise ValueError(f"the key {twice!r} appears twice")
        return mapping

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
