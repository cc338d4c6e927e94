"""What each case event does to the live metrics (``infra.live_metrics_rules``), pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.envelope import SCHEMA_VERSION, Actor, EventEnvelope
from infra.live_metrics_rules import CaseState, Counted, count

AT = datetime(2026, 3, 4, 10, 42, tzinfo=UTC)
HOUR = datetime(2026, 3, 4, 10, tzinfo=UTC).timestamp()
OPEN_IN_Q = CaseState(4, "claim", "q", True)
UNSEEN = CaseState(4, "claim", "", None)  # its opening was never counted


def final(case_type: str, version: int, status: str) -> bool:
    return status in ("closed", "settled")


def event(kind: str, version: int = 5, **data: Any) -> EventEnvelope:
    return EventEnvelope(
        event_id="e",
        type=kind,
        case_id="c",
        case_type="claim",
        case_type_version=1,
        case_version=version,
        global_position=1,
        occurred_at=AT,
        recorded_at=AT,
        actor=Actor("a", "handler"),
        correlation_id="x",
        causation_id=None,
        source=None,
        schema_version=SCHEMA_VERSION,
        data=data,
    )


CASES = [
    # (before, event, hourly +1s, backlog changes, open after)
    (None, event("CaseOpened", 1), [("opened", "claim", "")], [("claim", "", 1)], True),
    (OPEN_IN_Q, event("CaseRoutedToQueue", queue="r"), [], [("claim", "q", -1), ("claim", "r", 1)],
     True),
    (OPEN_IN_Q, event("CaseRoutedToQueue", queue="q"), [], [], True),
    (UNSEEN, event("CaseRoutedToQueue", queue="r"), [], [], None),
    (OPEN_IN_Q, event("CaseSlaBreached"), [("breached", "claim", "q")], [], True),
    (OPEN_IN_Q, event("CaseClosed"), [("closed", "claim", "q")], [("claim", "q", -1)], False),
    (UNSEEN, event("CaseClosed"), [("closed", "claim", "")], [], False),
    (OPEN_IN_Q, event("CaseStatusChanged", to_status="settled"), [("closed", "claim", "q")],
     [("claim", "q", -1)], False),
    (OPEN_IN_Q, event("CaseStatusChanged", to_status="review"), [], [], True),
    (UNSEEN, event("CaseStatusChanged", to_status="review"), [], [("claim", "", 1)], True),
    (CaseState(4, "claim", "q", False), event("CaseReopened"), [], [("claim", "q", 1)], True),
    (OPEN_IN_Q, event("CaseNoteAdded", text="hi"), [], [], True),
]  # fmt: skip


@pytest.mark.parametrize(("before", "change", "hourly", "backlog", "still_open"), CASES)
def test_each_event_changes_the_counts_it_should(
    before: CaseState | None,
    change: EventEnvelope,
    hourly: list[tuple[str, str, str]],
    backlog: list[tuple[str, str, int]],
    still_open: bool | None,
) -> None:
    counted = count(before, change, final)
    assert counted is not None
    assert counted == Counted(counted.state, HOUR, tuple(hourly), tuple(backlog))
    assert (counted.state.version, counted.state.open) == (change.case_version, still_open)


def test_a_version_already_counted_changes_nothing() -> None:
    assert count(OPEN_IN_Q, event("CaseClosed", version=4), final) is None
    assert count(OPEN_IN_Q, event("CaseClosed", version=3), final) is None
