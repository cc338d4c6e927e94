"""A case type version, compiled: the states, transitions, fields, SLAs, rules, notifications,
labels and role views that a business administrator declared in a case-type document.

The document (YAML or JSON) is parsed and checked in ``services``; what reaches the domain is
this frozen, already-valid model. Expressions, decision tables and templates are compiled by
``services`` too and handed in behind the small protocols below, so the domain evaluates rules
without knowing the expression language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, Protocol

from domain.calendar import BusinessCalendar
from domain.errors import InvalidCommand, InvalidTransition, NotAllowed

CLOSED = "closed"
"""The state every case type has for administrative closure (the close command)."""

PRIORITIES = ("low", "normal", "high", "urgent")
FIELD_KINDS = ("text", "number", "money", "date", "boolean", "choice", "party", "document")
ACTION_KINDS = (
    "assign",
    "set_field",
    "set_priority",
    "transition",
    "notify",
    "escalate",
    "open_child",
)
CHANNELS = ("email", "webhook", "kafka")
RECIPIENT_KINDS = ("role", "assignee", "field", "address")

Labels = Mapping[str, str]
"""A text in several languages: ``{"en": "Review", "fr": "Examen"}``."""


class Condition(Protocol):
    """A compiled, sandboxed boolean expression (CEL) over a case's facts."""

    source: str

    def holds(self, facts: Mapping[str, Any]) -> bool:
        """True when the expression is true; false when it is false or cannot be evaluated."""
        ...


class Decision(Protocol):
    """A compiled decision table: facts in, the first matching row's outputs out."""

    def decide(self, facts: Mapping[str, Any]) -> Mapping[str, Any]: ...


class Template(Protocol):
    """A compiled, sandboxed text template."""

    source: str

    def render(self, facts: Mapping[str, Any]) -> str: ...


def label_in(labels: Labels, languages: tuple[str, ...], fallback: str) -> str:
    """The label in the first of ``languages`` that has one, else English, else ``fallback``."""
    for language in (*languages, "en"):
        if language in labels:
            return labels[language]
    return fallback


@dataclass(frozen=True)
class FieldSpec:
    """A typed field of the case type, with its validation. ``choice_labels`` gives the
    values of a choice field their texts per language (``{"water": {"en": "Water damage"}}``);
    a value without one is shown as it is. A ``personal`` field holds personal data of the
    case's data subject: it is stored sealed under the subject's key, and erasing the
    subject makes it unreadable (docs/audit.md, "Personal data and erasure"). A field
    ``editable_when_final`` may still be changed once the case is in a final state (an
    archive reference, say), which locks every other field (docs/case-types.md). ``help``
    is a hint shown under the field's input, per language like ``labels``."""

    name: str
    kind: str
    required: bool = False
    labels: Labels = field(default_factory=dict)
    choices: tuple[str, ...] = ()
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    max_length: int | None = None
    pattern: str | None = None
    currencies: tuple[str, ...] = ()
    choice_labels: Mapping[str, Labels] = field(default_factory=dict)
    personal: bool = False
    editable_when_final: bool = False
    help: Labels = field(default_factory=dict)

    def problem_with(self, value: Any) -> str | None:
        """Why ``value`` does not fit this field, or ``None`` when it does."""
        return _CHECKS[self.kind](self, value)

    def value_label(self, value: Any, languages: tuple[str, ...]) -> str | None:
        """The label of a choice field's value in the first of ``languages`` that has one
        (else English, else the value itself); ``None`` for other fields and non-text values."""
        if self.kind != "choice" or not isinstance(value, str):
            return None
        return label_in(self.choice_labels.get(value, {}), languages, value)


def _check_text(spec: FieldSpec, value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if spec.max_length is not None and len(value) > spec.max_length:
        return f"is {len(value)} characters long; the limit is {spec.max_length}"
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        return f"{value!r} does not match the pattern {spec.pattern!r}"
    return None


def _check_reference(spec: FieldSpec, value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"must be a {spec.kind} reference: a non-empty string id"
    return _check_text(spec, value)


def _in_range(spec: FieldSpec, number: Decimal) -> str | None:
    if spec.minimum is not None and number < spec.minimum:
        return f"must be at least {spec.minimum}"
    if spec.maximum is not None and number > spec.maximum:
        return f"must be at most {spec.maximum}"
    return None


def _check_number(spec: FieldSpec, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    return _in_range(spec, Decimal(str(value)))


def _check_money(spec: FieldSpec, value: Any) -> str | None:
    shape = 'must be an amount with its currency, e.g. {"amount": 1250.5, "currency": "EUR"}'
    if not isinstance(value, Mapping) or set(value) != {"amount", "currency"}:
        return shape
    amount, currency = value["amount"], value["currency"]
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return shape
    if not isinstance(currency, str) or not re.fullmatch("[A-Z]{3}", currency):
        return f"currency {currency!r} is not an ISO 4217 code such as EUR"
    if spec.currencies and currency not in spec.currencies:
        return f"currency {currency} is not accepted; use {', '.join(spec.currencies)}"
    number = Decimal(str(amount))
    if number.as_tuple().exponent < -2:  # type: ignore[operator]
        return "amount has more than 2 decimals"
    return _in_range(spec, number)


def _check_date(spec: FieldSpec, value: Any) -> str | None:
    try:
        date.fromisoformat(value)
    except (TypeError, ValueError):
        return f"{value!r} is not a date; write it as YYYY-MM-DD"
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return f"{value!r} is not a date; write it as YYYY-MM-DD"
    return None


def _check_boolean(spec: FieldSpec, value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _check_choice(spec: FieldSpec, value: Any) -> str | None:
    if value not in spec.choices:
        return f"{value!r} is not one of: {', '.join(spec.choices)}"
    return None


_CHECKS = {
    "text": _check_text,
    "number": _check_number,
    "money": _check_money,
    "date": _check_date,
    "boolean": _check_boolean,
    "choice": _check_choice,
    "party": _check_reference,
    "document": _check_reference,
}


@dataclass(frozen=True)
class Action:
    """One thing a rule (or an SLA warning or breach) does to the case.

    ``kind`` is one of :data:`ACTION_KINDS`; ``params`` holds its settings, by kind:

    ============  ================================================================
    assign        ``user`` and/or ``queue`` (or ``decision``: a table whose outputs
                  ``queue``, ``user``, ``priority`` are used)
    set_field     ``field``, ``value``
    set_priority  ``value``
    transition    ``transition``
    notify        ``notification``
    escalate      ``reason``, optional ``queue``
    open_child    ``case_type``, ``title`` (a :class:`Template`), ``fields``
    ============  ================================================================
    """

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    decision: Decision | None = None


@dataclass(frozen=True)
class Rule:
    """When one of the events ``on`` happens and the condition holds, run the actions."""

    name: str
    on: tuple[str, ...]
    actions: tuple[Action, ...]
    condition: Condition | None = None


@dataclass(frozen=True)
class Sla:
    """A service-level agreement: a goal and a deadline in working time on the calendar.

    A case-level SLA (``state`` is ``None``) runs from opening until the case reaches a final
    state, paused while the case is in one of ``paused_in``. A state SLA runs while the case is
    in ``state``. Warnings fire at ``warn_at`` percent of the deadline and when the goal passes.
    """

    name: str
    deadline: timedelta
    goal: timedelta | None = None
    state: str | None = None
    warn_at: tuple[int, ...] = ()
    paused_in: tuple[str, ...] = ()
    on_warning: tuple[Action, ...] = ()
    on_breach: tuple[Action, ...] = ()

    def milestones(self) -> dict[str, timedelta]:
        """Each milestone's working time from the start: ``warning:75``, ``goal``, ``deadline``."""
        marks = {f"warning:{p}": self.deadline * p / 100 for p in self.warn_at}
        if self.goal is not None:
            marks["goal"] = self.goal
        marks["deadline"] = self.deadline
        return marks


@dataclass(frozen=True)
class Recipient:
    """Who receives a notification: a ``role``, the ``assignee``, the value of a ``field``,
    or a fixed ``address``."""

    kind: str
    value: str = ""


@dataclass(frozen=True)
class Notification:
    """A message sent through a channel (e-mail, webhook, Kafka topic) when a rule says so.
    ``secret`` names the secret whose value a webhook sends as its Authorization header; the
    value itself is never part of the case type."""

    name: str
    channel: str
    body: Template
    to: tuple[Recipient, ...] = ()
    subject: Template | None = None
    target: str | None = None  # the webhook URL or the Kafka topic
    secret: str | None = None


@dataclass(frozen=True)
class State:
    """A state a case of this type can be in; a final state ends the case's work."""

    name: str
    labels: Labels = field(default_factory=dict)
    final: bool = False


@dataclass(frozen=True)
class Transition:
    """A named move from one of ``sources`` to ``target``, for ``roles``, when the guard holds
    and the ``requires`` fields have values. ``blocked_reason`` says, per language, why it
    cannot be taken while its guard does not hold (screens show it instead of the guard)."""

    name: str
    sources: tuple[str, ...]
    target: str
    roles: tuple[str, ...] = ()
    guard: Condition | None = None
    requires: tuple[str, ...] = ()
    labels: Labels = field(default_factory=dict)
    blocked_reason: Labels = field(default_factory=dict)

    def leaves(self, status: str) -> bool:
        return status in self.sources


@dataclass(frozen=True)
class View:
    """What one role sees of a case of this type: fields shown, fields editable, list columns.
    ``None`` for ``see`` or ``edit`` means every field."""

    role: str
    see: frozenset[str] | None = None
    edit: frozenset[str] | None = frozenset()
    columns: tuple[str, ...] = ("title", "status", "assignee", "updated_at")


@dataclass(frozen=True)
class Definition:
    """One published (or draft) version of a case type, ready to run cases."""

    name: str
    version: int
    states: Mapping[str, State]
    initial: str
    transitions: Mapping[str, Transition]
    fields: Mapping[str, FieldSpec] = field(default_factory=dict)
    extra_fields: bool = False
    labels: Labels = field(default_factory=dict)
    calendar: BusinessCalendar = field(default_factory=BusinessCalendar.always)
    slas: tuple[Sla, ...] = ()
    rules: tuple[Rule, ...] = ()
    notifications: Mapping[str, Notification] = field(default_factory=dict)
    views: Mapping[str, View] = field(default_factory=dict)

    @cached_property
    def personal_fields(self) -> frozenset[str]:
        """The fields that hold personal data of the case's data subject."""
        return frozenset(name for name, spec in self.fields.items() if spec.personal)

    @cached_property
    def editable_when_final(self) -> frozenset[str]:
        """The fields that may still be changed once a case is in a final state."""
        return frozenset(n for n, spec in self.fields.items() if spec.editable_when_final)

    def is_final(self, status: str) -> bool:
        """Whether ``status`` ends the work on a case: the administratively closed state,
        or a state the case type marks ``final``. A case in such a state is locked."""
        return status == CLOSED or (status in self.states and self.states[status].final)

    def transition(self, name: str, status: str, role: str | None) -> Transition:
        """The transition ``name`` out of ``status`` for ``role``, or a clear refusal."""
        move = self.transitions.get(name)
        if move is None:
            raise InvalidCommand(
                f"case type {self.name!r} v{self.version} has no transition {name!r}",
                hint=f"available from {status!r}: {self._names_from(status, role)}",
            )
        if not move.leaves(status):
            raise InvalidTransition(
                f"transition {name!r} cannot be taken from state {status!r}",
                hint=f"available from {status!r}: {self._names_from(status, role)}",
            )
        if role is not None and move.roles and role not in move.roles and role != "system":
            raise _forbidden(name, move.roles)
        return move

    def available(self, status: str, role: str | None) -> list[Transition]:
        """The transitions that ``role`` may take from ``status`` (guards not evaluated)."""
        return [
            t
            for t in self.transitions.values()
            if t.leaves(status) and (role is None or not t.roles or role in t.roles)
        ]

    def _names_from(self, status: str, role: str | None) -> str:
        names = [t.name for t in self.available(status, role)]
        return ", ".join(names) if names else "none"

    def check_fields(self, values: Mapping[str, Any], *, opening: bool) -> None:
        """Refuse unknown fields, wrongly typed values and (when opening) missing required ones."""
        problems = [
            f"fields.{name}: {problem}"
            for name, value in values.items()
            if (problem := self._problem(name, value)) is not None
        ]
        if opening:
            problems += [
                f"fields.{name}: is required"
                for name, spec in self.fields.items()
                if spec.required and values.get(name) is None
            ]
        if problems:
            raise InvalidCommand("; ".join(problems), hint=self._fields_hint())

    def _problem(self, name: str, value: Any) -> str | None:
        spec = self.fields.get(name)
        if spec is None:
            return None if self.extra_fields else "is not a field of this case type"
        if value is None:
            return "is required" if spec.required else None
        return spec.problem_with(value)

    def _fields_hint(self) -> str:
        if not self.fields:
            return "this case type declares no fields"
        described = ", ".join(
            f"{n} ({s.kind}{', required' if s.required else ''})" for n, s in self.fields.items()
        )
        return f"fields of {self.name!r} v{self.version}: {described}"

    def view_for(self, role: str) -> View:
        """The role's view. Without any views declared every role sees and edits every field
        (as its role permits); once views are declared, a role without one sees every field
        and edits none, except admin, who edits all."""
        if not self.views or role == "admin":
            return self.views.get(role, View(role, see=None, edit=None))
        return self.views.get(role, View(role))


def _forbidden(name: str, roles: tuple[str, ...]) -> NotAllowed:
    return NotAllowed(
        f"your role may not take the transition {name!r}",
        hint=f"allowed roles: {', '.join(roles)}",
    )
