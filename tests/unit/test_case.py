"""The Case aggregate under its case type: what each command records, and what it refuses."""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.case import Case
from domain.context import CommandContext
from domain.definition import Definition
from domain.errors import InvalidCommand, InvalidTransition, NotAllowed
from domain.rules import RuleRun, facts, react
from tests.case_types import REPAIR, from_yaml, shipped

CTX = CommandContext("ann", "handler", correlation_id="c-1").as_dict()
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GENERIC = shipped("generic")
REPAIRS = from_yaml(REPAIR)


def no_lookup(name: str) -> Definition:
    raise AssertionError(f"no child case type expected, asked for {name}")


def new_case(definition: Definition = GENERIC, fields: dict[str, Any] | None = None) -> Case:
    fields = {"amount": 120} if fields is None else fields
    return Case.open(definition, "Broken window", fields, "P-1", CTX, T0)


def names(case: Case) -> list[str]:
    return [type(e).__name__ for e in case.collect_events()]


def move(case: Case, definition: Definition, name: str, when: datetime = T0) -> None:
    case.transition(definition, name, None, CTX, when, facts(case))


def test_opening_records_the_case_type_version_and_initial_status() -> None:
    case = new_case()
    [opened] = case.collect_events()
    assert isinstance(opened, Case.Opened)
    assert (opened.case_type, opened.case_type_version, opened.status) == ("generic", 1, "open")
    assert opened.context["actor_id"] == "ann"
    assert opened.context["case_type"] == "generic"


def test_commands_record_events_and_replay_to_the_same_state() -> None:
    case = new_case()
    case.assign("bob", CTX)
    move(case, GENERIC, "wait")
    case.add_note("left a message", CTX)
    case.close(GENERIC, "resolved by phone", CTX, T0)
    case.reopen(GENERIC, "called back", CTX, T0)
    events = case.collect_events()
    assert [type(e).__name__ for e in events] == [
        "Opened",
        "Assigned",
        "StatusChanged",
        "NoteAdded",
        "Closed",
        "Reopened",
    ]
    assert events[2].transition == "wait"  # type: ignore[attr-defined]
    replayed = None
    for e in events:
        replayed = e.mutate(replayed)
    assert isinstance(replayed, Case)
    assert (replayed.status, replayed.assignee, replayed.version) == ("open", "bob", 6)
    assert replayed.notes == [{"version": 4, "text": "left a message", "author": "ann"}]


def test_a_version_1_status_change_is_upcast_with_no_transition_name() -> None:
    state: dict[str, Any] = {"from_status": "open", "to_status": "waiting", "reason": None}
    Case.StatusChanged.upcast_v1_v2(state)
    assert state["transition"] is None


@pytest.mark.parametrize(
    ("command", "error", "hint"),
    [
        (lambda c: move(c, GENERIC, "fly"), InvalidCommand, "start_work, wait, resolve"),
        (lambda c: c.reopen(GENERIC, "why", CTX, T0), InvalidTransition, "closed"),
        (lambda c: c.add_note("   ", CTX), InvalidCommand, "non-empty"),
        (lambda c: c.add_note("x" * 20_001, CTX), InvalidCommand, "shorten"),
        (lambda c: c.assign("", CTX), InvalidCommand, "non-empty"),
        (lambda c: c.set_priority("sky-high", CTX), InvalidCommand, "low, normal"),
    ],
)
def test_refused_commands_record_nothing(
    command: Callable[[Case], None], error: type[Exception], hint: str
) -> None:
    case = new_case()
    case.collect_events()
    with pytest.raises(error) as caught:
        command(case)
    assert hint in getattr(caught.value, "hint", "")
    assert case.collect_events() == []


def test_a_transition_not_available_from_the_state_names_those_that_are() -> None:
    case = new_case()
    move(case, GENERIC, "resolve")
    with pytest.raises(InvalidTransition) as caught:
        move(case, GENERIC, "wait")
    assert caught.value.hint == "available from 'resolved': start_work"


def test_a_closed_case_refuses_everything_but_notes_and_reopening() -> None:
    case = new_case()
    case.close(GENERIC, "done", CTX, T0)
    with pytest.raises(InvalidTransition, match="is closed, so it is locked") as caught:
        case.assign("bob", CTX)
    assert caught.value.hint.startswith("reopen it first")
    with pytest.raises(InvalidTransition):
        case.close(GENERIC, "again", CTX, T0)
    case.add_note("archived", CTX)
    assert names(case)[-1] == "NoteAdded"


def test_fields_are_checked_against_the_case_type_on_open_and_update() -> None:
    with pytest.raises(InvalidCommand) as caught:
        new_case(REPAIRS, {"cost": {"amount": 10, "currency": "USD"}, "colour": "red"})
    assert "fields.cost: currency USD is not accepted; use EUR" in caught.value.message
    assert "fields.colour: is not a field of this case type" in caught.value.message
    case = new_case(REPAIRS, {})
    case.update_fields(REPAIRS, {"cost": {"amount": 12.5, "currency": "EUR"}}, CTX, None)
    assert case.fields["cost"] == {"amount": 12.5, "currency": "EUR"}


def test_a_role_edits_only_the_fields_its_view_allows() -> None:
    case = new_case(REPAIRS, {})
    view = REPAIRS.view_for("handler")
    with pytest.raises(NotAllowed) as caught:
        case.update_fields(REPAIRS, {"urgent": True}, CTX, view)
    assert caught.value.hint == "fields your role may edit: cost"


def test_a_transition_checks_role_required_fields_and_guard() -> None:
    case = new_case(REPAIRS, {})
    move(case, REPAIRS, "start")
    with pytest.raises(InvalidTransition, match="needs the fields cost"):
        move(case, REPAIRS, "finish")
    case.update_fields(REPAIRS, {"cost": {"amount": 5000, "currency": "EUR"}}, CTX, None)
    with pytest.raises(InvalidTransition, match=r"condition 'fields\.cost\.amount < 1000\.0'"):
        move(case, REPAIRS, "finish")
    case.update_fields(REPAIRS, {"cost": {"amount": 50, "currency": "EUR"}}, CTX, None)
    integrator = {**CTX, "actor_role": "integrator"}
    with pytest.raises(NotAllowed, match="may not take the transition 'finish'"):
        case.transition(REPAIRS, "finish", None, integrator, T0, facts(case))
    move(case, REPAIRS, "finish")
    assert case.status == "done"


def test_rules_fire_on_events_and_name_themselves_in_every_action() -> None:
    case = new_case(REPAIRS, {"urgent": True, "contact": "jo@example.com"})
    reaction = react(RuleRun(case, REPAIRS, CTX, T0, no_lookup))
    events = case.collect_events()
    kinds = [type(e).__name__ for e in events]
    assert kinds[-4:] == ["RuleFired", "PriorityChanged", "RoutedToQueue", "NotificationRequested"]
    fired = events[-4]
    assert (fired.rule, fired.trigger) == ("urgent_first", "CaseOpened")  # type: ignore[attr-defined]
    for action in events[-3:]:
        context = action.context  # type: ignore[attr-defined]
        assert (context["rule"], context["actor_role"], context["case_type_version"]) == (
            "urgent_first",
            "system",
            1,
        )
    notification = events[-1]
    assert notification.recipients == ["jo@example.com", "role:manager"]  # type: ignore[attr-defined]
    assert notification.body == "Your repair is urgent."  # type: ignore[attr-defined]
    assert (reaction.fired, case.priority, case.queue) == (1, "urgent", "urgent-repairs")


def test_a_rule_whose_condition_does_not_hold_records_nothing() -> None:
    case = new_case(REPAIRS, {"urgent": False})
    case.collect_events()
    assert react(RuleRun(case, REPAIRS, CTX, T0, no_lookup)).fired == 0


def test_rules_that_trigger_each_other_stop_after_a_few_links() -> None:
    ping_pong = from_yaml("""
name: loop
labels: {en: Loop}
states: {a: {initial: true, labels: {en: A}}}
transitions: {}
fields: {n: {type: number, labels: {en: N}}}
rules:
  - name: up
    on: [CaseFieldsUpdated]
    if: 'int(fields.n) % 2 == 0'
    do: [{set_field: {field: n, value: 1}}]
  - name: down
    on: [CaseFieldsUpdated]
    if: 'int(fields.n) % 2 == 1'
    do: [{set_field: {field: n, value: 2}}]
""")
    case = Case.open(ping_pong, "x", {"n": 0}, None, CTX, T0)
    start = len(case.pending_events)
    case.update_fields(ping_pong, {"n": 2}, CTX, None)
    reaction = react(RuleRun(case, ping_pong, CTX, T0, no_lookup), start)
    # each update fires both rules (the second sees the first's change): 2 + 4 + 8 + 16
    assert reaction.fired == 30
    assert case.version < 100


def test_sla_clocks_start_pause_resume_and_stop_with_the_status() -> None:
    case = new_case(REPAIRS, {})
    started = {e.sla: e.due for e in case.collect_events() if isinstance(e, Case.SlaStarted)}
    assert started["fix_time"] == {
        "warning:50": (T0 + timedelta(hours=1)).isoformat(),
        "goal": (T0 + timedelta(hours=1)).isoformat(),
        "deadline": (T0 + timedelta(hours=2)).isoformat(),
    }
    assert started["pickup"] == {"deadline": (T0 + timedelta(minutes=30)).isoformat()}
    move(case, REPAIRS, "start", T0 + timedelta(minutes=10))
    move(case, REPAIRS, "hold", T0 + timedelta(minutes=40))
    move(case, REPAIRS, "resume", T0 + timedelta(hours=5))
    events = case.collect_events()
    assert [type(e).__name__ for e in events] == [
        "StatusChanged",
        "SlaStopped",
        "StatusChanged",
        "SlaPaused",
        "StatusChanged",
        "SlaResumed",
    ]
    assert events[3].worked_seconds == 40 * 60  # type: ignore[attr-defined]
    resumed_due = events[5].due  # type: ignore[attr-defined]
    assert resumed_due["deadline"] == (T0 + timedelta(hours=5, minutes=80)).isoformat()


def test_a_milestone_is_recorded_once_and_only_when_due() -> None:
    case = new_case(REPAIRS, {})
    run = case.clocks["fix_time"].run
    assert not case.reach_milestone("fix_time", run, "deadline", CTX, T0 + timedelta(minutes=119))
    assert case.reach_milestone("fix_time", run, "deadline", CTX, T0 + timedelta(hours=2))
    assert not case.reach_milestone("fix_time", run, "deadline", CTX, T0 + timedelta(hours=3))
    assert not case.reach_milestone("fix_time", run + 1, "goal", CTX, T0 + timedelta(hours=3))
    assert [type(e).__name__ for e in case.collect_events()][-1] == "SlaBreached"


def test_closing_stops_every_clock_and_says_whether_it_was_met() -> None:
    case = new_case(REPAIRS, {})
    case.reach_milestone(
        "pickup", case.clocks["pickup"].run, "deadline", CTX, T0 + timedelta(hours=1)
    )
    case.close(REPAIRS, "cancelled", CTX, T0 + timedelta(hours=1))
    stopped = {e.sla: e.met for e in case.collect_events() if isinstance(e, Case.SlaStopped)}
    assert stopped == {"fix_time": True, "pickup": False}
    assert case.clocks == {}


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("title", "fields"),
    [
        ("nul \x00 inside", {}),
        ("lone \ud800 surrogate", {}),
        ("fine", {"amount": float("nan")}),
        ("fine", {"k\x00": 1}),
        ("fine", {"deep": nested(40)}),
    ],
)
def test_values_that_could_not_be_stored_or_published_are_refused(
    title: str, fields: dict[str, object]
) -> None:
    """Adapters bypass the API's schema, so the domain itself refuses these."""
    with pytest.raises(InvalidCommand):
        Case.open(GENERIC, title, fields, None, CTX, T0)


OFFICE = """
name: office
labels: {en: Office}
calendar:
  timezone: Europe/Paris
  hours: {mon: ["09:00-17:00"], tue: ["09:00-17:00"], wed: ["09:00-17:00"],
          thu: ["09:00-17:00"], fri: ["09:00-17:00"]}
  holidays: ["2026-12-25"]
states:
  open: {initial: true, labels: {en: Open}}
  waiting: {labels: {en: Waiting}}
transitions:
  wait: {from: open, to: waiting}
  resume: {from: waiting, to: open}
slas:
  - {name: answer, deadline: 4h, warn_at: [50], paused_in: [waiting]}
"""


def test_sla_deadlines_count_working_hours_across_weekends_holidays_and_pauses() -> None:
    office = from_yaml(OFFICE)
    friday_3pm = datetime(2026, 12, 18, 14, 0, tzinfo=UTC)  # 15:00 in Paris
    case = Case.open(office, "late friday", {}, None, CTX, friday_3pm)
    # 2 h on Friday, then Monday 09:00-11:00 Paris = 10:00 UTC
    assert case.clocks["answer"].due == {
        "warning:50": "2026-12-18T16:00:00+00:00",
        "deadline": "2026-12-21T10:00:00+00:00",
    }
    # paused on Monday 10:00 Paris (1 h left), resumed on Thursday 24th at 16:30 Paris:
    # 30 min that day, Christmas is a holiday, the last 30 min on Monday 28th 09:30 Paris
    case.transition(office, "wait", None, CTX, datetime(2026, 12, 21, 9, 0, tzinfo=UTC), {})
    case.transition(office, "resume", None, CTX, datetime(2026, 12, 24, 15, 30, tzinfo=UTC), {})
    assert case.clocks["answer"].due == {
        "warning:50": "2026-12-24T15:30:00+00:00",  # passed while paused, never fired: due now
        "deadline": "2026-12-28T08:30:00+00:00",
    }


def test_a_copy_for_a_command_shares_only_what_never_changes() -> None:
    case = new_case()
    case.add_note("first", CTX)
    case.collect_events()
    copied = deepcopy(case)
    copied.add_note("second", CTX)
    copied.update_fields(GENERIC, {"amount": 5}, CTX, None)
    assert [n["text"] for n in case.notes] == ["first"]
    assert case.fields["amount"] == 120 and case.version == 2
    assert copied.notes[0] is case.notes[0]  # a note is never changed once added
    assert not case.pending_events and len(copied.collect_events()) == 2
