"""Decision tables are type-checked like conditions: each input is typed from the fields and
facts it reads, and each cell against its input's type, so that a cell that can never match
(a money compared with a number, a number in quotes, a choice it does not have) is refused at
its place with how to write it; the outputs a table gives ``assign`` are checked too. Plugin
function calls are checked for their number of arguments."""

from __future__ import annotations

from typing import Any

import pytest

from domain.definition import FieldSpec
from services.case_type_document import issues_in, problems_in
from services.expression_types import Facts, case_facts, check_condition

FIELDS: dict[str, Any] = {
    "claimed_amount": {"type": "money", "currencies": ["EUR"]},
    "category": {"type": "choice", "choices": ["water", "fire", "theft"]},
    "score": {"type": "number"},
    "incident": {"type": "date"},
    "urgent": {"type": "boolean"},
    "note": {"type": "text"},
}


def document(inputs: list[str], rows: list[list[str]], then: Any = None) -> dict[str, Any]:
    outputs = {"queue": "general"} if then is None else then
    return {
        "name": "claims", "labels": {"en": "Claims"},
        "states": {"open": {"initial": True}, "done": {"final": True}},
        "fields": FIELDS,
        "decision_tables": {"routing": {
            "inputs": inputs, "outputs": ["queue", "priority"],
            "rows": [{"when": when, "then": outputs} for when in rows],
        }},
        "rules": [{"name": "route", "on": ["CaseOpened"],
                   "do": [{"assign": {"table": "routing"}}]}],
    }  # fmt: skip


ACCEPTED = [
    ("fields.claimed_amount.amount", ["> 20000", "<= 5", "[1..10]", ">= 3 and < 5", "", "null"]),
    ("fields.claimed_amount.currency", ['"EUR"']),
    ("fields.category", ['"water"', '"fire", "theft"', "", '!= "water"']),
    ("fields.score", ["3", "3, 4", "> 2.5", "[1..5)", "> -3", "> fields.claimed_amount.amount"]),
    ("fields.incident", ['"2026-01-31"', '"2026-01-31", "2026-02-28"']),
    ("date(fields.incident)", ['> date("2026-01-01")', '[date("2026-01-01")..date("2026-03-01")]']),
    ("fields.urgent", ["true", "false"]),
    ("fields.note", ['"roof"', '"a", "b"', 'startsWith($, "P-")']),
    ("len(fields.note)", ["> 200"]),
    ("case.priority", ['"high", "urgent"']),
    ("case.status", ['"open"']),
    ("case.version", ["> 1"]),
    ('fields.note ?? "none"', ['"none"']),  # zen's own syntax: not typed, syntax checked
    ("event.data.anything", ["> 3", '"x"']),  # of unknown type
]


@pytest.mark.parametrize(("source", "cells"), ACCEPTED)
def test_well_typed_tables_are_accepted(source: str, cells: list[str]) -> None:
    assert problems_in(document([source], [[cell] for cell in cells])) == []


REFUSED = [
    # the issue's case, in a table: money against a number
    (
        "fields.claimed_amount",
        "> 20000",
        "fields.claimed_amount is money ({amount, currency}), and the cell '> 20000' compares "
        "it with a number: it never matches; use fields.claimed_amount.amount as the input",
    ),
    (
        "fields.claimed_amount",
        '"EUR"',
        "fields.claimed_amount is money ({amount, currency}), and the cell '\"EUR\"' compares "
        "it with text: it never matches; use fields.claimed_amount.currency as the input",
    ),
    (
        "fields.score",
        '"5"',
        'fields.score is a number, and "5" is text: the cell \'"5"\' never matches; write the '
        "number without quotes: 5",
    ),
    (
        "fields.score",
        '> "x"',
        'fields.score is a number, and "x" is text: the cell \'> "x"\' never matches; write a '
        "number, e.g. > 10000",
    ),
    (
        "fields.score",
        "> fields.claimed_amount",
        "fields.score is a number, and fields.claimed_amount is money ({amount, currency}): the "
        "cell '> fields.claimed_amount' never matches; write fields.claimed_amount.amount",
    ),
    (
        "fields.category",
        "5",
        "fields.category is a choice (text), and 5 is a number: the cell '5' never matches; "
        'write text in double quotes: "5"',
    ),
    (
        "fields.category",
        '"water", "watr"',
        'fields.category is never "watr"; its choices are fire, theft, water: the cell '
        '\'"water", "watr"\' never matches; did you mean "water"?',
    ),
    (
        "fields.category",
        '> "fire"',
        "fields.category is a choice (text): its values have no order, so the cell '> \"fire\"' "
        'never matches; list the values it may have: "fire", "theft", "water"',
    ),
    (
        "fields.note",
        "> 5",
        "fields.note is text, and a decision table cannot order texts: the cell '> 5' never "
        'matches; list the texts it may be, in double quotes: "a", "b"',
    ),
    (
        "fields.incident",
        '> "2026-01-01"',
        "fields.incident is a date (text YYYY-MM-DD), and a decision table cannot order texts: "
        "the cell '> \"2026-01-01\"' never matches; use date(fields.incident) as the input and "
        'write the cell > date("2026-01-01")',
    ),
    (
        "fields.incident",
        '"01/02/2026"',
        'fields.incident is a date (text YYYY-MM-DD), and "01/02/2026" is not a date written '
        "YYYY-MM-DD: the cell '\"01/02/2026\"' never matches; write the date as YYYY-MM-DD, "
        'e.g. "2026-01-31"',
    ),
    (
        "fields.incident",
        "20260101",
        "fields.incident is a date (text YYYY-MM-DD), and 20260101 is a number: the cell "
        "'20260101' never matches; write the date in double quotes, e.g. \"2026-01-31\"",
    ),
    (
        "date(fields.incident)",
        "> 5",
        'date(fields.incident) is a date read by date("YYYY-MM-DD"), and 5 is a number: the '
        "cell '> 5' never matches; write the date as date(\"2026-01-31\")",
    ),
    (
        "date(fields.incident)",
        '> date("01/02/2026")',
        'date("01/02/2026") is not a date written YYYY-MM-DD: the cell never matches; write '
        'the date as date("2026-01-31")',
    ),
    (
        "fields.urgent",
        '"true"',
        'fields.urgent is true or false, and "true" is text: the cell \'"true"\' never '
        "matches; write true without quotes",
    ),
    (
        "case.priority",
        '"hgh"',
        'case.priority is never "hgh"; its priorities are high, low, normal, urgent: the cell '
        '\'"hgh"\' never matches; did you mean "high"?',
    ),
]


@pytest.mark.parametrize(("source", "cell", "problem"), REFUSED)
def test_a_cell_that_never_matches_is_refused_at_its_place(
    source: str, cell: str, problem: str
) -> None:
    found = problems_in(document([source], [[cell], [""]]))
    assert found == [f"decision_tables.routing.rows[0].when[0]: {problem}"]


def test_an_input_is_typed_like_a_condition() -> None:
    assert problems_in(document(["fields.claimed_amount.amout"], [["> 3"]])) == [
        "decision_tables.routing.inputs[0]: fields.claimed_amount is money: it has only amount "
        "and currency; did you mean 'amount'?"
    ]
    assert problems_in(document(["date(fields.score)"], [[""]])) == [
        "decision_tables.routing.inputs[0]: date() reads a date written YYYY-MM-DD, and "
        "fields.score is a number"
    ]
    # an unknown field is reported once, with the closest name
    assert problems_in(document(["fields.scor"], [["> 3"]])) == [
        "decision_tables.routing.inputs[0]: unknown field 'scor'; fields are claimed_amount, "
        "category, score, incident, urgent, note; did you mean 'score'?"
    ]


def test_the_issue_names_the_cell_as_the_studio_places_it() -> None:
    inputs = ["fields.category", "fields.claimed_amount"]
    rows = [['"fire"', ""], ['"water"', "> 20000"], ["", ""]]
    [issue] = issues_in(document(inputs, rows))
    assert (issue.path, issue.pointer, issue.hint) == (
        "decision_tables.routing.rows[1].when[1]",
        "/decision_tables/routing/rows/1/when/1",  # the cell's data-pointer in the studio
        "use fields.claimed_amount.amount as the input",
    )


@pytest.mark.parametrize(
    ("then", "problems"),
    [
        ({"queue": "senior", "priority": "high"}, []),
        ({"queue": "senior", "priority": ""}, []),  # nothing given: nothing changed
        (
            {"queue": "senior", "priority": "hihg"},
            [
                "decision_tables.routing.rows[0].then.priority: unknown priority 'hihg'; "
                "priorities are low, normal, high, urgent (rules[0].do[0].assign.table uses "
                "it); did you mean 'high'?"
            ],
        ),
        (
            {"queue": 42},
            [
                "decision_tables.routing.rows[0].then.queue: 42 is not text, and queue names a "
                'queue (rules[0].do[0].assign.table uses it); write it as text: "42"'
            ],
        ),
    ],
)
def test_the_outputs_assign_uses_are_checked(then: dict[str, Any], problems: list[str]) -> None:
    assert problems_in(document(["fields.score"], [["> 3"]], then)) == problems


def test_a_table_no_rule_uses_keeps_its_outputs_free() -> None:
    unused = document(["fields.score"], [["> 3"]], {"queue": 42, "priority": "whatever"})
    unused["rules"] = []
    assert problems_in(unused) == []


def test_the_shipped_routing_table_with_a_money_input_is_refused_with_the_right_form() -> None:
    from tests.case_types import shipped_document  # noqa: PLC0415 - test helper

    claim = shipped_document("insurance_claim")
    claim["decision_tables"]["routing"]["inputs"][1] = "fields.claimed_amount"
    paths = [issue.path for issue in issues_in(claim)]
    assert paths == [
        "decision_tables.routing.rows[1].when[1]",
        "decision_tables.routing.rows[4].when[1]",
    ]


# -- plugin functions: the number of arguments -----------------------------------------------

PLUGIN_FACTS = case_facts({"postcode": FieldSpec("postcode", "text")})
PLUGIN_FACTS = Facts(
    PLUGIN_FACTS.roots,
    {"geo.score": (("string",), "double"), "geo.near": (("string", "double"), "bool")},
    required={"geo.near": 1},
    signatures={
        "geo.score": "geo.score(postcode: string) -> double",
        "geo.near": "geo.near(postcode: string, km: double = ...) -> bool",
    },
)


@pytest.mark.parametrize(
    ("source", "problems"),
    [
        ("geo.score(fields.postcode) > 0.5", []),
        ("geo.near(fields.postcode)", []),
        ("geo.near(fields.postcode, 3.0)", []),
        (
            "geo.score(fields.postcode, 2) > 0.5",
            [
                "geo.score() takes 1 argument, and geo.score(fields.postcode, 2) gives 2; its "
                "signature is geo.score(postcode: string) -> double"
            ],
        ),
        (
            "geo.score() > 0.5",
            [
                "geo.score() takes 1 argument, and geo.score() gives 0; its signature is "
                "geo.score(postcode: string) -> double"
            ],
        ),
        (
            "geo.near()",
            [
                "geo.near() takes 1 to 2 arguments, and geo.near() gives 0; its signature is "
                "geo.near(postcode: string, km: double = ...) -> bool"
            ],
        ),
        (
            "geo.score(fields.postcod, 1) > 0.5",
            [
                "unknown field 'postcod'; fields are postcode; did you mean 'postcode'?",
                "geo.score() takes 1 argument, and geo.score(fields.postcod, 1) gives 2; its "
                "signature is geo.score(postcode: string) -> double",
            ],
        ),
    ],
)
def test_a_plugin_function_gets_as_many_arguments_as_it_takes(
    source: str, problems: list[str]
) -> None:
    assert [str(p) for p in check_condition(source, PLUGIN_FACTS)] == problems
