"""The expression type checker: which conditions and mapping values it accepts, and the exact
words it refuses the others with (each saying how to write it)."""

from __future__ import annotations

import pytest

from domain.definition import FieldSpec
from services.case_type_document import issues_in
from services.cel_parser import CelSyntaxError, parse
from services.expression_types import RECORD_FACTS, case_facts, check_condition, check_value

FIELDS = {
    "estimate": FieldSpec("estimate", "money", currencies=("EUR",)),
    "settlement": FieldSpec("settlement", "money"),
    "score": FieldSpec("score", "number"),
    "incident": FieldSpec("incident", "date"),
    "category": FieldSpec("category", "choice", choices=("water", "fire", "theft")),
    "note": FieldSpec("note", "text"),
    "urgent": FieldSpec("urgent", "boolean"),
    "holder": FieldSpec("holder", "party"),
}
FACTS = case_facts(FIELDS, states=("open", "review", "done"), roles=("admin", "manager"))

ACCEPTED = [
    "fields.estimate.amount > 5000",
    'fields.estimate.amount > 5000.5 && fields.estimate.currency == "EUR"',
    "fields.settlement.amount <= fields.estimate.amount",
    "double(fields.score) * 1.1 > 5000.0",
    "int(fields.score) % 2 == 0",
    "fields.score > 3 || fields.score == 2.5",
    'fields.incident >= "2026-01-01"',
    "fields.incident < fields.incident",
    'timestamp(fields.incident + "T00:00:00Z").getFullYear() == 2026',
    'fields.category == "water"',
    'fields.category in ["water", "fire"]',
    'case.priority != "low" || actor.role == "manager"',
    'case.status == "review" && case.assignee != null',
    "has(fields.urgent) && fields.urgent",
    "!fields.urgent",
    'fields.note.contains("roof") && size(fields.note) < 200',
    'fields.holder.startsWith("P-")',
    'event.data.anything > 3 && event.type == "CaseOpened"',
    "has(event.data.changes.score)",
    "[1, 2, 3].exists(n, n > 2) && [1.5].all(x, x > 1.0)",
    '{"a": 1}["a"] == 1',
    "fields.urgent ? case.version > 1 : case.escalations == 0",
    "dyn(fields.estimate) > 5000",
    'duration("1h") < duration("2h")',
]


@pytest.mark.parametrize("source", ACCEPTED)
def test_well_typed_conditions_are_accepted(source: str) -> None:
    assert [str(p) for p in check_condition(source, FACTS)] == []


REFUSED = [
    # the issue's case: money against a number
    (
        "fields.estimate > 5000",
        "fields.estimate is money ({amount, currency}) and 5000 is a whole number: they cannot be "
        "compared; compare its amount: fields.estimate.amount > 5000",
    ),
    (
        "fields.estimate == 5000",
        "fields.estimate is money ({amount, currency}) and 5000 is a whole number: they are never "
        "equal; compare its amount: fields.estimate.amount == 5000",
    ),
    (
        "fields.settlement <= fields.estimate",
        "fields.settlement is money ({amount, currency}) and fields.estimate is money ({amount, "
        "currency}): money values have no order, their amounts do; compare its amount: "
        "fields.settlement.amount <= fields.estimate.amount",
    ),
    (
        "fields.estimate * 2 > 10",
        "fields.estimate is money ({amount, currency}) and 2 is a whole number: * does not apply "
        "to money; compute with its amount: fields.estimate.amount * 2",
    ),
    # a string (or a timestamp) against a date
    (
        'fields.incident > "01/02/2026"',
        'fields.incident is a date (text YYYY-MM-DD), and "01/02/2026" is not a date written '
        "YYYY-MM-DD: the texts would be compared letter by letter; write the date as YYYY-MM-DD, "
        'e.g. fields.incident >= "2026-01-31"',
    ),
    (
        'fields.incident < timestamp("2026-03-01T00:00:00Z")',
        'fields.incident is a date (text YYYY-MM-DD), and timestamp("2026-03-01T00:00:00Z") is a '
        "timestamp: they cannot be compared; compare with a date in quotes: fields.incident < "
        '"2026-03-01"',
    ),
    (
        "fields.incident > case.title",
        "fields.incident is a date (text YYYY-MM-DD), and case.title is text: a date is compared "
        "only with another date; compare with another date field or a date in quotes, e.g. "
        'fields.incident >= "2026-01-31"',
    ),
    # unknown names, fields and members, with the closest name
    (
        "fields.setlement.amount > 0",
        "unknown field 'setlement'; fields are estimate, settlement, score, incident, category, "
        "note, urgent, holder; did you mean 'settlement'?",
    ),
    (
        "feilds.score > 0",
        "unknown name 'feilds'; use case, fields, event, actor; did you mean 'fields'?",
    ),
    (
        "fields.estimate.amont > 0",
        "fields.estimate is money: it has only amount and currency; did you mean 'amount'?",
    ),
    # functions that do not exist, wrong arguments
    (
        "lenght(fields.note) > 2",
        "unknown function 'lenght'; functions are size, int, uint, double, string, bytes, "
        "timestamp, duration, dyn, type, has, matches; methods (x.f()) are contains, startsWith, "
        "endsWith, matches, size, all, exists, exists_one, map, filter, getFullYear, getMonth, "
        "getDate, getDayOfMonth, getDayOfWeek, getDayOfYear, getHours, getMinutes, getSeconds, "
        "getMilliseconds",
    ),
    (
        "fields.note.contains(5)",
        'contains() takes text, and 5 is a whole number; write fields.note.contains("5")',
    ),
    ('fields.score.startsWith("1")', "startsWith() applies to text, and fields.score is a number"),
    (
        "double(fields.estimate) > 1.0",
        "double() does not take money ({amount, currency}) (fields.estimate); it takes a whole "
        "number, an unsigned whole number, a decimal number, a number, text; convert its amount: "
        "double(fields.estimate.amount)",
    ),
    # numbers in arithmetic
    (
        "fields.score * 1.1 > 5000.0",
        "fields.score may hold a whole number or a decimal, and CEL does not mix them in "
        "arithmetic (*); convert to decimals: double(fields.score) * 1.1",
    ),
    (
        "fields.score % 2 == 0",
        "fields.score may hold a decimal, and % applies to whole numbers only; convert to a whole "
        "number: int(fields.score) % 2",
    ),
    (
        "case.version * 1.5 > 3.0",
        "case.version is a whole number and 1.5 is a decimal number: CEL does not mix them in "
        "arithmetic (*); write both as decimals: double(case.version) * 1.5",
    ),
    # choices, priorities and states: values they do not have, and no order
    (
        'fields.category == "watr"',
        'fields.category is never "watr"; its choices are fire, theft, water; did you mean '
        '"water"?',
    ),
    (
        'fields.category in ["water", "fyre"]',
        'fields.category is never "fyre"; its choices are fire, theft, water; did you mean "fire"?',
    ),
    (
        'case.status == "reveiw"',
        'case.status is never "reveiw"; its states are closed, done, open, review; did you mean '
        '"review"?',
    ),
    (
        'case.priority > "normal"',
        "case.priority is a priority (text): its values have no order (they would be compared "
        'letter by letter); test the values it may have: case.priority in ["high", "low", '
        '"normal"]',
    ),
    # conditions that are not true or false
    (
        "fields.score",
        "a condition must be true or false, and fields.score is a number; compare it, e.g. "
        "fields.score > 0",
    ),
    (
        "fields.estimate",
        "a condition must be true or false, and fields.estimate is money ({amount, currency}); "
        "compare its amount, e.g. fields.estimate.amount > 0",
    ),
    (
        "fields.urgent && fields.note",
        "each side of && must be true or false, and fields.note is text; compare it, e.g. "
        'fields.note != ""',
    ),
    # other mismatches
    (
        'fields.score == "3"',
        'fields.score is a number and "3" is text: they are never equal; convert the number to '
        "text: string(fields.score)",
    ),
    (
        'fields.note + 1 == "a"',
        "fields.note is text and 1 is a whole number: + does not apply to them; convert the "
        "number to text: fields.note + string(1)",
    ),
    (
        "fields.incident.getFullYear() > 2000",
        "getFullYear() applies to a timestamp, and fields.incident is a date (text YYYY-MM-DD); "
        'dates are texts; read one as a time with timestamp(fields.incident + "T00:00:00Z")',
    ),
    (
        "Foo{a: 1} == 1",
        "the type checker cannot read this expression: message construction at column 4 is not "
        'supported; simplify it (docs/case-types.md, "Expression types")',
    ),
]


@pytest.mark.parametrize(("source", "message"), REFUSED, ids=[s for s, _ in REFUSED])
def test_ill_typed_conditions_are_refused_saying_how_to_write_them(
    source: str, message: str
) -> None:
    assert [str(p) for p in check_condition(source, FACTS)] == [message]


def test_undeclared_fields_are_any_value_with_extra_fields() -> None:
    facts = case_facts(FIELDS, extra_fields=True)
    assert check_condition("fields.colour == 3 && fields.estimate.amount > 1", facts) == []
    assert next(str(p) for p in check_condition("fields.estimate > 1", facts)).startswith(
        "fields.estimate is money"
    )


@pytest.mark.parametrize(
    ("source", "spec", "convert", "problems"),
    [
        ("record.code", FIELDS["category"], None, []),
        ('{"W": "water", "F": "fire"}[record.code]', FIELDS["category"], None, []),
        ('{"W": "water", "F": "fyre"}[record.code]', FIELDS["category"], None,
         ["the field 'category' is choice, and \"fyre\" is not one of its choices (fire, theft, "
          'water); did you mean "fire"?']),
        ("record.amount", FIELDS["estimate"], "money", []),
        ("record.amount", FIELDS["note"], "money",
         ["as: money gives money, and the field 'note' is text; use as: text or as: date or "
          "as: timestamp"]),
        ('"Claim " + record.no', FIELDS["score"], None,
         ["the field 'score' is number and the expression gives text; add as: number"]),
        ('"2026-" + record.day', FIELDS["incident"], None,
         ["the field 'incident' is date and the expression gives text that may not be a date "
          "written YYYY-MM-DD; add as: date (with format: if the source writes dates "
          "otherwise)"]),
        ("has(record.vip)", FIELDS["urgent"], None, []),
        ("recrd.x", FIELDS["note"], None,
         ["unknown name 'recrd'; use record; did you mean 'record'?"]),
    ],
)  # fmt: skip
def test_mapping_values_must_fit_their_field(
    source: str, spec: FieldSpec, convert: str | None, problems: list[str]
) -> None:
    assert [str(p) for p in check_value(source, RECORD_FACTS, spec, convert)] == problems


@pytest.mark.parametrize("source", ["a ? b", "(1", "'open", "1 +", "a.", "\\"])
def test_the_parser_refuses_what_is_not_an_expression(source: str) -> None:
    with pytest.raises(CelSyntaxError):
        parse(source)


def test_the_parser_reads_texts_with_escapes_and_bounds_its_depth() -> None:
    literal = parse(r'"a\"b\n\u00e9" + r"\d" + b"\x41"')
    assert "é" in repr(literal) and "\\\\d" in repr(literal) and "b'A'" in repr(literal)
    with pytest.raises(CelSyntaxError, match="nests more than"):
        parse("(" * 100 + "1" + ")" * 100)


def test_a_document_reports_type_problems_at_their_place_with_a_hint() -> None:
    document = {
        "name": "claim", "labels": {"en": "Claim"},
        "states": {"open": {"initial": True}, "done": {"final": True}},
        "transitions": {"finish": {"from": "open", "to": "done",
                                   "if": "fields.estimate >= fields.limit"}},
        "fields": {"estimate": {"type": "money"}, "limit": {"type": "number"}},
        "rules": [{"name": "r", "on": ["CaseOpened"], "if": "fields.estimate > 5000",
                   "do": [{"set_priority": "high"}]}],
    }  # fmt: skip
    issues = issues_in(document)
    assert [(i.path, i.pointer, i.hint) for i in issues] == [
        ("transitions.finish.if", "/transitions/finish/if",
         "compare its amount: fields.estimate.amount >= fields.limit"),
        ("rules[0].if", "/rules/0/if", "compare its amount: fields.estimate.amount > 5000"),
    ]  # fmt: skip
