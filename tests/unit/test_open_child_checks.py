"""``open_child`` fields checked against the child case type: a rule whose child case could
never open (``Case.open`` refuses its fields, and the rule skips the action without a word) is
refused when the document is checked, each problem at its place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from domain.definition import Definition
from domain.errors import InvalidCommand
from services.case_type_checks import Issue
from services.case_type_document import compile_definition, issues_in, read_document

PAYMENT = """
name: payment
labels: {en: Payment}
states: {due: {initial: true}}
fields:
  amount: {type: money, required: true, currencies: [EUR]}
  due_on: {type: date}
  note: {type: text}
"""
ANYTHING = """
name: anything
labels: {en: Anything}
extra_fields: true
states: {open: {initial: true}}
fields:
  opened_on: {type: date}
"""
CLAIM = """
name: claim
labels: {en: Claim}
states: {open: {initial: true}}
fields:
  category: {type: choice, choices: [water, fire], required: true}
  estimate: {type: money}
slas:
  - name: answer
    deadline: 2h
    on_breach: [{open_child: {case_type: payment, title: Late, fields: {amount: 5}}}]
rules:
  - name: pay
    on: [CaseOpened]
    do:
      - set_priority: high
      - open_child: {case_type: payment, title: "Pay {{ case.title }}", fields: FIELDS}
"""
PAY = "rules[0].do[1].open_child"
EUR = {"amount": 10, "currency": "EUR"}


def compiled(text: str, version: int = 1) -> Definition:
    document = read_document(text.encode(), "application/yaml")
    return compile_definition(document, version)


def claim(fields: Any, child: str = "payment") -> dict[str, Any]:
    document = read_document(CLAIM.encode(), "application/yaml")
    action = document["rules"][0]["do"][1]["open_child"]
    action["case_type"] = child
    if fields is None:
        del action["fields"]
    else:
        action["fields"] = fields
    del document["slas"]  # its own open_child is checked on its own (below)
    return document


KNOWN: Mapping[str, Definition | None] = {
    "payment": compiled(PAYMENT, 3),
    "anything": compiled(ANYTHING),
    "drafted": None,  # no published version yet: only its name is known
    "claim": compiled(CLAIM.replace("FIELDS", "{amount: " + str(EUR) + "}"), 1),
}


def issues(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(i.path, i.message, i.hint) for i in issues_in(document, KNOWN)]


def test_fields_that_fit_the_child_type_are_accepted() -> None:
    assert issues(claim({"amount": EUR, "due_on": "2027-01-31", "note": None})) == []


def test_an_unknown_field_is_refused_with_the_child_fields_as_hint() -> None:
    assert issues(claim({"amount": EUR, "amont": 3})) == [
        (
            f"{PAY}.fields.amont",
            "unknown field 'amont': case type 'payment' v3 has no such field, so the child "
            "case would never open",
            "did you mean 'amount'? fields of case type 'payment' v3: amount (money, "
            "required), due_on (date), note (text)",
        )
    ]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "amount",
            "12 EUR",
            'must be an amount with its currency, e.g. {"amount": 1250.5, "currency": "EUR"} '
            "(field 'amount' of case type 'payment' v3 is money)",
        ),
        (
            "amount",
            {"amount": 12, "currency": "USD"},
            "currency USD is not accepted; use EUR (field 'amount' of case type 'payment' v3 "
            "is money)",
        ),
        (
            "due_on",
            20270131,
            "20270131 is not a date; write it as YYYY-MM-DD (field 'due_on' of case type "
            "'payment' v3 is date)",
        ),
        ("amount", None, "is required (field 'amount' of case type 'payment' v3 is money)"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_at_its_place(
    name: str, value: Any, message: str
) -> None:
    fields = {"amount": EUR, name: value}
    assert issues(claim(fields)) == [(f"{PAY}.fields.{name}", message, "")]


def test_a_required_field_of_the_child_type_must_be_given() -> None:
    why = (
        "has no value for 'amount', which case type 'payment' v3 requires, so the child case "
        "would never open"
    )
    hint = "add amount (money) to fields"
    assert issues(claim({"note": "n"})) == [(f"{PAY}.fields", why, hint)]
    assert issues(claim(None)) == [(PAY, why, hint)]  # no fields: key at all


def test_every_problem_of_one_action_is_reported_at_once() -> None:
    found = issues(claim({"amont": 3, "due_on": 1}))
    assert [path for path, _, _ in found] == [
        f"{PAY}.fields.amont",
        f"{PAY}.fields.due_on",
        f"{PAY}.fields",
    ]


def test_sla_actions_are_checked_too() -> None:
    document = read_document(CLAIM.replace("FIELDS", "{}").encode(), "application/yaml")
    found = [(i.path, i.message) for i in issues_in(document, KNOWN)]
    money = (
        'must be an amount with its currency, e.g. {"amount": 1250.5, "currency": "EUR"} '
        "(field 'amount' of case type 'payment' v3 is money)"
    )
    assert ("slas[0].on_breach[0].open_child.fields.amount", money) in found
    assert f"{PAY}.fields" in [path for path, _ in found]


def test_a_child_type_with_extra_fields_takes_any_other_field() -> None:
    assert issues(claim({"anything_at_all": [1], "opened_on": "2027-01-01"}, "anything")) == []
    [(path, message, _)] = issues(claim({"opened_on": "tomorrow"}, "anything"))
    assert path == f"{PAY}.fields.opened_on"
    assert message.startswith("'tomorrow' is not a date")


def test_a_child_of_its_own_type_is_checked_against_this_document() -> None:
    # KNOWN holds claim v1, with no field "colour": this document's fields are what count
    document = claim({"category": "flood", "colour": "red"}, "claim")
    document["fields"]["colour"] = {"type": "text"}
    assert issues(document) == [
        (
            f"{PAY}.fields.category",
            "'flood' is not one of: water, fire (field 'category' of this case type is choice)",
            "",
        )
    ]
    del document["fields"]["colour"]
    assert [(path, message) for path, message, _ in issues(document)][1:] == [
        (
            f"{PAY}.fields.colour",
            "unknown field 'colour': this case type has no such field, so the child case "
            "would never open",
        )
    ]


def test_only_names_or_no_published_version_keep_the_name_check_only() -> None:
    fields = {"amont": "x"}
    assert issues_in(claim(fields), ["payment", "claim"]) == []
    assert issues_in(claim(fields, "claim"), ["payment", "claim"]) == []  # compiled again
    assert issues_in(claim(fields, "drafted"), KNOWN) == []
    assert issues_in(claim(fields), None) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"amount": EUR},
        {"amount": EUR, "amont": 3},
        {"amount": "12"},
        {"amount": None},
        {"note": "n"},
        {"amount": EUR, "due_on": "31/01/2027"},
        {"amount": EUR, "note": None, "due_on": None},
    ],
)
def test_the_checker_refuses_exactly_what_opening_the_child_case_refuses(
    fields: dict[str, Any],
) -> None:
    refused: list[Issue] = issues_in(claim(fields), KNOWN)
    child = KNOWN["payment"]
    assert child is not None
    try:
        child.check_fields(fields, opening=True)
    except InvalidCommand:
        assert refused
    else:
        assert refused == []
