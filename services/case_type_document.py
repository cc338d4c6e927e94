"""Case-type documents: read one (YAML or JSON), list every problem in it, compile it into the
domain's :class:`~domain.definition.Definition`.

    document = read_document(body, "application/yaml")
    problems = problems_in(document, known_case_types)      # ["states.review: ...", ...]
    # known_case_types: names, or CaseTypeRegistry.known() (names and current versions)
    definition = compile_definition(document, version=3)     # or InvalidDocument

The format is described for administrators in ``docs/case-types.md``. Tests:
``.venv/bin/pytest tests/unit/test_case_type_document.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import ConfigDict, TypeAdapter

from domain.calendar import (
    MAX_SPAN_DAYS,
    BusinessCalendar,
    calendar_from_document,
    parse_duration,
)
from domain.definition import (
    CLOSED,
    FIELD_KINDS,
    Definition,
    FieldSpec,
    Notification,
    Rule,
    Sla,
    State,
    Transition,
)
from services.case_type_checks import (
    EVENT_TYPES,
    FieldDoc,
    Issue,
    KnownCaseTypes,
    NotificationDoc,
    P,
    RuleDoc,
    Scope,
    SlaDoc,
    StateDoc,
    TableDoc,
    TransitionDoc,
    build_notification,
    build_table,
    build_views,
    issues_of,
    listed,
    parse_part,
    parse_value,
    shown,
)
from services.case_type_reading import InvalidDocument, read_document
from services.notification_targets import NotificationPolicy
from services.plugins import declared, installed

__all__ = [
    "InvalidDocument", "Issue", "compile_definition", "issues_in", "problems_in", "read_document",
]  # fmt: skip
B = TypeVar("B")


def problems_in(
    document: Mapping[str, Any],
    known_case_types: KnownCaseTypes | None = None,
    policy: NotificationPolicy | None = None,
) -> list[str]:
    """Every problem of ``document``, each as ``path: problem``, section by section (in the
    order of :data:`TOP_KEYS`); ``[]`` when it compiles. With ``known_case_types``,
    ``open_child`` must name one of them (or the document's own name), and when they map to
    their current versions its ``fields`` must fit the child's (the document's own for its
    own name); with ``policy``, notifications must reach only what IT allows."""
    return _compile(document, 0, known_case_types, policy)[0]


def issues_in(
    document: Mapping[str, Any],
    known_case_types: KnownCaseTypes | None = None,
    policy: NotificationPolicy | None = None,
) -> list[Issue]:
    """The problems of :func:`problems_in`, in the same order, each at its place
    (``path`` and JSON ``pointer``) with its message and, when it helps, how to write it."""
    scope = Scope(case_types=known_case_types, policy=policy)
    problems = _compile(document, 0, known_case_types, policy, scope)[0]
    return issues_of(problems, scope.issues)


def compile_definition(
    document: Mapping[str, Any], version: int, known_case_types: Collection[str] | None = None
) -> Definition:
    """The definition ``document`` describes, as version ``version``; raises
    :class:`InvalidDocument` listing every problem when there is any."""
    problems, definition = _compile(document, version, known_case_types)
    if definition is None:
        raise InvalidDocument(problems)
    return definition


TOP_KEYS = (
    "name", "labels", "calendar", "states", "transitions", "fields", "extra_fields", "slas",
    "decision_tables", "rules", "notifications", "views", "plugins",
)  # fmt: skip
_REQUIRED = ("name", "labels", "states")
_STRICT = ConfigDict(strict=True)
_MAPPING: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any], config=_STRICT)
_LIST: TypeAdapter[list[Any]] = TypeAdapter(list[Any], config=_STRICT)
_TOP: dict[str, tuple[TypeAdapter[Any], Any]] = {
    "name": (TypeAdapter(str, config=_STRICT), ""),
    "labels": (TypeAdapter(dict[str, str], config=_STRICT), {}),
    "calendar": (TypeAdapter(dict[str, Any] | None, config=_STRICT), None),
    "extra_fields": (TypeAdapter(bool, config=_STRICT), False),
    "slas": (_LIST, []),
    "rules": (_LIST, []),
    "plugins": (TypeAdapter(list[str], config=_STRICT), []),
} | {key: (_MAPPING, {}) for key in ("states", "transitions", "fields", "decision_tables",
                                     "notifications", "views")}  # fmt: skip
# The most parts a section may hold: each costs checking at every validation, and SLAs and
# their warnings cost a walk over the calendar at every case opened and every status change.
LIMITS = {
    "states": 500, "transitions": 1000, "fields": 500, "decision_tables": 100,
    "notifications": 200, "slas": 50, "rules": 500,
}  # fmt: skip
MAX_WARNINGS = 10
MAX_SLA_DAYS = 2 * MAX_SPAN_DAYS  # calendar days all SLAs of a case may walk, together
_OPTIONS = {
    "choices": ("choice",), "min": ("number", "money"), "max": ("number", "money"),
    "currencies": ("money",), "max_length": ("text", "party", "document"),
    "pattern": ("text", "party", "document"), "choice_labels": ("choice",),
}  # fmt: skip


def _compile(
    document: Mapping[str, Any],
    version: int,
    known: KnownCaseTypes | None,
    policy: NotificationPolicy | None = None,
    scope: Scope | None = None,
) -> tuple[list[str], Definition | None]:
    scope = scope or Scope(case_types=known, policy=policy)
    if not isinstance(document, Mapping):
        return [f"document: must be a mapping, not {shown(document)}"], None
    top = _top(scope, document)
    scope.name, scope.extra_fields = top["name"], top["extra_fields"]
    scope.plugins = declared(installed(), "plugins", top["plugins"], scope.problems)
    if "name" in document:
        scope.check_name("name", scope.name, "case type")
    if not {"labels"} & scope.broken:
        scope.check_labels("", top["labels"], required=True)
    calendar = _calendar(scope, top["calendar"])
    scope.day_length = calendar.day_length
    scope.field_names, scope.transitions = list(top["fields"]), list(top["transitions"])
    scope.notifications = list(top["notifications"])
    states = _states(scope, top["states"])
    scope.fields = _each(scope, "fields", top["fields"], FieldDoc, _field)
    scope.tables = {name: None for name in top["decision_tables"]}
    scope.tables |= _each(scope, "decision_tables", top["decision_tables"], TableDoc, build_table)
    notifications = _each(
        scope, "notifications", top["notifications"], NotificationDoc, build_notification
    )
    transitions = _each(scope, "transitions", top["transitions"], TransitionDoc, _transition)
    slas, rules = _slas(scope, calendar, top["slas"]), _rules(scope, top["rules"])
    views = build_views(scope, top["views"])
    _personal_quotes(scope, notifications, rules, slas)
    if scope.problems:
        return sorted(scope.problems, key=_rank), None
    initial = next(name for name, value in top["states"].items() if (value or {}).get("initial"))
    return [], Definition(
        name=top["name"], version=version, states=states, initial=initial,
        transitions=transitions, fields=scope.fields, extra_fields=scope.extra_fields,
        labels=top["labels"], calendar=calendar, slas=tuple(slas), rules=tuple(rules),
        notifications=notifications, views=views,
    )  # fmt: skip


def _personal_quotes(
    scope: Scope, notifications: Mapping[str, Notification], rules: list[Rule], slas: list[Sla]
) -> None:
    """Refuse templates and recipients that would copy a personal field's value into text
    that is stored as it is (a notification's subject, body or recipients, a child case's
    title): erasing the subject could not reach those copies."""
    personal = {name for name, spec in scope.fields.items() if spec.personal}
    if not personal:
        return
    why = "would copy the personal field {} into text stored unsealed; leave it out"
    for name, notification in notifications.items():
        path = f"notifications.{name}"
        for part, template in (("subject", notification.subject), ("body", notification.body)):
            quoted = template is not None and _quotes(template.source, personal)
            if quoted:
                scope.add(f"{path}.{part}", why.format(quoted))
        for index, to in enumerate(notification.to):
            if to.kind == "field" and to.value in personal:
                scope.add(f"{path}.to[{index}]", why.format(to.value))
    acting = [(f"rules[{i}].do", rule.actions) for i, rule in enumerate(rules)]
    acting += [(f"slas[{i}].on_warning", sla.on_warning) for i, sla in enumerate(slas)]
    acting += [(f"slas[{i}].on_breach", sla.on_breach) for i, sla in enumerate(slas)]
    for path, actions in acting:
        for index, action in enumerate(actions):
            title = action.params.get("title") if action.kind == "open_child" else None
            quoted = title is not None and _quotes(title.source, personal)
            if quoted:
                scope.add(f"{path}[{index}].open_child.title", why.format(quoted))


_FIELD_READ = re.compile(r"\bfields\.([A-Za-z_][A-Za-z0-9_]*)")
_ANY_FIELDS = re.compile(r"\bfields\b")


def _quotes(source: str, personal: set[str]) -> str | None:
    """The personal field a template may read (``fields`` read whole counts as any)."""
    named = sorted({str(read) for read in _FIELD_READ.findall(source) if read in personal})
    if named:
        return named[0]
    rest = _FIELD_READ.sub("", source)
    return sorted(personal)[0] if _ANY_FIELDS.search(rest) else None


def _rank(problem: str) -> int:
    section = re.match(r"\w*", problem)
    key = section[0] if section else ""
    return TOP_KEYS.index(key) if key in TOP_KEYS else -1


def _top(scope: Scope, document: Mapping[str, Any]) -> dict[str, Any]:
    for key in document:
        if key not in _TOP:
            scope.add(str(key), f"unknown key; allowed keys are {listed(TOP_KEYS)}")
    values = {}
    for key, (adapter, default) in _TOP.items():
        if key not in document and key in _REQUIRED:
            scope.add(key, "is required")
        value = document.get(key, default)
        checked = parse_value(adapter, value, key, scope.problems)
        if key in LIMITS and checked is not None and len(checked) > LIMITS[key]:
            scope.add(key, f"{len(checked)} entries is over the limit of {LIMITS[key]}")
            checked = None
        values[key] = default if checked is None else checked
        if checked is None or (key in _REQUIRED and key not in document):
            scope.broken.add(key)
    return values


def _each(
    scope: Scope,
    section: str,
    docs: Mapping[str, Any],
    model: type[P],
    build: Callable[[Scope, str, str, P], B | None],
) -> dict[str, B]:
    """Each named part of a section checked against ``model``, then built."""
    built = {}
    for name, value in docs.items():
        path = f"{section}.{name}"
        scope.check_name(path, name, section.rstrip("s").replace("_", " "))
        doc = parse_part(model, value, path, scope.problems)
        if doc is not None and (item := build(scope, path, name, doc)) is not None:
            built[name] = item
    return built


def _calendar(scope: Scope, doc: Mapping[str, Any] | None) -> BusinessCalendar:
    if doc is None:
        return BusinessCalendar.always()
    try:
        return calendar_from_document(doc)
    except ValueError as error:
        found = re.fullmatch(r"([\w.\[\]]+): (.*)", str(error), re.DOTALL)
        scope.add(*((f"calendar.{found[1]}", found[2]) if found else ("calendar", str(error))))
        return BusinessCalendar.always()


def _states(scope: Scope, docs: Mapping[str, Any]) -> dict[str, State]:
    states, initial = {}, []
    for name, value in docs.items():
        path = f"states.{name}"
        scope.check_name(path, name, "state")
        if name == CLOSED:
            scope.add(
                path,
                "'closed' is reserved for the built-in administrative closure; choose another name",
            )
            continue
        doc = parse_part(StateDoc, {} if value is None else value, path, scope.problems)
        scope.states[name] = doc is not None and doc.final
        if doc is None:
            continue
        scope.check_labels(path, doc.labels)
        if doc.initial and doc.final:
            scope.add(path, "a state cannot be both initial and final")
        initial += [name] * doc.initial
        states[name] = State(name, doc.labels, doc.final)
    if not docs:
        if "states" not in scope.broken:
            scope.add("states", "declare at least one state")
    elif len(initial) != 1:
        found = (
            f"{len(initial)} initial states ({listed(initial)})" if initial else "no initial state"
        )
        scope.add("states", f"{found}; mark exactly one state with initial: true")
    if scope.states and all(scope.states.values()):
        scope.add("states", "every state is final; declare at least one state where work happens")
    return states


def _field(scope: Scope, path: str, name: str, doc: FieldDoc) -> FieldSpec | None:
    if doc.kind not in FIELD_KINDS:
        scope.add(f"{path}.type", f"unknown type {doc.kind!r}; types are {listed(FIELD_KINDS)}")
        return None
    before = len(scope.problems)
    given = doc.model_dump(by_alias=True, exclude_none=True)
    for option, kinds in _OPTIONS.items():
        if option in given and doc.kind not in kinds:
            scope.add(f"{path}.{option}", f"applies only to {' and '.join(kinds)} fields")
    if doc.kind == "choice" and not doc.choices:
        scope.add(f"{path}.choices", "a choice field needs a list of choices")
    if doc.choices and len(set(doc.choices)) != len(doc.choices):
        scope.add(f"{path}.choices", "lists a choice twice")
    if doc.minimum is not None and doc.maximum is not None and doc.minimum > doc.maximum:
        scope.add(f"{path}.min", f"{_decimal(doc.minimum)} is above max {_decimal(doc.maximum)}")
    if doc.max_length is not None and doc.max_length < 1:
        scope.add(f"{path}.max_length", "must be at least 1")
    try:
        re.compile(doc.pattern or "")
    except re.error as error:
        scope.add(f"{path}.pattern", f"{doc.pattern!r} is not a regular expression: {error}")
    for index, code in enumerate(doc.currencies or ()):
        if not re.fullmatch("[A-Z]{3}", code):
            scope.add(
                f"{path}.currencies[{index}]", f"{code!r} is not an ISO 4217 code such as EUR"
            )
    scope.check_labels(path, doc.labels)
    scope.check_help(path, doc.help)
    _choice_labels(scope, path, doc)
    if len(scope.problems) > before:
        return None
    return FieldSpec(
        name=name, kind=doc.kind, required=doc.required, labels=doc.labels,
        choices=tuple(doc.choices or ()), minimum=_decimal(doc.minimum),
        maximum=_decimal(doc.maximum), max_length=doc.max_length, pattern=doc.pattern,
        currencies=tuple(doc.currencies or ()), choice_labels=doc.choice_labels or {},
        personal=doc.personal, editable_when_final=doc.editable_when_final, help=doc.help,
    )  # fmt: skip


def _choice_labels(scope: Scope, path: str, doc: FieldDoc) -> None:
    """Each labelled value is one of the field's choices, and its labels follow the rules of
    labels, with English required."""
    if doc.kind != "choice":
        return  # already refused: the option applies only to choice fields
    where = f"{path}.choice_labels"
    for value, labels in (doc.choice_labels or {}).items():
        if value not in (doc.choices or ()):
            known = listed(doc.choices or ())
            scope.add(f"{where}.{value}", f"unknown choice {value!r}; choices are {known}")
        else:
            scope.check_labels(where, labels, required=True, key=value)


def _decimal(value: float | None) -> Decimal | None:
    if value is None:
        return None
    return Decimal(int(value)) if value.is_integer() else Decimal(str(value))


def _transition(scope: Scope, path: str, name: str, doc: TransitionDoc) -> Transition:
    sources = _sources(scope, f"{path}.from", doc.sources)
    scope.check_state(f"{path}.to", doc.to)
    scope.check_roles(f"{path}.roles", doc.roles)
    for index, field_name in enumerate(doc.requires):
        scope.check_field(f"{path}.requires[{index}]", field_name)
    guard = scope.condition(f"{path}.if", doc.condition)
    scope.check_labels(path, doc.labels)
    scope.check_labels(path, doc.blocked_reason, key="blocked_reason")
    if doc.blocked_reason and doc.condition is None:
        scope.add(f"{path}.blocked_reason", "explains a condition, but the transition has no if:")
    return Transition(
        name,
        sources,
        doc.to,
        tuple(doc.roles),
        guard,
        tuple(doc.requires),
        doc.labels,
        doc.blocked_reason,
    )


def _sources(scope: Scope, path: str, value: Any) -> tuple[str, ...]:
    if value == "*":
        return tuple(name for name, final in scope.states.items() if not final)
    if isinstance(value, str):
        scope.check_state(path, value, leaving=True)
        return (value,)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        scope.add(
            path,
            f'must be a state, a list of states or "*" (every state that is not '
            f"final), not {shown(value)}",
        )
        return ()
    for index, state in enumerate(value):
        scope.check_state(f"{path}[{index}]", state, leaving=True)
    return tuple(value)


def _unique_names(scope: Scope, path: str, name: str, seen: set[str], what: str) -> None:
    scope.check_name(f"{path}.name", name, what)
    if name in seen:
        scope.add(f"{path}.name", f"another {what} is already called {name!r}")
    seen.add(name)


def _slas(scope: Scope, calendar: BusinessCalendar, items: list[Any]) -> list[Sla]:
    built, seen, walked = [], set[str](), 0.0
    for index, item in enumerate(items):
        path = f"slas[{index}]"
        doc = parse_part(SlaDoc, item, path, scope.problems)
        if doc is None:
            continue
        _unique_names(scope, path, doc.name, seen, "SLA")
        deadline = _duration(scope, calendar, f"{path}.deadline", doc.deadline)
        goal = _duration(scope, calendar, f"{path}.goal", doc.goal)
        if goal is not None and deadline is not None and goal > deadline:
            scope.add(f"{path}.goal", f"{doc.goal} is longer than the deadline {doc.deadline}")
        _warnings(scope, f"{path}.warn_at", doc.warn_at)
        if doc.state is not None and scope.check_state(f"{path}.state", doc.state):
            if scope.states.get(doc.state):
                scope.add(f"{path}.state", f"{doc.state!r} is final; an SLA never runs there")
            if doc.paused_in:
                scope.add(f"{path}.paused_in", "only a case-level SLA (without state) pauses")
        for i, state in enumerate(doc.paused_in):
            scope.check_state(f"{path}.paused_in[{i}]", state)
        if doc.on_warning and not doc.warn_at and doc.goal is None:
            scope.add(f"{path}.on_warning", "never runs: give warn_at percentages or a goal")
        on_warning = scope.actions(f"{path}.on_warning", doc.on_warning)
        on_breach = scope.actions(f"{path}.on_breach", doc.on_breach)
        if deadline is not None:
            walked += calendar.span_days(deadline)
            built.append(Sla(
                name=doc.name, deadline=deadline, goal=goal, state=doc.state,
                warn_at=tuple(doc.warn_at), paused_in=tuple(doc.paused_in),
                on_warning=on_warning, on_breach=on_breach,
            ))  # fmt: skip
    if walked > MAX_SLA_DAYS:
        scope.add(
            "slas",
            f"together the deadlines could take {walked:,.0f} days of the calendar to compute "
            f"for every case; the limit is {MAX_SLA_DAYS}: shorten them or use fewer SLAs",
        )
    return built


def _warnings(scope: Scope, path: str, warn_at: list[int]) -> None:
    for i, percent in enumerate(warn_at):
        if not 1 <= percent <= 99:
            scope.add(f"{path}[{i}]", f"{percent} is not a percentage from 1 to 99")
        elif percent in warn_at[:i]:
            scope.add(f"{path}[{i}]", f"{percent} is listed twice")
    if len(warn_at) > MAX_WARNINGS:
        scope.add(path, f"at most {MAX_WARNINGS} warnings, not {len(warn_at)}")


def _duration(
    scope: Scope, calendar: BusinessCalendar, path: str, text: str | None
) -> timedelta | None:
    """The duration ``text`` means on ``calendar``, if it ends within :data:`MAX_SPAN_DAYS`."""
    if text is None:
        return None
    try:
        duration = parse_duration(text, scope.day_length)
    except ValueError as error:
        scope.add(path, str(error))
        return None
    if (days := calendar.span_days(duration)) > MAX_SPAN_DAYS:
        scope.add(
            path,
            f"{text!r} is too long: on this calendar it could take {days:,.0f} days, and a "
            f"deadline must fall within {MAX_SPAN_DAYS} days (about ten years)",
        )
        return None
    return duration


def _rules(scope: Scope, items: list[Any]) -> list[Rule]:
    built, seen = [], set[str]()
    for index, item in enumerate(items):
        path = f"rules[{index}]"
        doc = parse_part(RuleDoc, item, path, scope.problems)
        if doc is None:
            continue
        _unique_names(scope, path, doc.name, seen, "rule")
        for i, event in enumerate(doc.on):
            if event not in EVENT_TYPES:
                scope.add(
                    f"{path}.on[{i}]", f"unknown event {event!r}; events are {listed(EVENT_TYPES)}"
                )
        condition = scope.condition(f"{path}.if", doc.condition)
        actions = scope.actions(f"{path}.do", doc.do)
        built.append(Rule(doc.name, tuple(doc.on), actions, condition))
    return built
