"""The Case aggregate: what each command records, and what it refuses."""

from __future__ import annotations

import pytest

from domain.case import Case
from domain.case_types import GENERIC, case_type_named
from domain.context import CommandContext
from domain.errors import InvalidCommand, InvalidTransition, UnknownCaseType

CTX = CommandContext("ann", "handler", correlation_id="c-1").as_dict()


def new_case() -> Case:
    return Case.open(GENERIC, "Broken window", {"amount": 120}, "P-1", CTX)


def event_names(case: Case) -> list[str]:
    return [type(e).__name__ for e in case.collect_events()]


def test_opening_records_the_case_type_version_and_initial_status() -> None:
    case = new_case()
    [opened] = case.collect_events()
    assert isinstance(opened, Case.Opened)
    assert (opened.case_type, opened.case_type_version, opened.status) == ("generic", 1, "open")
    assert opened.context["actor_id"] == "ann"
    assert opened.context["case_type"] == "generic"


def test_commands_record_one_event_each_and_replay_to_the_same_state() -> None:
    case = new_case()
    case.assign("bob", CTX)
    case.change_status(GENERIC, "waiting", "client away", CTX)
    case.add_note("left a message", CTX)
    case.close("resolved by phone", CTX)
    case.reopen(GENERIC, "called back", CTX)
    events = case.collect_events()
    assert [type(e).__name__ for e in events] == [
        "Opened", "Assigned", "StatusChanged", "NoteAdded", "Closed", "Reopened",
    ]
    replayed = None
    for e in events:
        replayed = e.mutate(replayed)
    assert isinstance(replayed, Case)
    assert (replayed.status, replayed.assignee, replayed.version) == ("open", "bob", 6)
    assert replayed.notes == [{"version": 4, "text": "left a message", "author": "ann"}]


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (lambda c: c.change_status(GENERIC, "flying", None, CTX), InvalidCommand),
        (lambda c: c.change_status(GENERIC, "open", None, CTX), InvalidTransition),
        (lambda c: c.reopen(GENERIC, "why", CTX), InvalidTransition),
        (lambda c: c.add_note("   ", CTX), InvalidCommand),
        (lambda c: c.add_note("x" * 20_001, CTX), InvalidCommand),
        (lambda c: c.assign("", CTX), InvalidCommand),
    ],
)
def test_refused_commands_record_nothing(command: object, error: type[Exception]) -> None:
    case = new_case()
    case.collect_events()
    with pytest.raises(error):
        command(case)  # type: ignore[operator]
    assert case.collect_events() == []


def test_a_closed_case_refuses_everything_but_notes_and_reopening() -> None:
    case = new_case()
    case.close("done", CTX)
    with pytest.raises(InvalidTransition, match="closed case") as caught:
        case.assign("bob", CTX)
    assert caught.value.hint == "reopen the case first"
    with pytest.raises(InvalidTransition):
        case.close("again", CTX)
    case.add_note("archived", CTX)
    assert event_names(case)[-1] == "NoteAdded"


def test_unknown_case_type_names_the_known_ones() -> None:
    with pytest.raises(UnknownCaseType) as caught:
        case_type_named("claims")
    assert "generic" in caught.value.hint


def test_unknown_status_error_lists_the_allowed_statuses() -> None:
    with pytest.raises(InvalidCommand) as caught:
        new_case().change_status(GENERIC, "flying", None, CTX)
    assert caught.value.hint.startswith("use one of: open, in_progress, waiting, resolved")


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
        Case.open(GENERIC, title, fields, None, CTX)
