"""Case-type documents: what a valid one compiles into, what is refused and with which words,
and the engines behind conditions, decision tables and templates."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.definition import Definition
from domain.errors import InvalidCommand
from services.case_type_document import (
    InvalidDocument,
    compile_definition,
    problems_in,
    read_document,
)
from services.expressions import CelCondition, DecisionTable, SandboxedTemplate

SAMPLE = """
name: insurance_claim
labels: {en: Insurance claim, fr: Déclaration de sinistre}
calendar:
  timezone: Europe/Paris
  hours:
    mon: ["09:00-12:30", "13:30-17:30"]
    tue: ["09:00-12:30", "13:30-17:30"]
    wed: ["09:00-12:30", "13:30-17:30"]
    thu: ["09:00-12:30", "13:30-17:30"]
    fri: ["09:00-12:30", "13:30-17:30"]
  holidays: [2026-12-25]
  day_length: 8h
states:
  submitted: {initial: true, labels: {en: Submitted, fr: Déclaré}}
  review: {labels: {en: In review, fr: En examen}}
  waiting_customer: {labels: {en: Waiting for the customer}}
  settled: {final: true, labels: {en: Settled, fr: Réglé}}
  withdrawn: {final: true}
transitions:
  start_review: {from: submitted, to: review, roles: [handler, manager], labels: {en: Review}}
  ask_customer: {from: review, to: waiting_customer}
  customer_answered: {from: waiting_customer, to: review}
  settle:
    from: [review]
    to: settled
    requires: [settlement]
    if: 'fields.settlement.amount <= fields.claimed.amount'
    labels: {en: Settle, fr: Régler}
  withdraw: {from: "*", to: withdrawn}
fields:
  claimed: {type: money, required: true, min: 0, currencies: [EUR], labels: {en: Claimed}}
  settlement: {type: money, currencies: [EUR]}
  category: {type: choice, choices: [water, fire, theft], labels: {en: Category}}
  policy_holder: {type: party}
  incident_date: {type: date}
  description: {type: text, max_length: 2000, pattern: "[^<>]*"}
  urgent: {type: boolean}
  photos: {type: document}
  estimate: {type: number, min: 0, max: 100000.5}
  contact_email: {type: text}
extra_fields: false
slas:
  - name: resolution
    goal: 5d
    deadline: 10d
    warn_at: [50, 75]
    paused_in: [waiting_customer]
    on_warning: [{notify: sla_warning}]
    on_breach: [{escalate: "resolution SLA passed"}, {notify: sla_warning}]
  - name: first_review
    state: submitted
    deadline: 4h
    on_breach: [{assign: {queue: supervisors}}]
decision_tables:
  routing:
    inputs: [fields.category, fields.claimed.amount]
    outputs: [queue, priority]
    rows:
      - when: ['"water"', "> 10000"]
        then: {queue: senior-water, priority: high}
      - when: ['"water"', ""]
        then: {queue: water}
      - when: ["", ""]
        then: {queue: general}
rules:
  - name: route_new_claims
    on: [CaseOpened]
    if: 'fields.category == "water"'
    do:
      - assign: {table: routing}
      - set_priority: high
      - set_field: {field: urgent, value: true}
      - transition: start_review
      - notify: claim_received
      - escalate: {reason: big claim, queue: supervisors}
      - open_child: {case_type: expert_visit, title: "Visit for {{ case.title }}", fields: {a: 1}}
  - name: assign_theft
    on: [CaseOpened, CaseFieldsUpdated]
    do: [{assign: {user: alice}}]
notifications:
  claim_received:
    channel: email
    to: [{role: manager}, {assignee: true}, {field: contact_email}, {address: claims@example.com}]
    subject: "Claim {{ case.title }} received"
    body: "Your {{ fields.category }} claim is registered."
  sla_warning:
    channel: webhook
    url: https://hooks.example.com/claims
    body: '{"case": "{{ case.id }}"}'
  audit_feed:
    channel: kafka
    topic: claim-notices
    body: "{{ case.id }} {{ event.type }}"
views:
  handler: {see: [claimed, category], edit: [category], columns: [title, status, fields.category]}
  auditor: {see: all, edit: none}
"""

HOUR = timedelta(hours=1)
STATES = "submitted, review, waiting_customer, settled, withdrawn"
FIELDS = (
    "claimed, settlement, category, policy_holder, incident_date, description, urgent, "
    "photos, estimate, contact_email"
)


def sample() -> dict[str, Any]:
    return read_document(SAMPLE.encode(), "application/yaml")


def compiled() -> Definition:
    return compile_definition(sample(), 3, known_case_types=["expert_visit"])


# -- a valid document ---------------------------------------------------------------------------


def test_the_sample_has_no_problem_and_compiles_its_header_states_and_fields() -> None:
    assert problems_in(sample(), ["expert_visit"]) == []
    definition = compiled()
    assert (definition.name, definition.version, definition.initial) == (
        "insurance_claim",
        3,
        "submitted",
    )
    assert definition.labels == {"en": "Insurance claim", "fr": "Déclaration de sinistre"}
    assert list(definition.states) == STATES.split(", ")
    assert [s.name for s in definition.states.values() if s.final] == ["settled", "withdrawn"]
    assert definition.states["submitted"].labels == {"en": "Submitted", "fr": "Déclaré"}
    claimed = definition.fields["claimed"]
    assert (claimed.kind, claimed.required, claimed.minimum, claimed.currencies) == (
        "money",
        True,
        Decimal(0),
        ("EUR",),
    )
    assert definition.fields["estimate"].maximum == Decimal("100000.5")
    assert definition.fields["category"].choices == ("water", "fire", "theft")
    assert definition.fields["description"].pattern == "[^<>]*"
    assert definition.extra_fields is False
    assert definition.calendar.timezone == "Europe/Paris"
    assert definition.calendar.holidays == frozenset({date(2026, 12, 25)})


def test_transitions_expand_the_star_and_carry_guards_roles_and_requirements() -> None:
    transitions = compiled().transitions
    assert transitions["withdraw"].sources == ("submitted", "review", "waiting_customer")
    assert transitions["start_review"].roles == ("handler", "manager")
    settle = transitions["settle"]
    assert (settle.sources, settle.target, settle.requires) == (
        ("review",),
        "settled",
        ("settlement",),
    )
    assert settle.guard is not None
    facts = {"fields": {"settlement": {"amount": 10}, "claimed": {"amount": 20}}}
    assert settle.guard.holds(facts)
    assert not settle.guard.holds(
        {"fields": {"settlement": {"amount": 30}, "claimed": {"amount": 20}}}
    )


def test_slas_count_business_days_of_the_calendar() -> None:
    resolution, first_review = compiled().slas
    assert (resolution.goal, resolution.deadline) == (5 * 8 * HOUR, 10 * 8 * HOUR)
    assert (resolution.state, resolution.warn_at, resolution.paused_in) == (
        None,
        (50, 75),
        ("waiting_customer",),
    )
    assert [(a.kind, dict(a.params)) for a in resolution.on_breach] == [
        ("escalate", {"reason": "resolution SLA passed"}),
        ("notify", {"notification": "sla_warning"}),
    ]
    assert (first_review.state, first_review.deadline, first_review.goal) == (
        "submitted",
        4 * HOUR,
        None,
    )
    assert [(a.kind, dict(a.params)) for a in first_review.on_breach] == [
        ("assign", {"queue": "supervisors"})
    ]


def test_rules_compile_their_condition_and_actions() -> None:
    first, second = compiled().rules
    assert (first.name, first.on, second.on) == (
        "route_new_claims",
        ("CaseOpened",),
        ("CaseOpened", "CaseFieldsUpdated"),
    )
    assert first.condition is not None and first.condition.source == 'fields.category == "water"'
    plain = [(a.kind, dict(a.params)) for a in first.actions[1:6]]
    assert plain == [
        ("set_priority", {"value": "high"}),
        ("set_field", {"field": "urgent", "value": True}),
        ("transition", {"transition": "start_review"}),
        ("notify", {"notification": "claim_received"}),
        ("escalate", {"reason": "big claim", "queue": "supervisors"}),
    ]
    assign = first.actions[0]
    assert assign.kind == "assign" and assign.decision is not None
    facts = {"fields": {"category": "water", "claimed": {"amount": 20000, "currency": "EUR"}}}
    assert assign.decision.decide(facts) == {"queue": "senior-water", "priority": "high"}
    child = first.actions[6]
    assert (child.kind, child.params["case_type"], child.params["fields"]) == (
        "open_child",
        "expert_visit",
        {"a": 1},
    )
    assert child.params["title"].render({"case": {"title": "Flood"}}) == "Visit for Flood"
    assert [(a.kind, dict(a.params)) for a in second.actions] == [("assign", {"user": "alice"})]


def test_notifications_and_views() -> None:
    definition = compiled()
    email = definition.notifications["claim_received"]
    assert [(r.kind, r.value) for r in email.to] == [
        ("role", "manager"),
        ("assignee", ""),
        ("field", "contact_email"),
        ("address", "claims@example.com"),
    ]
    assert email.subject is not None
    assert email.subject.render({"case": {"title": "Flood"}}) == "Claim Flood received"
    assert definition.notifications["sla_warning"].target == "https://hooks.example.com/claims"
    assert definition.notifications["audit_feed"].target == "claim-notices"
    handler, auditor = definition.views["handler"], definition.views["auditor"]
    assert (handler.see, handler.edit) == (
        frozenset({"claimed", "category"}),
        frozenset({"category"}),
    )
    assert handler.columns == ("title", "status", "fields.category")
    assert (auditor.see, auditor.edit, auditor.columns) == (
        None,
        frozenset(),
        ("title", "status", "assignee", "updated_at"),
    )


def test_the_compiled_definition_runs_the_domain_checks() -> None:
    definition = compiled()
    with pytest.raises(InvalidCommand, match=r"fields\.category: 'mud' is not one of"):
        definition.check_fields({"category": "mud"}, opening=False)
    assert definition.transition("settle", "review", "handler").target == "settled"


def test_the_same_document_in_json_compiles_to_an_equal_definition() -> None:
    body = json.dumps(sample()).encode()
    document = read_document(body, "application/json; charset=utf-8")
    assert document == sample()
    assert compile_definition(document, 3, known_case_types=["expert_visit"]) == compiled()
    changed = copy.deepcopy(document)
    changed["rules"][0]["if"] = 'fields.category == "fire"'
    assert compile_definition(changed, 3, known_case_types=["expert_visit"]) != compiled()


def test_a_minimal_document_runs_around_the_clock_and_allows_extra_fields() -> None:
    document = {
        "name": "note",
        "labels": {"en": "Note"},
        "states": {"open": {"initial": True}, "done": {"final": True}},
        "transitions": {"finish": {"from": "open", "to": "done"}},
        "extra_fields": True,
        "rules": [{"name": "r", "on": ["CaseOpened"], "if": "fields.anything > 3", "do": [
            {"set_field": {"field": "free", "value": {"any": ["json"]}}}]}],
    }  # fmt: skip
    definition = compile_definition(document, 1)
    assert definition.calendar.day_length == timedelta(hours=24)
    assert definition.extra_fields and definition.views == {} and definition.slas == ()


# -- refused documents --------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], object]


def _set(path: str, value: Any) -> Mutation:
    """A mutation setting ``value`` at ``a.b[0].c`` (``None`` value: delete the key)."""

    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.replace("[", ".").replace("]", "").split(".")
        node: Any = document
        for step in parents:
            node = node[int(step)] if step.isdigit() else node[step]
        if value is None:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _append(path: str, item: Any) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        node: Any = document
        for step in path.replace("[", ".").replace("]", "").split("."):
            node = node[int(step)] if step.isdigit() else node[step]
        node.append(item)

    return mutate


REFUSED: list[tuple[str, Mutation, list[str]]] = [
    ("bad duration", _set("slas[0].deadline", "3 dayz"), [
        "slas[0].deadline: '3 dayz' is not a duration "
        "(write a number and a unit: 30m, 4h, 3d, 2w)"]),
    ("unknown state in transition", _set("transitions.settle.to", "setled"), [
        f"transitions.settle.to: unknown state 'setled'; states are {STATES}"]),
    ("two initial states", _set("states.review.initial", True), [
        "states: 2 initial states (submitted, review); mark exactly one state with initial: true"]),
    ("no initial state", _set("states.submitted.initial", None), [
        "states: no initial state; mark exactly one state with initial: true"]),
    ("declared closed", _set("states.closed", {}), [
        "states.closed: 'closed' is reserved for the built-in administrative closure; "
        "choose another name"]),
    ("transition from a final state", _set("transitions.settle.from", ["review", "settled"]), [
        "transitions.settle.from[1]: 'settled' is a final state; nothing can leave a final state"]),
    ("CEL syntax", _set("rules[0].if", "fields.category =="), [
        "rules[0].if: 'fields.category ==' is not a valid condition: line 1, column 19: "
        "mismatched input '<EOF>'"]),
    ("CEL undeclared field", _set("transitions.settle.if", "fields.setlement.amount > 0"), [
        f"transitions.settle.if: unknown field 'setlement'; fields are {FIELDS}; "
        "did you mean 'settlement'?"]),
    ("CEL unknown name and case fact", _set("rules[0].if", "feilds.x == 1 || case.prio == 1"), [
        "rules[0].if: unknown name 'feilds'; use case, fields, event, actor; did you mean "
        "'fields'?",
        "rules[0].if: case has no 'prio'; it has id, case_type, case_type_version, title, status, "
        "priority, assignee, queue, version, party_id, escalations; did you mean 'priority'?"]),
    ("unknown role", _set("transitions.start_review.roles", ["handler", "boss"]), [
        "transitions.start_review.roles[1]: unknown role 'boss'; "
        "roles are admin, manager, handler, integrator, auditor"]),
    ("unknown action", _append("rules[0].do", {"assgn": {"user": "bob"}}), [
        "rules[0].do[7].assgn: unknown action; actions are assign, set_field, set_priority, "
        "transition, notify, escalate, open_child"]),
    ("action not one key", _set("rules[1].do", [{"notify": "claim_received", "transition": "x"}]), [
        "rules[1].do[0]: an action is a mapping with one key, such as {notify: claim_received}; "
        "the keys are assign, set_field, set_priority, transition, notify, escalate, open_child"]),
    ("unknown transition in action", _set("rules[0].do[3]", {"transition": "setle"}), [
        "rules[0].do[3].transition: unknown transition 'setle'; transitions are start_review, "
        "ask_customer, customer_answered, settle, withdraw"]),
    ("unknown notification in SLA", _set("slas[0].on_warning[0].notify", "warn"), [
        "slas[0].on_warning[0].notify: unknown notification 'warn'; notifications are "
        "claim_received, sla_warning, audit_feed"]),
    ("unknown table", _set("rules[0].do[0].assign.table", "routes"), [
        "rules[0].do[0].assign.table: unknown table 'routes'; tables are routing"]),
    ("assign two targets", _set("rules[1].do[0].assign.queue", "claims"), [
        "rules[1].do[0].assign: give exactly one of table, user or queue"]),
    ("set_field of the wrong type", _set("rules[0].do[2].set_field.value", "yes"), [
        "rules[0].do[2].set_field.value: must be true or false (field 'urgent' is boolean)"]),
    ("set_field of an unknown field", _set("rules[0].do[2].set_field.field", "urgency"), [
        f"rules[0].do[2].set_field.field: unknown field 'urgency'; fields are {FIELDS}; "
        "did you mean 'urgent'?"]),
    ("unknown priority", _set("rules[0].do[1].set_priority", "hgh"), [
        "rules[0].do[1].set_priority: unknown priority 'hgh'; "
        "priorities are low, normal, high, urgent"]),
    ("unknown event", _set("rules[1].on", ["CaseOpen"]), [
        "rules[1].on[0]: unknown event 'CaseOpen'; events are CaseOpened, CaseAssigned, "
        "CaseStatusChanged, CaseFieldsUpdated, CaseNoteAdded, CaseClosed, CaseReopened, "
        "CasePriorityChanged, CaseRoutedToQueue, CaseEscalated, CaseSlaWarned, CaseSlaBreached, "
        "CaseMigrated"]),
    ("unknown child case type", _set("rules[0].do[6].open_child.case_type", "expert"), [
        "rules[0].do[6].open_child.case_type: unknown case type 'expert'; "
        "case types are expert_visit, insurance_claim"]),
    ("bad zen cell", _set("decision_tables.routing.rows[0].when[1]", ">> 3"), [
        "decision_tables.routing.rows[0].when[1]: '>> 3' is not a valid cell: "
        "Unexpected token: Operator at (1, 2); Expected UnaryOperator."]),
    ("unquoted zen text", _set("decision_tables.routing.rows[1].when[0]", "water"), [
        "decision_tables.routing.rows[1].when[0]: 'water' is not a value; "
        "write text in double quotes: '\"water\"'"]),
    ("row of the wrong width", _set("decision_tables.routing.rows[2].when", [""]), [
        "decision_tables.routing.rows[2].when: has 1 cells; the table has 2 inputs"]),
    ("row output not declared", _set("decision_tables.routing.rows[2].then", {"user": "x"}), [
        "decision_tables.routing.rows[2].then.user: not an output of the table; "
        "outputs are queue, priority"]),
    ("bad template", _set("notifications.claim_received.body", "Dear {{ case.title }"), [
        "notifications.claim_received.body: template error at line 1: unexpected '}'"]),
    ("template reading an unknown field", _set("notifications.audit_feed.body", "{{ fields.x }}"), [
        f"notifications.audit_feed.body: unknown field 'x'; fields are {FIELDS}"]),
    ("webhook without url", _set("notifications.sla_warning.url", None), [
        "notifications.sla_warning.url: is required for webhook notifications"]),
    ("webhook url not http", _set("notifications.sla_warning.url", "ftp://example.com/x"), [
        "notifications.sla_warning.url: 'ftp://example.com/x' is not an http(s) URL "
        "such as https://example.com/hook"]),
    ("subject on kafka", _set("notifications.audit_feed.subject", "x"), [
        "notifications.audit_feed.subject: is only for email notifications"]),
    ("unknown recipient role", _set("notifications.claim_received.to[0].role", "boss"), [
        "notifications.claim_received.to[0].role: unknown role 'boss'; "
        "roles are admin, manager, handler, integrator, auditor"]),
    ("bad currency", _set("fields.claimed.currencies", ["EUR", "euro"]), [
        "fields.claimed.currencies[1]: 'euro' is not an ISO 4217 code such as EUR"]),
    ("unknown field type", _set("fields.claimed.type", "mony"), [
        "fields.claimed.type: unknown type 'mony'; types are text, number, money, date, "
        "boolean, choice, party, document"]),
    ("option of another type", _set("fields.description.min", 3), [
        "fields.description.min: applies only to number and money fields"]),
    ("bad pattern", _set("fields.description.pattern", "[a-"), [
        "fields.description.pattern: '[a-' is not a regular expression: "
        "unterminated character set at position 0"]),
    ("min above max", _set("fields.estimate.min", 200000), [
        "fields.estimate.min: 200000 is above max 100000.5"]),
    ("warn_at 0 and 100", _set("slas[0].warn_at", [0, 100]), [
        "slas[0].warn_at[0]: 0 is not a percentage from 1 to 99",
        "slas[0].warn_at[1]: 100 is not a percentage from 1 to 99"]),
    ("goal after deadline", _set("slas[0].goal", "11d"), [
        "slas[0].goal: 11d is longer than the deadline 10d"]),
    ("paused_in unknown state", _set("slas[0].paused_in", ["waiting"]), [
        f"slas[0].paused_in[0]: unknown state 'waiting'; states are {STATES}"]),
    ("paused_in on a state SLA", _set("slas[1].paused_in", ["review"]), [
        "slas[1].paused_in: only a case-level SLA (without state) pauses"]),
    ("SLA without deadline", _set("slas[1].deadline", None), ["slas[1].deadline: is required"]),
    ("two SLAs of one name", _set("slas[1].name", "resolution"), [
        "slas[1].name: another SLA is already called 'resolution'"]),
    ("view of an unknown field", _set("views.handler.see", ["claimed", "category", "colour"]), [
        f"views.handler.see[2]: unknown field 'colour'; fields are {FIELDS}"]),
    ("unknown column", _set("views.handler.columns", ["title", "owner"]), [
        "views.handler.columns[1]: unknown column 'owner'; columns are title, status, assignee, "
        "queue, priority, opened_at, updated_at, "
        + ", ".join(f"fields.{name}" for name in FIELDS.split(", "))]),
    ("view of an unknown role", _set("views.boss", {"see": "all"}), [
        "views.boss: unknown role 'boss'; roles are admin, manager, handler, integrator, auditor"]),
    ("missing en label", _set("states.review.labels", {"fr": "Examen"}), [
        "states.review.labels: has no English text; add en (other languages are optional)"]),
    ("case type without labels", _set("labels", None), ["labels: is required"]),
    ("bad name", _set("name", "Insurance Claim"), [
        "name: 'Insurance Claim' is not a valid case type name; use lowercase letters, digits "
        "and _, starting with a letter (at most 63 characters)"]),
    ("unknown key", _set("states.review.initail", True), [
        "states.review.initail: unknown key; allowed keys are initial, final, labels"]),
    ("wrong type", _set("transitions.settle.roles", "handler"), [
        "transitions.settle.roles: must be a list, not 'handler'"]),
    ("calendar period backwards", _set("calendar.hours.mon[1]", "13:30-12:00"), [
        "calendar.hours.mon[1]: '13:30-12:00' ends before it starts"]),
    ("a broken section is reported once", _set("states", ["submitted"]), [
        "states: must be a mapping (key: value), not a list"]),
    ("a broken section that actions name", _set("decision_tables", ["routing"]), [
        "decision_tables: must be a mapping (key: value), not a list"]),
    ("a missing section that actions name", _set("decision_tables", None), [
        "rules[0].do[0].assign.table: unknown table 'routing'; tables are none"]),
    ("unknown top-level key", _set("colour", "blue"), [
        "colour: unknown key; allowed keys are name, labels, calendar, states, transitions, "
        "fields, extra_fields, slas, decision_tables, rules, notifications, views, plugins"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "expected"), [pytest.param(m, e, id=name) for name, m, e in REFUSED]
)
def test_each_problem_is_named_with_its_path(mutate: Mutation, expected: list[str]) -> None:
    document = sample()
    mutate(document)
    assert problems_in(document, ["expert_visit"]) == expected
    with pytest.raises(InvalidDocument) as refused:
        compile_definition(document, 1, ["expert_visit"])
    assert refused.value.problems == expected


def test_the_refusal_says_how_many_problems_and_lists_them() -> None:
    document = sample()
    document["slas"][0]["deadline"] = "3 dayz"
    document["transitions"]["settle"]["to"] = "setled"
    with pytest.raises(InvalidDocument) as refused:
        compile_definition(document, 1)
    error = refused.value
    assert error.code == "invalid_case_type" and isinstance(error, InvalidCommand)
    assert error.message.startswith(
        "the case-type document has 2 problems: transitions.settle.to: unknown state 'setled'"
    )
    assert "; slas[0].deadline: '3 dayz' is not a duration" in error.message
    assert "docs/case-types.md" in error.hint


def test_an_empty_mapping_names_each_required_key() -> None:
    assert problems_in({}) == ["name: is required", "labels: is required", "states: is required"]


def test_a_document_read_as_yaml_1_1_is_told_why_its_rules_have_no_on() -> None:
    document = sample()
    document["rules"][1][True] = document["rules"][1].pop("on")  # what yaml.safe_load does
    assert problems_in(document) == [
        "rules[1].on: is required",
        "rules[1]: the key True must be text (yaml.safe_load reads on:, yes: and no: as "
        "booleans; use read_document)",
    ]


def test_without_known_case_types_open_child_is_not_checked() -> None:
    document = sample()
    document["rules"][0]["do"][6]["open_child"]["case_type"] = "anything"
    assert problems_in(document) == []
    document["rules"][0]["do"][6]["open_child"]["case_type"] = "insurance_claim"
    assert problems_in(document, []) == []


# -- reading ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "problem"),
    [
        pytest.param(b"name: x\nstates:\n  a: {initial: true\n  b: {}\n", "application/yaml",
                     "line 4, column 4: while parsing a flow mapping, expected ',' or '}', "
                     "but got ':'", id="YAML syntax error"),
        pytest.param(b"a: &x [1, 2]\nb: *x\n", "text/yaml", "line 1, column 4: anchors and "
                     "aliases (&name, *name) are not allowed; repeat the text", id="YAML anchor"),
        pytest.param(b"a: 1\nb: *x\n", "text/yaml", "line 2, column 4: anchors and "
                     "aliases (&name, *name) are not allowed; repeat the text", id="YAML alias"),
        pytest.param(b"a: 1\nb: 2\na: 3\n", "application/x-yaml",
                     "line 3, column 1: the key 'a' appears twice", id="YAML duplicate key"),
        pytest.param(b"a: !!binary aGVsbG8=\n", "application/yaml", "line 1, column 4: could "
                     "not determine a constructor for the tag 'tag:yaml.org,2002:binary'",
                     id="YAML explicit tag"),
        pytest.param(b"[1, 2]", "application/json",
                     "document: is a list; it must be a mapping of name, labels, calendar, "
                     "states, …", id="JSON top-level list"),
        pytest.param(b'{"a": 1,\n "b": }', "application/json",
                     "line 2, column 7: Expecting value", id="JSON syntax error"),
        pytest.param(b'{"a": 1, "a": 2}', "application/json",
                     "document: the key 'a' appears twice", id="JSON duplicate key"),
        pytest.param(b"", "application/yaml", "document: is empty; it must be a mapping of "
                     "name, labels, calendar, states, …", id="empty"),
        pytest.param(b"a: 1", "text/plain", "content type: 'text/plain' is not supported; send "
                     "application/yaml, application/x-yaml, text/yaml or application/json",
                     id="unsupported content type"),
        pytest.param(b"a: \xff", "application/yaml", "document: not UTF-8 text (byte 3)",
                     id="not UTF-8"),
        pytest.param(b"[" * 50_000, "application/yaml", "document: nested too deeply",
                     id="deep nesting"),
        pytest.param(b"# " + b"x" * 256 * 1024, "application/yaml", "document: 262146 bytes is "
                     "over the limit of 262144 bytes (256 KiB)", id="huge document"),
    ],
)  # fmt: skip
def test_unreadable_documents_are_refused(body: bytes, content_type: str, problem: str) -> None:
    with pytest.raises(InvalidDocument) as refused:
        read_document(body, content_type)
    assert refused.value.problems == [problem]


def test_a_billion_laughs_document_is_refused_before_it_expands() -> None:
    laughs = b'a: &a ["lol","lol"]\n' + b"".join(
        b"%c: &%c [*%c,*%c,*%c,*%c]\n" % (c, c, c - 1, c - 1, c - 1, c - 1) for c in range(98, 110)
    )
    with pytest.raises(InvalidDocument, match="anchors and aliases"):
        read_document(laughs, "application/yaml")


def test_yaml_reads_plain_data_only() -> None:
    body = b"on: [CaseOpened]\nyes: no\nday: 2026-12-25\nat: 13:30\nn: 08\nx: 1.5\nnothing: ~\n"
    assert read_document(body, "application/yaml") == {
        "on": ["CaseOpened"],
        "yes": "no",
        "day": "2026-12-25",
        "at": "13:30",
        "n": 8,
        "x": 1.5,
        "nothing": None,
    }


# -- the engines --------------------------------------------------------------------------------


def test_a_condition_holds_only_when_it_evaluates_to_true() -> None:
    condition = CelCondition("fields.amount > 100 && case.priority == 'high'")
    assert condition.names == ("case", "fields")
    assert condition.members == {("fields", "amount"), ("case", "priority")}
    high = {"case": {"priority": "high"}}
    assert condition.holds({**high, "fields": {"amount": 150}})
    assert not condition.holds({**high, "fields": {"amount": 50}})
    assert not condition.holds({**high, "fields": {}})  # missing key
    assert not condition.holds({**high, "fields": {"amount": "big"}})  # type error
    assert not condition.holds({})  # nothing at all
    assert not CelCondition("fields.amount").holds({"fields": {"amount": 1}})  # not a boolean
    assert not CelCondition("1 / fields.n > 0").holds({"fields": {"n": 0}})  # division by zero


def test_a_condition_reads_dates_decimals_and_ids_as_plain_values() -> None:
    condition = CelCondition('fields.due < "2026-06-01" && fields.n == 2.5')
    assert condition.holds({"fields": {"due": date(2026, 5, 1), "n": Decimal("2.5")}})


def test_a_condition_with_a_syntax_error_is_refused_with_its_position() -> None:
    with pytest.raises(ValueError, match=r"line 1, column 4: extraneous input '\*'"):
        CelCondition("1 +* 2")


def test_member_accesses_inside_string_literals_are_not_references() -> None:
    condition = CelCondition("fields['a'] == 'fields.b' && [1].all(x, x > 0)")
    assert condition.members == {("fields", "a")}
    assert condition.names == ("fields",)


def test_a_decision_table_gives_the_first_matching_row() -> None:
    table = DecisionTable(
        "routing",
        ["fields.category", "fields.amount"],
        ["queue", "priority"],
        [
            (['"water"', "> 10000"], {"queue": 'senior "water"', "priority": "high"}),
            (['"water"', "[0..10000]"], {"queue": "water"}),
            (['"fire", "theft"', ""], {"queue": "général"}),
        ],
    )
    assert table.decide({"fields": {"category": "water", "amount": 20000}}) == {
        "queue": 'senior "water"',
        "priority": "high",
    }
    assert table.decide({"fields": {"category": "water", "amount": Decimal(5)}}) == {
        "queue": "water"
    }
    assert table.decide({"fields": {"category": "theft"}}) == {"queue": "général"}
    assert table.decide({"fields": {"category": "mud"}}) == {}
    assert table.decide({"fields": {"category": "water", "amount": "big"}}) == {}
    for strange in (float("nan"), 10**30, Decimal("Infinity"), b"bytes"):  # never raises
        assert table.decide({"fields": {"category": "water", "amount": strange}}) == {}
        assert CelCondition("fields.amount > 1").holds({"fields": {"amount": strange}}) in (
            True,
            False,
        )


def test_a_decision_table_refuses_bad_cells_with_their_position() -> None:
    with pytest.raises(ValueError, match=r"rows\[0\]\.when\[1\]: '> ' is not a valid cell"):
        DecisionTable("t", ["fields.a", "fields.b"], ["queue"], [(['"x"', "> "], {"queue": "q"})])


def test_a_template_renders_facts_and_missing_values_as_empty_text() -> None:
    template = SandboxedTemplate("Claim {{ case.title }} for {{ fields.contact.name }}!")
    assert template.render({"case": {"title": "Flood"}, "fields": {}}) == "Claim Flood for !"
    assert template.names == ("case", "fields")
    assert template.members == {("case", "title"), ("fields", "contact")}
    assert SandboxedTemplate("é <b>{{ x }}</b>").render({"x": "<i>"}) == "é <b><i></b>"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ fields.__class__.__init__.__globals__ }}",
        "{{ case.title.format.__globals__ }}",
    ],
)
def test_the_sandbox_refuses_access_to_python_internals(source: str) -> None:
    if "()" in source:  # calling a method outside the allowlist is refused when checked
        with pytest.raises(ValueError, match="templates may not call"):
            SandboxedTemplate(source)
        return
    rendered = SandboxedTemplate(source).render({"case": {"title": "t"}, "fields": {}})
    assert rendered == "" or rendered.endswith("is unsafe.]")  # empty, or the placeholder
    assert "<class" not in rendered and "<function" not in rendered and "<module" not in rendered


def test_a_template_that_fails_renders_a_placeholder_instead_of_raising() -> None:
    assert (
        SandboxedTemplate("{{ fields.n + 1 }}")
        .render({"fields": {}})
        .startswith("[template error: ")
    )
    with pytest.raises(ValueError, match="template error at line 2: unexpected '}'"):
        SandboxedTemplate("a\n{{ x }")


# -- no input makes the checker crash -----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from([
    "name", "labels", "states", "transitions", "fields", "slas", "rules", "views", "calendar",
    "decision_tables", "notifications", "extra_fields", "from", "to", "type", "do", "on", "if",
])  # fmt: skip


def _refused_or_compiled(document: Any) -> None:
    problems = problems_in(document, ["expert_visit"])
    assert all(isinstance(p, str) and ": " in p for p in problems)
    try:
        compile_definition(document, 1, ["expert_visit"])
    except InvalidDocument as refused:
        assert refused.problems == problems and problems
    else:
        assert problems == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, json_values, max_size=8))
def test_random_documents_are_refused_and_never_crash(document: dict[str, Any]) -> None:
    _refused_or_compiled(document)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    children: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    return [prefix] + [p for key, child in children for p in _paths(child, (*prefix, key))]


SAMPLE_PATHS = _paths(sample())[1:]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLE_PATHS), json_values)
def test_the_sample_with_one_part_replaced_never_crashes(path: tuple[Any, ...], value: Any) -> None:
    document = copy.deepcopy(sample())
    node: Any = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    _refused_or_compiled(document)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["application/yaml", "application/json"]))
def test_random_bytes_are_read_or_refused(body: bytes, content_type: str) -> None:
    try:
        document = read_document(body, content_type)
    except InvalidDocument as refused:
        assert refused.problems
    else:
        assert isinstance(document, dict)
