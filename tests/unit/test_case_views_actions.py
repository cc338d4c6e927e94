"""What a reader may do with a case, decided by the service: each transition from the case's
state enabled or not with a plain reason (the case type's own words, or caseledger's, in
English or French), and the commands each role may run in each state. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.case import Case
from domain.definition import Definition
from services.auth import Role
from services.case_type_document import problems_in, read_document
from services.case_view_actions import Reader, decide_actions, decide_transitions
from tests.case_types import from_yaml

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
CLAIM = """
name: claim
labels: {en: Claim, fr: Sinistre}
states:
  submitted: {initial: true, labels: {en: Submitted, fr: Déclaré}}
  review: {labels: {en: Under review, fr: En instruction}}
  approved: {labels: {en: Approved, fr: Accepté}}
  paid: {final: true, labels: {en: Paid, fr: Payé}}
transitions:
  start_review: {from: submitted, to: review, labels: {en: Start review, fr: Instruire}}
  approve:
    from: review
    to: approved
    requires: [estimate]
    if: 'fields.estimate <= 1000 || actor.role == "manager"'
    blocked_reason:
      en: Only a manager approves more than 1000
      fr: Seul un responsable accepte plus de 1000
    labels: {en: Approve, fr: Accepter}
  fast_track:
    from: review
    to: approved
    roles: [handler, manager]
    requires: [estimate, expert]
    if: 'fields.urgent == true'
  pay: {from: approved, to: paid, roles: [manager]}
fields:
  estimate: {type: number, labels: {en: Estimate, fr: Estimation}}
  expert: {type: text, labels: {en: Expert, fr: Expert}}
  urgent: {type: boolean}
views:
  handler: {see: all, edit: [estimate, expert, urgent]}
  integrator: {see: [estimate], edit: none}
"""
CTX = {"actor_id": "ann", "actor_role": "handler"}


def claim(status: str = "review", **fields: Any) -> tuple[Case, Definition]:
    definition = from_yaml(CLAIM)
    case = Case.open(definition, "Leak", fields, None, CTX, NOW)
    if status != "submitted":
        case.transition(definition, "start_review", None, CTX, NOW, {})
    if status in ("approved", "paid"):
        case.update_fields(definition, {"estimate": 10}, CTX, None)
        case.transition(definition, "approve", None, CTX, NOW, {"fields": {"estimate": 10}})
    if status == "paid":
        manager = {**CTX, "actor_role": "manager"}
        case.transition(definition, "pay", None, manager, NOW, {})
    if status == "closed":
        case.close(definition, "duplicate", CTX, NOW)
    return case, definition


def options(case: Case, definition: Definition, role: Role, language: str) -> dict[str, Any]:
    reader = Reader(role, f"{role.value}-1", (language,))
    return {
        o.name: (o.enabled, o.reason, o.label, o.to_label)
        for o in decide_transitions(case, definition, reader, language)
    }


@pytest.mark.parametrize(
    ("fields", "role", "language", "expected"),
    [
        ({}, Role.HANDLER, "en", (False, "Fill in Estimate first")),
        ({}, Role.HANDLER, "fr", (False, "Renseignez d'abord Estimation")),
        ({"estimate": 5000}, Role.HANDLER, "en", (False, "Only a manager approves more than 1000")),
        (
            {"estimate": 5000},
            Role.HANDLER,
            "fr",
            (False, "Seul un responsable accepte plus de 1000"),
        ),
        ({"estimate": 5000}, Role.MANAGER, "en", (True, None)),  # the guard reads actor.role
        ({"estimate": 500}, Role.HANDLER, "fr", (True, None)),
        ({"estimate": 500}, Role.INTEGRATOR, "en", (True, None)),
    ],
)
def test_a_transition_is_enabled_or_says_why_not(
    fields: dict[str, Any], role: Role, language: str, expected: tuple[bool, str | None]
) -> None:
    case, definition = claim(**fields)
    assert options(case, definition, role, language)["approve"][:2] == expected


def test_without_its_own_words_a_guard_gets_a_general_reason_never_the_condition() -> None:
    case, definition = claim(estimate=1, expert="Bo")
    english = options(case, definition, Role.HANDLER, "en")["fast_track"]
    french = options(case, definition, Role.HANDLER, "fr")["fast_track"]
    assert english[:2] == (False, "The conditions for this step are not met yet")
    assert french[:2] == (False, "Les conditions de cette étape ne sont pas encore remplies")
    missing = options(claim()[0], definition, Role.HANDLER, "en")["fast_track"]
    assert missing[:2] == (False, "Fill in Estimate and Expert first")
    enabled = options(
        claim(estimate=1, expert="Bo", urgent=True)[0], definition, Role.HANDLER, "en"
    )
    assert enabled["fast_track"][:2] == (True, None)


def test_labels_of_the_transition_and_its_target_follow_the_language() -> None:
    case, definition = claim(status="submitted")
    assert options(case, definition, Role.HANDLER, "fr") == {
        "start_review": (True, None, "Instruire", "En instruction")
    }
    assert options(case, definition, Role.HANDLER, "en")["start_review"][2:] == (
        "Start review",
        "Under review",
    )


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.HANDLER, {"approve", "fast_track"}),
        (Role.MANAGER, {"approve", "fast_track"}),
        (Role.INTEGRATOR, {"approve"}),  # fast_track names its roles
        (Role.ADMIN, {"approve"}),
        (Role.AUDITOR, set()),  # may not move cases at all
    ],
)
def test_only_transitions_the_role_may_take_are_offered(role: Role, expected: set[str]) -> None:
    case, definition = claim(estimate=1)
    assert set(options(case, definition, role, "en")) == expected


@pytest.mark.parametrize("status", ["paid", "closed"])
def test_a_done_case_offers_no_transition(status: str) -> None:
    case, definition = claim(status=status)
    assert options(case, definition, Role.MANAGER, "en") == {}


ALL = {"assign", "close", "reopen", "edit_fields", "add_note"}


@pytest.mark.parametrize(
    ("role", "status", "allowed"),
    [
        (Role.ADMIN, "review", {"assign", "close", "edit_fields", "add_note"}),
        (Role.MANAGER, "review", {"assign", "close", "add_note"}),  # no view: edits none
        (Role.HANDLER, "review", {"assign", "close", "edit_fields", "add_note"}),
        (Role.INTEGRATOR, "review", {"add_note"}),  # its view edits no field
        (Role.AUDITOR, "review", set()),
        (Role.ADMIN, "closed", {"reopen", "add_note"}),
        (Role.MANAGER, "paid", {"reopen", "add_note"}),  # a final state is done too
        (Role.HANDLER, "closed", {"add_note"}),
        (Role.INTEGRATOR, "closed", {"add_note"}),
        (Role.AUDITOR, "closed", set()),
    ],
)
def test_actions_follow_the_role_and_the_state(role: Role, status: str, allowed: set[str]) -> None:
    case, definition = claim(status=status)
    decided = decide_actions(case, definition, definition.view_for(role.value), role)
    assert {name for name in ALL if getattr(decided, name)} == allowed


def _document() -> dict[str, Any]:
    return read_document(CLAIM.encode(), "application/yaml")


def test_blocked_reason_follows_the_rules_of_labels_and_needs_a_condition() -> None:
    document = _document()
    document["transitions"]["approve"]["blocked_reason"] = {"fr": "Non", "xx-": "?"}
    document["transitions"]["start_review"]["blocked_reason"] = {"en": "No"}
    assert problems_in(document) == [
        "transitions.start_review.blocked_reason: explains a condition, but the transition "
        "has no if:",
        "transitions.approve.blocked_reason: has no English text; add en (other languages "
        "are optional)",
        "transitions.approve.blocked_reason.xx-: is not a language code such as en or fr",
    ]
