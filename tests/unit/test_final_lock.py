"""Final states lock a case: once settled (or closed), its fields, assignee, queue and state
stay as they are until it is reopened, but for the fields the case type keeps editable.
What still works: notes, reopening, and the rules of the command that settled it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.case import Case, CaseIsFinal
from domain.definition import Definition
from domain.errors import DomainError
from domain.rules import RuleRun, facts, react
from services.auth import Role
from services.case_type_reading import InvalidDocument
from services.case_view_actions import Reader, decide_actions, decide_transitions, editable_fields
from tests.case_types import from_yaml
from tests.unit.test_case_properties import DEFINITIONS, OPENING, run_step, steps

CTX = {"actor_id": "ann", "actor_role": "handler", "correlation_id": "c-1"}
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CLAIM = from_yaml("""
name: claim
labels: {en: Claim}
states:
  open: {initial: true, labels: {en: Open}}
  settled: {final: true, labels: {en: Settled}}
transitions:
  settle: {from: open, to: settled, labels: {en: Settle}}
  review: {from: open, to: open, labels: {en: Review}}
fields:
  amount: {type: number, labels: {en: Amount}}
  settled_on: {type: date, labels: {en: Settled on}}
  archive_ref: {type: text, editable_when_final: true, labels: {en: Archive reference}}
rules:
  - name: stamp_the_settlement
    on: [CaseStatusChanged]
    if: 'case.status == "settled"'
    do:
      - set_field: {field: settled_on, value: "2026-03-02"}
      - assign: {queue: archive}
      - assign: {user: archivist}
  - name: a_note_zeroes_the_amount
    on: [CaseNoteAdded]
    do: [{set_field: {field: amount, value: 0}}]
""")


def no_lookup(name: str) -> Definition:
    raise AssertionError(f"no child case type expected, asked for {name}")


def command(case: Case, do: Callable[[Case], object]) -> list[str]:
    """Run one command and its rules, as the ledger does; the names of the events saved."""
    case.collect_events()
    do(case)
    react(RuleRun(case, CLAIM, CTX, T0, no_lookup))
    return [type(e).__name__ for e in case.collect_events()]


def settle(case: Case) -> None:
    case.transition(CLAIM, "settle", None, CTX, T0, facts(case))


def settled_case() -> Case:
    case = Case.open(CLAIM, "Flooded cellar", {"amount": 1200}, None, CTX, T0)
    command(case, settle)
    return case


REFUSED: dict[str, Callable[[Case], object]] = {
    "fields": lambda c: c.update_fields(CLAIM, {"amount": 5}, CTX, None),
    "assign": lambda c: c.assign("bob", CTX, definition=CLAIM),
    "unassign": lambda c: c.assign(None, CTX, definition=CLAIM),
    "route": lambda c: c.route("desk", CTX, definition=CLAIM),
    "transition": lambda c: c.transition(CLAIM, "review", None, CTX, T0, facts(c)),
    "close": lambda c: c.close(CLAIM, "tidy up", CTX, T0),
}


@pytest.mark.parametrize("refused", sorted(REFUSED))
@pytest.mark.parametrize("final", ["settled", "closed"])
def test_a_case_in_a_final_state_refuses_every_change_and_records_nothing(
    refused: str, final: str
) -> None:
    case = settled_case()
    if final == "closed":
        case.reopen(CLAIM, "one more look", CTX, T0)
        case.close(CLAIM, "withdrawn", CTX, T0)
        case.collect_events()
    before = (case.version, dict(case.fields), case.assignee, case.queue, case.status)
    with pytest.raises(CaseIsFinal) as caught:
        REFUSED[refused](case)
    assert caught.value.code == "case_final"
    where = "is closed" if final == "closed" else "is in the final state 'settled'"
    assert f"case {case.id} {where}, so it is locked" in caught.value.message
    assert f"reopen it first (POST /cases/{case.id}/reopen" in caught.value.hint
    assert case.pending_events == []
    assert (case.version, case.fields, case.assignee, case.queue, case.status) == before


def test_a_refused_field_edit_names_the_locked_fields_and_the_case_type_option() -> None:
    case = settled_case()
    with pytest.raises(CaseIsFinal) as caught:
        case.update_fields(CLAIM, {"amount": 5, "archive_ref": "box 12"}, CTX, None)
    assert caught.value.message.endswith("its fields may not be changed (amount)")
    assert "editable_when_final: true in the case type 'claim'" in caught.value.hint
    assert case.pending_events == []


def test_a_field_marked_editable_when_final_can_still_be_changed() -> None:
    case = settled_case()
    saved = command(case, lambda c: c.update_fields(CLAIM, {"archive_ref": "box 12"}, CTX, None))
    assert saved == ["FieldsUpdated"]
    assert case.fields["archive_ref"] == "box 12"


def test_a_value_equal_to_the_one_held_is_no_change_and_not_refused() -> None:
    case = settled_case()
    assert command(case, lambda c: c.update_fields(CLAIM, {"amount": 1200}, CTX, None)) == []


def test_notes_are_still_written_and_rules_they_trigger_do_not_change_the_fields() -> None:
    case = settled_case()
    saved = command(case, lambda c: c.add_note("paid on 2 March", CTX))
    # the rule fired (its record stays), but its set_field did not apply to a settled case
    assert saved == ["NoteAdded", "RuleFired"]
    assert case.fields["amount"] == 1200


def test_the_rules_of_the_command_that_settles_the_case_still_act() -> None:
    case = Case.open(CLAIM, "Flooded cellar", {"amount": 1200}, None, CTX, T0)
    saved = command(case, settle)
    assert saved[:2] == ["StatusChanged", "RuleFired"]
    assert {"FieldsUpdated", "RoutedToQueue", "Assigned"} <= set(saved)
    assert (case.fields["settled_on"], case.queue, case.assignee) == (
        "2026-03-02",
        "archive",
        "archivist",
    )


def test_the_rules_of_one_ingested_record_do_not_unlock_the_next_one() -> None:
    """A connector applies a case's records one after the other before one save: the rules
    of the record that settles the case act; the next record is refused as the case is."""
    case = Case.open(CLAIM, "Flooded cellar", {"amount": 1200}, None, CTX, T0)
    case.collect_events()
    settle(case)
    react(RuleRun(case, CLAIM, CTX, T0, no_lookup), 0)
    assert case.fields["settled_on"] == "2026-03-02"
    start = len(case.pending_events)
    case.add_note("a later record", CTX)
    react(RuleRun(case, CLAIM, CTX, T0, no_lookup), start)
    assert case.fields["amount"] == 1200
    with pytest.raises(CaseIsFinal):
        case.update_fields(CLAIM, {"amount": 7}, CTX, None)


def test_reopening_unlocks_the_case() -> None:
    case = settled_case()
    saved = command(case, lambda c: c.reopen(CLAIM, "new invoice", CTX, T0))
    assert saved[0] == "Reopened"
    command(case, lambda c: c.update_fields(CLAIM, {"amount": 1500}, CTX, None))
    command(case, lambda c: c.assign("bob", CTX, definition=CLAIM))
    assert (case.fields["amount"], case.assignee, case.status) == (1500, "bob", "open")


def test_bookkeeping_still_applies_to_a_final_case() -> None:
    case = settled_case()
    notification = case.request_notification("n", "email", ["a@b.c"], None, "hi", None, CTX)
    assert case.record_delivery(notification, None, "250 OK", CTX)
    case.set_priority("low", CTX)
    case.place_legal_hold("litigation", CTX)
    assert case.priority == "low" and case.legal_hold is not None


def test_the_option_must_be_true_or_false() -> None:
    with pytest.raises(InvalidDocument) as caught:
        from_yaml("""
name: wrong
labels: {en: Wrong}
states: {a: {initial: true, labels: {en: A}}}
transitions: {}
fields: {ref: {type: text, editable_when_final: "yes", labels: {en: Ref}}}
""")
    assert any(p.startswith("fields.ref.editable_when_final") for p in caught.value.problems)


# -- the read side: what a screen offers on a final case -----------------------------------


def offered(case: Case, role: Role) -> tuple[set[str], list[str] | None, list[str]]:
    view = CLAIM.view_for(role.value)
    actions = decide_actions(case, CLAIM, view, role)
    moves = decide_transitions(case, CLAIM, Reader(role, "ann"), "en")
    return (
        {name for name, allowed in vars(actions).items() if allowed},
        editable_fields(case, CLAIM, view),
        [m.name for m in moves],
    )


def test_a_final_case_offers_reopen_notes_and_only_the_fields_still_editable() -> None:
    case = settled_case()
    assert offered(case, Role.MANAGER) == (
        {"reopen", "add_note", "edit_fields"},
        ["archive_ref"],
        [],
    )
    assert offered(case, Role.HANDLER) == ({"add_note", "edit_fields"}, ["archive_ref"], [])
    case.reopen(CLAIM, "x", CTX, T0)
    actions, fields, moves = offered(case, Role.HANDLER)
    assert {"assign", "close", "edit_fields"} <= actions
    assert (fields, moves) == (None, ["settle", "review"])


def test_without_a_field_still_editable_a_final_case_offers_no_field_editor() -> None:
    plain = replace(CLAIM, fields={n: s for n, s in CLAIM.fields.items() if n != "archive_ref"})
    case = settled_case()
    view = plain.view_for("admin")  # edits every field while the case is open
    assert editable_fields(case, plain, view) == []
    assert not decide_actions(case, plain, view, Role.ADMIN).edit_fields


# -- whatever commands arrive, a locked case stays as it is until reopened ----------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(DEFINITIONS)), steps=steps)
def test_random_commands_never_change_a_locked_case(
    name: str, steps: list[tuple[str, int, str, int]]
) -> None:
    definition = DEFINITIONS[name]
    ctx = {"actor_id": "prop", "actor_role": "handler", "correlation_id": "p"}
    case = Case.open(definition, "prop", dict(OPENING[name]), None, ctx, T0)
    now = T0
    for step in steps:
        now += timedelta(minutes=step[3])
        locked = case.is_done(definition) and step[0] != "reopen"
        before = (case.status, dict(case.fields), case.assignee, case.queue)
        with suppress(DomainError):  # refused: nothing recorded
            run_step(case, definition, step, now)
        case.collect_events()
        if locked:
            assert (case.status, case.fields, case.assignee, case.queue) == before
