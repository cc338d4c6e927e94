"""One name, one definition: the event types, the data rules see and the events a case type's
rules may name all come from the Case aggregate's event classes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from domain.case import Case, rule_trigger_types
from domain.context import CommandContext
from domain.envelope import envelope_for
from domain.rules import facts
from services.case_type_checks import EVENT_TYPES
from tests.case_types import shipped

CTX = CommandContext("ann", "handler", correlation_id="c-1").as_dict()
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GENERIC = shipped("generic")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "case-types.md"


def a_worked_case() -> list[Case.Event]:
    case = Case.open(GENERIC, "Broken window", {"amount": 120}, "P-1", CTX, T0)
    case.assign("bob", CTX)
    case.transition(GENERIC, "wait", "called", CTX, T0, facts(case))
    case.add_note("left a message", CTX)
    case.close(GENERIC, "resolved by phone", CTX, T0)
    return list(case.collect_events())  # type: ignore[arg-type]


def test_the_facts_of_an_opened_case_hold_its_data_and_none_of_the_librarys_internals() -> None:
    opened = a_worked_case()[0]
    seen = facts(Case.open(GENERIC, "x", {}, None, CTX, T0), opened)["event"]
    assert seen["type"] == "CaseOpened"
    assert seen["data"] == {
        "case_type": "generic",
        "case_type_version": 1,
        "title": "Broken window",
        "fields": {"amount": 120},
        "party_id": "P-1",
        "status": "open",
    }


def test_rules_see_each_event_as_the_envelope_publishes_it() -> None:
    case = Case.open(GENERIC, "x", {}, None, CTX, T0)
    for position, event in enumerate(a_worked_case(), start=1):
        published = envelope_for(event, position)
        seen = facts(case, event)["event"]
        assert (seen["type"], seen["data"]) == (published.type, published.data)
        assert published.type in Case.event_types()


def test_the_checks_accept_exactly_the_events_the_domain_lets_rules_react_to() -> None:
    assert rule_trigger_types() == EVENT_TYPES
    assert set(EVENT_TYPES) < set(Case.event_types())


def test_the_documented_rule_events_are_those_the_checks_accept() -> None:
    text = DOCS.read_text()
    listed = re.search(r"Events a rule can react to: (.*?)\.\n", text, re.DOTALL)
    assert listed is not None
    assert tuple(re.findall(r"`(\w+)`", listed.group(1))) == EVENT_TYPES
