"""The pieces of a case-type document, checked one by one: the strict shapes of its parts
(pydantic models whose errors become ``path: problem`` lines), and the cross-reference checks
shared by its sections (labels, expressions, actions).

Used by :mod:`services.case_type_document`; every check appends to a :class:`Scope` and
returns the compiled piece, or ``None`` when the piece has a problem.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from domain.case import rule_trigger_types
from domain.definition import (
    ACTION_KINDS,
    CHANNELS,
    PRIORITIES,
    RECIPIENT_KINDS,
    Action,
    Definition,
    FieldSpec,
    Notification,
    Recipient,
    View,
)
from services.auth import Role
from services.expression_types import (
    DYN,
    Facts,
    Type,
    TypeProblem,
    case_facts,
    check_cell,
    check_condition,
    closest,
    table_input_type,
)
from services.expressions import (
    FACT_ROOTS,
    CelCondition,
    DecisionTable,
    SandboxedTemplate,
    members_in,
    table_problems,
)
from services.notification_targets import (
    NOT_AN_ADDRESS,
    NotificationPolicy,
    is_single_address,
    unstorable_in,
    url_problem,
)
from services.plugins import Plugin, action_from, condition_problems, installed
from services.secret_store import SECRET_NAME

NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")
# A field's help text is a hint of a sentence or two under its input, shown as plain text.
HELP_LENGTH = 500
# control characters, except line breaks and tabs
_NOT_PLAIN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
ROLES = tuple(role.value for role in Role)
CASE_FACTS = (
    "id", "case_type", "case_type_version", "title", "status", "priority", "assignee",
    "queue", "version", "party_id", "escalations",
)  # fmt: skip
EVENT_TYPES = rule_trigger_types()
_SECTIONS = {
    "transition": "transitions",
    "notification": "notifications",
    "table": "decision_tables",
}
COLUMNS = ("title", "status", "assignee", "queue", "priority", "opened_at", "updated_at")
_MEMBERS = {"case": CASE_FACTS, "event": ("type", "data"), "actor": ("id", "role")}


class Part(BaseModel):
    """A part of the document: strict types, no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class StateDoc(Part):
    initial: bool = False
    final: bool = False
    labels: dict[str, str] = {}


class TransitionDoc(Part):
    sources: Any = Field(alias="from")
    to: str
    roles: list[str] = []
    requires: list[str] = []
    condition: str | None = Field(None, alias="if")
    labels: dict[str, str] = {}
    blocked_reason: dict[str, str] = {}


class FieldDoc(Part):
    kind: str = Field(alias="type")
    required: bool = False
    labels: dict[str, str] = {}
    choices: list[str] | None = None
    minimum: float | None = Field(None, alias="min")
    maximum: float | None = Field(None, alias="max")
    max_length: int | None = None
    pattern: str | None = None
    currencies: list[str] | None = None
    choice_labels: dict[str, dict[str, str]] | None = None
    personal: bool = False  # personal data of the case's subject (docs/case-types.md)
    editable_when_final: bool = False  # still editable in a final state (docs/case-types.md)
    help: dict[str, str] = {}  # a hint shown under the input, per language (check_help)


class SlaDoc(Part):
    name: str
    deadline: str
    goal: str | None = None
    state: str | None = None
    warn_at: list[int] = []
    paused_in: list[str] = []
    on_warning: list[Any] = []
    on_breach: list[Any] = []


class RowDoc(Part):
    when: list[str]
    then: dict[str, Any]


class TableDoc(Part):
    inputs: list[str] = Field(min_length=1)
    outputs: list[str] = Field(min_length=1)
    rows: list[RowDoc] = Field(min_length=1)


class RuleDoc(Part):
    name: str
    on: list[str] = Field(min_length=1)
    condition: str | None = Field(None, alias="if")
    do: list[Any] = Field(min_length=1)


class NotificationDoc(Part):
    channel: str
    body: str
    to: list[dict[str, Any]] = []
    subject: str | None = None
    url: str | None = None
    topic: str | None = None
    secret: str | None = None


class ViewDoc(Part):
    see: Any = "all"
    edit: Any = "none"
    columns: list[str] | None = None


class AssignDoc(Part):
    table: str | None = None
    user: str | None = None
    queue: str | None = None


class SetFieldDoc(Part):
    field: str
    value: Any


class EscalateDoc(Part):
    reason: str = Field(min_length=1)
    queue: str | None = None


class OpenChildDoc(Part):
    case_type: str
    title: str
    fields: dict[str, Any] = {}


P = TypeVar("P", bound=Part)
T = TypeVar("T")
_KINDS = {
    "string_type": "text", "bool_type": "true or false", "int_type": "a whole number",
    "float_type": "a number", "list_type": "a list", "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
}  # fmt: skip


def shown(value: Any) -> str:
    """A short rendering of a document value for a problem message."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def path_of(base: str, loc: Sequence[int | str]) -> str:
    """``slas[0]`` + ``("on_breach", 1)`` -> ``slas[0].on_breach[1]``."""
    path = base
    for step in loc:
        path += f"[{step}]" if isinstance(step, int) else (f".{step}" if path else str(step))
    return path


def _allowed_keys(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    for step in loc:
        if isinstance(step, int):
            continue
        info = {f.alias or name: f for name, f in model.model_fields.items()}.get(step)
        nested = [a for a in getattr(info and info.annotation, "__args__", ()) if _is_model(a)]
        if nested:
            model = nested[0]
    return [f.alias or name for name, f in model.model_fields.items()]


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _message(model: type[BaseModel] | None, error: ErrorDetails) -> str:
    kind, got = error["type"], error.get("input")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden" and model is not None:
        allowed = ", ".join(_allowed_keys(model, error["loc"][:-1]))
        return f"unknown key; allowed keys are {allowed}"
    if kind in _KINDS:
        return f"must be {_KINDS[kind]}, not {shown(got)}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "invalid_key":
        yaml11 = " (yaml.safe_load reads on:, yes: and no: as booleans; use read_document)"
        return f"the key {got!r} must be text{yaml11 * isinstance(got, bool)}"
    return error["msg"].replace("Input should", "must").replace("Value should", "must")


def parse_part(model: type[P], value: Any, path: str, problems: list[str]) -> P | None:
    """``value`` as ``model``, with one problem per pydantic error. When only some keys are
    wrong (misspelt, or of the wrong type where a default exists), the part is read without
    them, so that the checks that follow still report what else is wrong in it (every problem
    at once); ``None`` when the part cannot be read at all (a required key missing)."""
    try:
        return model.model_validate(value)
    except ValidationError as error:
        problems += _problems(model, error, path)
        return _without_bad_keys(model, value, error)


def _without_bad_keys(model: type[P], value: Any, error: ValidationError) -> P | None:
    if not isinstance(value, Mapping):
        return None
    bad = {str(d["loc"][0]) for d in error.errors(include_url=False) if d["loc"]}
    required = {f.alias or n for n, f in model.model_fields.items() if f.is_required()}
    if bad & required:
        return None
    try:
        return model.model_validate({k: v for k, v in value.items() if str(k) not in bad})
    except ValidationError:
        return None


def parse_value(adapter: TypeAdapter[T], value: Any, path: str, problems: list[str]) -> T | None:
    """``value`` checked by a pydantic ``TypeAdapter``, or ``None`` with its problems."""
    try:
        return adapter.validate_python(value)
    except ValidationError as error:
        problems += _problems(None, error, path)
        return None


def _problems(model: type[BaseModel] | None, error: ValidationError, path: str) -> list[str]:
    found = []
    for detail in error.errors(include_url=False):
        loc = detail["loc"][:-1] if detail["type"] == "invalid_key" else detail["loc"]
        found.append(f"{path_of(path, loc)}: {_message(model, detail)}")
    return found


KnownCaseTypes = Collection[str] | Mapping[str, Definition | None]
"""The case types ``open_child`` may name: their names only, or each name with its current
published version (``None`` while it has none), whose fields the child's fields must fit."""


@dataclass(frozen=True)
class ChildType:
    """What an ``open_child`` action's fields are checked against: the fields of the child
    case type (``what`` names it in problems) and whether it takes fields it does not declare.
    ``declared`` also holds fields whose own declaration has problems (not in ``fields``)."""

    what: str
    fields: Mapping[str, FieldSpec]
    declared: Sequence[str]
    extra_fields: bool

    def described(self) -> str:
        """``fields of case type 'payment' v3: amount (money, required), note (text)``."""
        found = [
            f"{n} ({s.kind}{', required' if s.required else ''})" for n, s in self.fields.items()
        ]
        return f"fields of {self.what}: {listed(found)}"


def listed(names: Collection[str]) -> str:
    return ", ".join(names) if names else "none"


@dataclass(frozen=True)
class Issue:
    """One problem of a document, at its place: ``path`` as problems name it
    (``rules[2].if``), ``pointer`` the same place as a JSON pointer (``/rules/2/if``), what is
    wrong and, when it helps, how to write it."""

    path: str
    message: str
    hint: str = ""

    @property
    def pointer(self) -> str:
        return pointer_of(self.path)

    def __str__(self) -> str:
        said = f"{self.path}: {self.message}" if self.path else self.message
        return f"{said}; {self.hint}" if self.hint else said


_STEP = re.compile(r"\[(\d+)\]|\.?([^.\[]+)")


def pointer_of(path: str) -> str:
    """``rules[2].do[0].assign`` -> ``/rules/2/do/0/assign`` (RFC 6901); ``""`` for the whole
    document (``document``, or a place given by line and column)."""
    if path in ("", "document") or path.startswith("line "):
        return ""
    steps = [index or key for index, key in _STEP.findall(path)]
    return "".join("/" + step.replace("~", "~0").replace("/", "~1") for step in steps)


def issues_of(problems: Sequence[str], known: Sequence[Issue] = ()) -> list[Issue]:
    """``problems`` (``path: message`` lines) as issues, in the same order; lines that
    ``known`` recorded keep their hint, others are split at their first ``: ``."""
    recorded = {str(issue): issue for issue in known}
    found = []
    for line in problems:
        if line in recorded:
            found.append(recorded[line])
            continue
        path, colon, message = line.partition(": ")
        if not colon or " " in path.strip("'\""):
            path, message = "", line  # no path: a whole-document problem (line 3, column 1...)
        found.append(Issue(path, message))
    return found


@dataclass
class Scope:
    """What the document declares, for cross-references; problems are appended here."""

    name: str = ""
    problems: list[str] = field(default_factory=list)
    states: dict[str, bool] = field(default_factory=dict)  # name -> final
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    field_names: list[str] = field(default_factory=list)
    extra_fields: bool = False
    transitions: list[str] = field(default_factory=list)
    notifications: list[str] = field(default_factory=list)
    tables: dict[str, DecisionTable | None] = field(default_factory=dict)
    case_types: KnownCaseTypes | None = None
    policy: NotificationPolicy | None = None  # IT's egress rules; None checks the text only
    day_length: timedelta = timedelta(hours=24)
    broken: set[str] = field(default_factory=set)  # sections not even of the right type
    plugins: dict[str, Plugin] = field(default_factory=dict)  # declared (services.plugins)
    table_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # rows' outputs
    tables_used: set[str] = field(default_factory=set)  # tables whose outputs assign reads
    issues: list[Issue] = field(default_factory=list)  # the problems with a hint, by place
    _facts: Facts | None = None

    def add(self, path: str, message: str, hint: str = "") -> None:
        issue = Issue(path, message, hint)
        self.issues.append(issue)
        self.problems.append(str(issue))

    def facts(self) -> Facts:
        """What conditions read, typed by the fields compiled so far (a field with problems
        of its own is read as any value, so as not to repeat them)."""
        if self._facts is None:
            specs = {name: self.fields.get(name) for name in self.field_names}
            base = case_facts(
                {n: spec for n, spec in specs.items() if spec is not None},
                states=list(self.states) if "states" not in self.broken else (),
                roles=ROLES,
                extra_fields=self.extra_fields or "fields" in self.broken,
            )
            fields_type = base.roots["fields"]
            untyped = [(n, DYN) for n, spec in specs.items() if spec is None]
            roots = dict(base.roots)
            roots["fields"] = Type(
                "record", members=fields_type.members + tuple(untyped),
                open=fields_type.open, what="field",
            )  # fmt: skip
            functions = {
                entry.qualified: (tuple(p.type for p in entry.params), entry.returns or "dyn")
                for plugin in self.plugins.values()
                for entry in plugin.functions.values()
            }
            entries = [e for plugin in self.plugins.values() for e in plugin.functions.values()]
            required = {e.qualified: sum(p.required for p in e.params) for e in entries}
            signatures = {e.qualified: e.signature for e in entries}
            namespaces = frozenset([*self.plugins, *installed().by_name])
            self._facts = Facts(roots, functions, namespaces, required, signatures)
        return self._facts

    def check_name(self, path: str, name: str, what: str) -> None:
        if not NAME.fullmatch(name):
            self.add(
                path,
                f"{name!r} is not a valid {what} name; use lowercase letters, "
                "digits and _, starting with a letter (at most 63 characters)",
            )

    def check_labels(
        self, path: str, labels: Mapping[str, str], *, required: bool = False, key: str = "labels"
    ) -> None:
        where = path_of(path, (key,))
        if (labels or required) and "en" not in labels:
            self.add(where, "has no English text; add en (other languages are optional)")
        for language, text in labels.items():
            if not LANGUAGE.fullmatch(language):
                self.add(f"{where}.{language}", "is not a language code such as en or fr")
            elif not text.strip():
                self.add(f"{where}.{language}", "must not be empty")

    def check_help(self, path: str, texts: Mapping[str, str]) -> None:
        """A field's help texts: labels' rules, plain text within :data:`HELP_LENGTH`."""
        self.check_labels(path, texts, key="help")
        for language, text in texts.items():
            where = f"{path}.help.{language}"
            if _NOT_PLAIN.search(text):
                self.add(
                    where,
                    "must be plain text: no NUL (\\u0000) or other control characters "
                    "except line breaks and tabs",
                )
            elif len(text) > HELP_LENGTH:
                self.add(
                    where,
                    f"is {len(text)} characters long; a help text holds at most "
                    f"{HELP_LENGTH}: keep it to a sentence or two",
                )

    def check_state(self, path: str, state: str, *, leaving: bool = False) -> bool:
        if "states" in self.broken:
            return True
        if state not in self.states:
            why = " (the built-in closure; close cases with the close command)" * (
                state == "closed"
            )
            self.add(path, f"unknown state {state!r}{why}; states are {listed(self.states)}")
            return False
        if leaving and self.states[state]:
            self.add(path, f"{state!r} is a final state; nothing can leave a final state")
            return False
        return True

    def check_field(self, path: str, name: str) -> bool:
        if self.extra_fields or name in self.field_names or "fields" in self.broken:
            return True
        near = closest(name, self.field_names)
        self.add(
            path,
            f"unknown field {name!r}; fields are {listed(self.field_names)}",
            f"did you mean {near!r}?" if near else "",
        )
        return False

    def check_roles(self, path: str, roles: Sequence[str]) -> None:
        for index, role in enumerate(roles):
            if role not in ROLES:
                self.add(f"{path}[{index}]", f"unknown role {role!r}; roles are {listed(ROLES)}")

    def check_references(
        self, path: str, names: Collection[str], members: Collection[tuple[str, str]]
    ) -> None:
        """The names and ``root.member`` accesses an expression or template reads must exist."""
        for name in names:
            if name not in FACT_ROOTS:
                self.add(path, f"unknown name {name!r}; use {listed(FACT_ROOTS)}")
        for root, member in sorted(members):
            if root == "fields":
                self.check_field(path, member)
            elif root in _MEMBERS and member not in _MEMBERS[root]:
                self.add(path, f"{root} has no {member!r}; it has {listed(_MEMBERS[root])}")

    def condition(self, path: str, source: str | None) -> CelCondition | None:
        if source is None:
            return None
        try:
            compiled = CelCondition(source, where=f"the condition at {path}")
        except ValueError as error:
            self.add(path, str(error))
            # what it names is checked all the same: one answer, every problem
            members = {(root, name) for root, name in members_in(source) if root in FACT_ROOTS}
            self.check_references(path, (), members)
            return None
        compiled, plugin_problems = condition_problems(compiled, self.plugins, installed())
        for why in plugin_problems:  # calls of plugin functions (services.plugins)
            self.add(path, why)
        seen = set()
        for problem in check_condition(source, self.facts()):  # names, members and types
            if str(problem) not in seen:
                seen.add(str(problem))
                self.add(path, problem.message, problem.hint)
        return compiled

    def template(self, path: str, source: str | None) -> SandboxedTemplate | None:
        if source is None:
            return None
        try:
            compiled = SandboxedTemplate(source, where=f"the template at {path}")
        except ValueError as error:
            self.add(path, str(error))
            return None
        self.check_references(path, compiled.names, compiled.members)
        return compiled

    def actions(self, path: str, items: Sequence[Any]) -> tuple[Action, ...]:
        built = (self.action(f"{path}[{index}]", item) for index, item in enumerate(items))
        return tuple(action for action in built if action is not None)

    def action(self, path: str, item: Any) -> Action | None:
        if isinstance(item, Mapping) and "plugin" in item:  # {plugin: a.b, with: {...}}
            return action_from(self, self.plugins, installed(), path, item)
        if not isinstance(item, Mapping) or len(item) != 1:
            self.add(
                path,
                "an action is a mapping with one key, such as {notify: claim_received}"
                f"; the keys are {listed(ACTION_KINDS)}",
            )
            return None
        [(kind, value)] = item.items()
        if kind not in ACTION_KINDS:
            self.add(f"{path}.{kind}", f"unknown action; actions are {listed(ACTION_KINDS)}")
            return None
        params = getattr(self, f"_{kind}")(f"{path}.{kind}", value)
        if params is None:
            return None
        if isinstance(params, Action):
            return params
        return Action(kind, params)

    def _named(self, path: str, value: Any, names: Collection[str], what: str) -> str | None:
        if isinstance(value, str) and (value in names or _SECTIONS.get(what) in self.broken):
            return value
        plural = "priorities" if what == "priority" else f"{what}s"
        self.add(path, f"unknown {what} {shown(value)}; {plural} are {listed(names)}")
        return None

    def _transition(self, path: str, value: Any) -> dict[str, Any] | None:
        name = self._named(path, value, self.transitions, "transition")
        return None if name is None else {"transition": name}

    def _notify(self, path: str, value: Any) -> dict[str, Any] | None:
        name = self._named(path, value, self.notifications, "notification")
        return None if name is None else {"notification": name}

    def _set_priority(self, path: str, value: Any) -> dict[str, Any] | None:
        name = self._named(path, value, PRIORITIES, "priority")
        return None if name is None else {"value": name}

    def _assign(self, path: str, value: Any) -> Action | None:
        doc = parse_part(AssignDoc, value, path, self.problems)
        if doc is None:
            return None
        given = {k: v for k, v in doc.model_dump().items() if v is not None}
        if len(given) != 1:
            self.add(path, "give exactly one of table, user or queue")
            return None
        if doc.table is None:
            return Action("assign", given)
        if self._named(f"{path}.table", doc.table, self.tables, "table") is None:
            return None
        table = self.tables.get(doc.table)
        _table_outputs(self, doc.table, f"{path}.table")
        if table is not None and not {"queue", "user", "priority"} & set(table.outputs):
            self.add(
                f"{path}.table",
                f"table {doc.table!r} has none of the outputs queue, "
                "user or priority that assign uses",
            )
        return Action("assign", given, decision=table)

    def _set_field(self, path: str, value: Any) -> dict[str, Any] | None:
        doc = parse_part(SetFieldDoc, value, path, self.problems)
        if doc is None or not self.check_field(f"{path}.field", doc.field):
            return None
        spec = self.fields.get(doc.field)
        if spec is not None:
            problem = "is required" if doc.value is None and spec.required else None
            if doc.value is not None:
                problem = spec.problem_with(doc.value)
            if problem is not None:
                self.add(f"{path}.value", f"{problem} (field {doc.field!r} is {spec.kind})")
                return None
        return {"field": doc.field, "value": doc.value}

    def _escalate(self, path: str, value: Any) -> dict[str, Any] | None:
        if isinstance(value, str) and value.strip():
            return {"reason": value}
        doc = parse_part(EscalateDoc, value, path, self.problems)
        return None if doc is None else doc.model_dump(exclude_none=True)

    def _open_child(self, path: str, value: Any) -> dict[str, Any] | None:
        doc = parse_part(OpenChildDoc, value, path, self.problems)
        if doc is None:
            return None
        if self.case_types is not None:
            known = [*self.case_types, self.name]
            if self._named(f"{path}.case_type", doc.case_type, known, "case type") is not None:
                given = isinstance(value, Mapping) and "fields" in value
                self._child_fields(f"{path}.fields" if given else path, doc.case_type, doc.fields)
        title = self.template(f"{path}.title", doc.title)
        if title is None:
            return None
        return {"case_type": doc.case_type, "title": title, "fields": dict(doc.fields)}

    def _child_fields(self, path: str, name: str, given: Mapping[str, Any]) -> None:
        """The fields a child case opens with, as ``Case.open`` checks them: each known to the
        child case type (unless it takes extra fields) with a value that fits, and every field
        it requires given. Refused there, the rule would skip the action without a word."""
        child = self._child_type(name)
        if child is None:
            return  # only the name is known: checked above
        for field_name, value in given.items():
            where, spec = f"{path}.{field_name}", child.fields.get(field_name)
            if spec is None:
                if field_name not in child.declared and not child.extra_fields:
                    near = closest(field_name, child.declared)
                    self.add(
                        where,
                        f"unknown field {field_name!r}: {child.what} has no such field, so the "
                        "child case would never open",
                        (f"did you mean {near!r}? " if near else "") + child.described(),
                    )
                continue
            if value is None:
                problem = "is required" if spec.required else None
            else:
                problem = spec.problem_with(value)
            if problem is not None:
                self.add(where, f"{problem} (field {field_name!r} of {child.what} is {spec.kind})")
        for field_name, spec in child.fields.items():
            if spec.required and field_name not in given:
                self.add(
                    path,
                    f"has no value for {field_name!r}, which {child.what} requires, so the "
                    "child case would never open",
                    f"add {field_name} ({spec.kind}) to fields",
                )

    def _child_type(self, name: str) -> ChildType | None:
        """What a child of case type ``name`` is checked against when the checker was given
        the current versions (not just names, as when a published version is compiled again:
        it stays valid): this document's fields for its own name (the version that will be
        current once it is published), else those of the current published version."""
        if not isinstance(self.case_types, Mapping):
            return None
        if name == self.name:
            if "fields" in self.broken:
                return None
            return ChildType("this case type", self.fields, self.field_names, self.extra_fields)
        current = self.case_types.get(name)
        if current is None:
            return None
        what = f"case type {name!r} v{current.version}"
        return ChildType(what, current.fields, list(current.fields), current.extra_fields)


_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


def build_table(scope: Scope, path: str, name: str, doc: TableDoc) -> DecisionTable | None:
    before = len(scope.problems)
    for index, output in enumerate(doc.outputs):
        if not NAME.fullmatch(output):
            scope.add(f"{path}.outputs[{index}]", f"{output!r} is not a valid output name")
    for r, row in enumerate(doc.rows):
        for key, value in row.then.items():
            if isinstance(value, dict | list):
                scope.add(f"{path}.rows[{r}].then.{key}", "must be text, a number, true or false")
    for index, source in enumerate(doc.inputs):
        members = members_in(source)
        scope.check_references(f"{path}.inputs[{index}]", {r for r, _ in members}, members)
    rows = [(row.when, row.then) for row in doc.rows]
    syntax = table_problems(doc.inputs, doc.outputs, rows)
    scope.problems += [f"{path}.{problem}" for problem in syntax]
    _table_types(scope, path, doc, {problem.split(": ", 1)[0] for problem in syntax})
    scope.table_rows[name] = [dict(row.then) for row in doc.rows]
    if len(scope.problems) > before:
        return None
    return DecisionTable(name, doc.inputs, doc.outputs, rows)


def _table_types(scope: Scope, path: str, doc: TableDoc, refused: set[str]) -> None:
    """Each input typed like a condition's member (``fields.claimed.amount``), and each cell
    checked against its input's type: a cell that can never match is refused at its place
    (``decision_tables.routing.rows[3].when[1]``), saying how to write it. Places whose
    syntax is already refused (``refused``) are left out."""
    if refused & {"inputs", "rows"}:
        return  # too big to check cell by cell
    facts = scope.facts()
    said = {str(issue) for issue in scope.issues}
    types = []
    for index, source in enumerate(doc.inputs):
        where = f"inputs[{index}]"
        kind, problems = (DYN, []) if where in refused else table_input_type(source, facts)
        types.append(kind)
        for problem in problems:
            issue = Issue(f"{path}.{where}", problem.message, problem.hint)
            if str(issue) not in said:  # an unknown field is reported once
                said.add(str(issue))
                scope.add(issue.path, issue.message, issue.hint)
    seen: dict[tuple[int, str], list[TypeProblem]] = {}  # a column repeats its cells
    for r, row in enumerate(doc.rows):
        for c, (cell, source, kind) in enumerate(zip(row.when, doc.inputs, types, strict=False)):
            if f"rows[{r}].when[{c}]" in refused:
                continue
            if (c, cell) not in seen:
                seen[c, cell] = check_cell(source, kind, cell, facts)
            for problem in seen[c, cell]:
                scope.add(f"{path}.rows[{r}].when[{c}]", problem.message, problem.hint)


_OUTPUT_KINDS = {"queue": "a queue", "user": "a user", "priority": "a priority"}


def _table_outputs(scope: Scope, name: str, path: str) -> None:
    """The values a table used by ``assign`` gives its ``queue``, ``user`` and ``priority``:
    text, and for ``priority`` one of the priorities (an empty value changes nothing)."""
    if name in scope.tables_used:
        return
    scope.tables_used.add(name)
    for r, then in enumerate(scope.table_rows.get(name, ())):
        for output, value in then.items():
            where = f"decision_tables.{name}.rows[{r}].then.{output}"
            if output not in _OUTPUT_KINDS or value is None or value == "":
                continue
            if not isinstance(value, str):
                scope.add(
                    where,
                    f"{shown(value)} is not text, and {output} names {_OUTPUT_KINDS[output]} "
                    f"({path} uses it)",
                    f'write it as text: "{value}"'
                    if output != "priority"
                    else f"write one of {listed(PRIORITIES)}",
                )
            elif output == "priority" and value not in PRIORITIES:
                near = closest(value, PRIORITIES)
                scope.add(
                    where,
                    f"unknown priority {value!r}; priorities are {listed(PRIORITIES)} "
                    f"({path} uses it)",
                    f"did you mean {near!r}?" if near else "",
                )


def build_notification(
    scope: Scope, path: str, name: str, doc: NotificationDoc
) -> Notification | None:
    if doc.channel not in CHANNELS:
        scope.add(f"{path}.channel", f"unknown channel {doc.channel!r}; use {listed(CHANNELS)}")
        return None
    before = len(scope.problems)
    scope.problems += unstorable_in(doc.model_dump(exclude_none=True), path)
    if len(scope.problems) > before:
        return None  # NUL or a lone surrogate: nothing else is worth checking (or showing)
    for key, channel in (("subject", "email"), ("url", "webhook"), ("topic", "kafka")):
        value = getattr(doc, key)
        if value is not None and doc.channel != channel:
            scope.add(f"{path}.{key}", f"is only for {channel} notifications")
        elif value is None and doc.channel == channel:
            scope.add(f"{path}.{key}", f"is required for {channel} notifications")
    if doc.channel == "email" and not doc.to:
        scope.add(f"{path}.to", "is required for email: list at least one recipient")
    _check_target(scope, path, doc)
    to = [_recipient(scope, f"{path}.to[{i}]", item, doc.channel) for i, item in enumerate(doc.to)]
    body = scope.template(f"{path}.body", doc.body)
    subject = scope.template(f"{path}.subject", doc.subject)
    if body is None or len(scope.problems) > before:
        return None
    recipients = tuple(r for r in to if r is not None)
    target = doc.url or doc.topic
    return Notification(name, doc.channel, body, recipients, subject, target, doc.secret)


def _check_target(scope: Scope, path: str, doc: NotificationDoc) -> None:
    """The URL, topic and secret a notification names: well-formed, and allowed by IT."""
    policy = scope.policy
    if doc.url is not None:
        problem = url_problem(doc.url)
        if problem is None and policy is not None:
            problem = policy.webhook_problem(doc.url)
        if problem is not None:
            scope.add(f"{path}.url", problem)
    if doc.topic is not None:
        problem = None
        if not _TOPIC.fullmatch(doc.topic):
            problem = f"{doc.topic!r} is not a Kafka topic name (letters, digits, . _ -)"
        elif policy is not None:
            problem = policy.topic_problem(doc.topic)
        if problem is not None:
            scope.add(f"{path}.topic", problem)
    if doc.secret is not None:
        problem = None
        if doc.channel != "webhook":
            problem = "is only for webhook notifications (sent as the Authorization header)"
        elif not SECRET_NAME.fullmatch(doc.secret):
            problem = f"{doc.secret!r} is not a secret name (lowercase letters, digits and _)"
        elif policy is not None:
            problem = policy.secret_problem(doc.secret)
        if problem is not None:
            scope.add(f"{path}.secret", problem)


def _recipient(scope: Scope, path: str, item: Mapping[str, Any], channel: str) -> Recipient | None:
    if len(item) != 1 or next(iter(item)) not in RECIPIENT_KINDS:
        scope.add(
            path,
            "a recipient is one of {role: manager}, {assignee: true}, "
            "{field: contact_email} or {address: claims@example.com}",
        )
        return None
    [(kind, value)] = item.items()
    where = f"{path}.{kind}"
    if kind == "assignee":
        if value is not True:
            scope.add(where, "must be true")
        return Recipient(kind)
    if not isinstance(value, str) or not value.strip():
        scope.add(where, f"must be text, not {shown(value)}")
        return None
    if kind == "role" and value not in ROLES:
        scope.add(where, f"unknown role {value!r}; roles are {listed(ROLES)}")
    elif kind == "field":
        scope.check_field(where, value)
    elif kind == "address" and not is_single_address(value):
        scope.add(where, f"{shown(value)} {NOT_AN_ADDRESS}")
    return Recipient(kind, value)


def build_views(scope: Scope, docs: Mapping[str, Any]) -> dict[str, View]:
    views = {}
    for role, item in docs.items():
        path = f"views.{role}"
        if role not in ROLES:
            scope.add(path, f"unknown role {role!r}; roles are {listed(ROLES)}")
            continue
        doc = parse_part(ViewDoc, {} if item is None else item, path, scope.problems)
        if doc is None:
            continue
        see = _field_set(scope, f"{path}.see", doc.see)
        edit = _field_set(scope, f"{path}.edit", doc.edit)  # may edit unseen fields (integrators)
        allowed = [*COLUMNS, *(f"fields.{name}" for name in scope.field_names)]
        for index, column in enumerate(doc.columns or ()):
            if column not in allowed and not (scope.extra_fields and column.startswith("fields.")):
                scope.add(
                    f"{path}.columns[{index}]",
                    f"unknown column {column!r}; columns are {listed(allowed)}",
                )
        columns = tuple(doc.columns) if doc.columns else View(role).columns
        views[role] = View(role, see, edit, columns)
    return views


def _field_set(scope: Scope, path: str, value: Any) -> frozenset[str] | None:
    if value == "all":
        return None
    if value == "none":
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        scope.add(path, f"must be all, none or a list of fields, not {shown(value)}")
        return frozenset()
    for index, name in enumerate(value):
        scope.check_field(f"{path}[{index}]", name)
    return frozenset(value)
