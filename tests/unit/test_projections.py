"""Every event type through every projection, as a table: the rows each leaves (issue 11).

The projections are pure folds, so these run without a database: a case's rows are folded
over one event, and the rows that changed are compared with the table's expectation.
"""

from __future__ import annotations

from copy import deepcopy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.case import Case
from domain.envelope import Actor, EventEnvelope, SourceLineage
from domain.event_names import event_type
from projections.base import CaseRows, Projection
from projections.case_history import CaseHistoryProjection
from projections.case_list import CaseListProjection
from projections.work_queues import WorkQueuesProjection

CASE = "00000000-0000-4000-8000-000000000001"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DUE = {"warning:50": "2026-12-01T10:00:00+00:00", "deadline": "2026-12-01T11:00:00+00:00"}
NOTICE = "00000000-0000-4000-8000-0000000000aa"
SLA = {
    "run": 1,
    "running": True,
    "deadline": DUE["deadline"],
    "warned": False,
    "breached": False,
    "started": (T0 + timedelta(minutes=2)).isoformat(),
    # a quarter of the 118 minutes from its start (09:02) to its deadline (11:00) left
    "at_risk_at": "2026-12-01T10:30:30+00:00",
}
AT_RISK = datetime(2026, 12, 1, 10, 30, 30, tzinfo=UTC)


def final(_case_type: str, _version: int, status: str) -> bool:
    return status in ("done", "closed")


def envelope(kind: type[Case.Event], version: int, data: dict[str, Any], **extra: Any) -> Any:
    return EventEnvelope(
        event_id=f"e{version}",
        type=event_type(kind),
        case_id=CASE,
        case_type="claim",
        case_type_version=1,
        case_version=version,
        global_position=100 + version,
        occurred_at=T0 + timedelta(minutes=version),
        recorded_at=T0 + timedelta(minutes=version),
        actor=Actor(id="ann", role="handler"),
        correlation_id="c",
        causation_id=None,
        source=extra.get("source"),
        schema_version=1,
        data=data,
    )


OPENED = envelope(
    Case.Opened,
    1,
    {
        "case_type": "claim",
        "case_type_version": 1,
        "title": "Water damage",
        "fields": {"policy": "P-1", "estimate": 10},
        "party_id": "cust-7",
        "status": "new",
    },
    source=SourceLineage(system="legacy", record_id="r-1", connector="claims_db"),
)
STARTED = envelope(
    Case.SlaStarted, 2, {"sla": "fix", "run": 1, "started_at": T0.isoformat(), "due": DUE}
)

# event -> (case_list changes, status_history rows, sla_outcomes rows, timers, outbox)
EVENTS: list[tuple[str, Any, dict[str, Any]]] = [
    ("Assigned", envelope(Case.Assigned, 3, {"assignee": "bob"}), {"assignee": "bob"}),
    (
        "StatusChanged",
        envelope(
            Case.StatusChanged,
            3,
            {"from_status": "new", "to_status": "done", "reason": "ok", "transition": "finish"},
        ),
        {"status": "done", "final": True, "closed_at": T0 + timedelta(minutes=3)},
    ),
    (
        "FieldsUpdated",
        envelope(Case.FieldsUpdated, 3, {"changes": {"estimate": 99, "note": "roof"}}),
        {
            "fields": {"policy": "P-1", "estimate": 99, "note": "roof"},
            "search_text": "Water damage P-1 roof",
        },
    ),
    (
        "NoteAdded",
        envelope(Case.NoteAdded, 3, {"text": "called back"}),
        {"notes": 1, "note_text": "called back"},
    ),
    (
        "Closed",
        envelope(Case.Closed, 3, {"reason": "duplicate"}),
        {"status": "closed", "final": True, "closed_at": T0 + timedelta(minutes=3)},
    ),
    (
        "Reopened",
        envelope(Case.Reopened, 3, {"reason": "again", "status": "new"}),
        {"reopened": 1},
    ),
    (
        "PriorityChanged",
        envelope(Case.PriorityChanged, 3, {"priority": "high"}),
        {"priority": "high", "priority_rank": 2},
    ),
    ("RoutedToQueue", envelope(Case.RoutedToQueue, 3, {"queue": "q1"}), {"queue": "q1"}),
    (
        "Escalated",
        envelope(Case.Escalated, 3, {"reason": "late", "level": 1}),
        {"escalations": 1},
    ),
    (
        "RuleFired",
        envelope(
            Case.RuleFired,
            3,
            {"rule": "triage", "trigger": "CaseOpened", "trigger_version": 1},
        ),
        {},
    ),
    (
        "SlaPaused",
        envelope(Case.SlaPaused, 3, {"sla": "fix", "worked_seconds": 60.0}),
        {"slas": {"fix": {**SLA, "running": False}}, "sla_deadline": None, "sla_at_risk_at": None},
    ),
    (
        "SlaResumed",
        envelope(
            Case.SlaResumed,
            3,
            {
                "sla": "fix",
                "run": 1,
                "resumed_at": T0.isoformat(),
                "due": {"deadline": "2026-12-01T12:00:00+00:00"},
            },
        ),
        {
            "slas": {
                "fix": {
                    **SLA,
                    "deadline": "2026-12-01T12:00:00+00:00",
                    "at_risk_at": "2026-12-01T11:15:30+00:00",
                }
            },
            "sla_deadline": datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
            "sla_at_risk_at": datetime(2026, 12, 1, 11, 15, 30, tzinfo=UTC),
        },
    ),
    (
        "SlaStopped",
        envelope(Case.SlaStopped, 3, {"sla": "fix", "met": True}),
        {
            "slas": {"fix": {**SLA, "running": False, "met": True}},
            "sla_deadline": None,
            "sla_at_risk_at": None,
        },
    ),
    (
        "SlaWarned",
        envelope(
            Case.SlaWarned,
            3,
            {"sla": "fix", "run": 1, "milestone": "warning:50", "due_at": DUE["warning:50"]},
        ),
        {
            "slas": {"fix": {**SLA, "warned": True, "at_risk_at": "2026-12-01T09:03:00+00:00"}},
            "sla_at_risk_at": T0 + timedelta(minutes=3),
        },
    ),
    (
        "SlaBreached",
        envelope(Case.SlaBreached, 3, {"sla": "fix", "run": 1, "due_at": DUE["deadline"]}),
        {
            "sla_breaches": 1,
            "slas": {"fix": {**SLA, "breached": True}},
        },
    ),
    (
        "NotificationRequested",
        envelope(
            Case.NotificationRequested,
            3,
            {
                "notification_id": NOTICE,
                "notification": "mail",
                "channel": "email",
                "recipients": ["a@example.com"],
                "subject": "s",
                "body": "b",
                "target": None,
            },
        ),
        {},
    ),
    (
        "NotificationSent",
        envelope(Case.NotificationSent, 3, {"notification_id": NOTICE, "detail": "250"}),
        {},
    ),
    (
        "NotificationFailed",
        envelope(Case.NotificationFailed, 3, {"notification_id": NOTICE, "error": "550"}),
        {},
    ),
    (
        "ChildOpened",
        envelope(Case.ChildOpened, 3, {"child_id": CASE[:-1] + "2", "case_type": "generic"}),
        {},
    ),
    (
        "Migrated",
        envelope(
            Case.Migrated,
            3,
            {"from_version": 1, "to_version": 2, "from_status": "new", "to_status": "open"},
        ),
        {"status": "open"},
    ),
    (
        "LegalHoldPlaced",
        envelope(Case.LegalHoldPlaced, 3, {"reason": "litigation"}),
        {"legal_hold": True},
    ),
    ("LegalHoldLifted", envelope(Case.LegalHoldLifted, 3, {"reason": "settled"}), {}),
    (
        "PersonalDataErased",
        envelope(
            Case.PersonalDataErased,
            3,
            {"subject": "cust-7", "fields": ["policy"], "reason": "the customer asked"},
        ),
        {
            "fields": {"policy": None, "estimate": 10},
            "erased": ["policy"],
            "search_text": "Water damage",
        },
    ),
]


def fold(projection: Projection, *events: Any) -> CaseRows:
    rows: CaseRows = {t.name: {} for t in projection.tables}
    for event in events:
        projection.apply(rows, event)
    return rows


def changed(before: CaseRows, after: CaseRows) -> dict[str, dict[Any, Any]]:
    """The rows that differ, per table (removed rows as None)."""
    out: dict[str, dict[Any, Any]] = {}
    for table, rows in after.items():
        diff = {k: r for k, r in rows.items() if before[table].get(k) != r}
        diff |= {k: None for k in before[table] if k not in rows}
        if diff:
            out[table] = diff
    return out


def test_every_event_type_has_a_row_in_the_table() -> None:
    named = {name for name, _, _ in EVENTS} | {"Opened", "SlaStarted"}
    assert {f"Case{n}" for n in named} == set(Case.event_types())


@pytest.mark.parametrize(("name", "event", "expected"), EVENTS, ids=[n for n, _, _ in EVENTS])
def test_the_case_list_row_after_each_event(
    name: str, event: Any, expected: dict[str, Any]
) -> None:
    projection = CaseListProjection(final)
    before = fold(projection, OPENED, STARTED)
    after = deepcopy(before)
    projection.apply(after, event)
    [old] = before["case_list"].values()
    [new] = after["case_list"].values()
    moved = {"version": 3, "updated_at": event.recorded_at, "last_position": 103}
    assert {k: v for k, v in new.items() if old.get(k) != v} == {**moved, **expected}


def test_the_case_list_row_of_a_new_case() -> None:
    [row] = fold(CaseListProjection(final), OPENED, STARTED)["case_list"].values()
    assert row["source"] == {"system": "legacy", "record_id": "r-1", "connector": "claims_db"}
    assert row["search_text"] == "Water damage P-1"
    assert row["sla_deadline"] == datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
    assert (row["status"], row["final"], row["closed_at"], row["version"]) == (
        "new",
        False,
        None,
        2,
    )


def test_an_event_before_the_case_opened_cannot_be_applied() -> None:
    with pytest.raises(ValueError, match="has no row"):
        fold(CaseListProjection(final), STARTED)


HISTORY: dict[str, dict[str, Any]] = {
    "StatusChanged": {
        "status_history": {"status": "done", "kind": "transition", "transition": "finish"}
    },
    "Closed": {"status_history": {"status": "closed", "kind": "closed", "reason": "duplicate"}},
    "Reopened": {"status_history": {"status": "new", "kind": "reopened", "reason": "again"}},
    "Migrated": {"status_history": {"status": "open", "kind": "migrated", "from_status": "new"}},
    "SlaWarned": {"sla_outcomes": {"milestone": "warning:50", "outcome": "warned"}},
    "SlaBreached": {"sla_outcomes": {"milestone": "deadline", "outcome": "breached"}},
    "SlaStopped": {"sla_outcomes": {"milestone": "deadline", "outcome": "met"}},
    "SlaResumed": {"sla_outcomes": {"milestone": "started", "outcome": "started"}},
}


@pytest.mark.parametrize(("name", "event", "_"), EVENTS, ids=[n for n, _, _ in EVENTS])
def test_the_case_history_rows_after_each_event(name: str, event: Any, _: Any) -> None:
    projection = CaseHistoryProjection(final)
    before = fold(projection, OPENED, STARTED)
    after = deepcopy(before)
    projection.apply(after, event)
    diff = changed(before, after)
    expected = HISTORY.get(name, {})
    assert set(diff) == set(expected)
    if "status_history" in expected:
        entered = diff["status_history"][(CASE, 2)]
        assert entered.items() >= expected["status_history"].items()
        assert entered["entered_at"] == event.recorded_at
        assert entered["final"] == (entered["status"] in ("done", "closed"))
        left = diff["status_history"][(CASE, 1)]
        assert (left["status"], left["left_at"]) == ("new", event.recorded_at)
    if "sla_outcomes" in expected:
        [row] = diff["sla_outcomes"].values()
        assert row.items() >= expected["sla_outcomes"].items()


def test_a_stop_after_a_breach_keeps_the_breach() -> None:
    projection = CaseHistoryProjection(final)
    breached = envelope(Case.SlaBreached, 3, {"sla": "fix", "run": 1, "due_at": DUE["deadline"]})
    stopped = envelope(Case.SlaStopped, 4, {"sla": "fix", "met": False})
    rows = fold(projection, OPENED, STARTED, breached, stopped)
    outcomes = {k[3]: r["outcome"] for k, r in rows["sla_outcomes"].items()}
    assert outcomes == {"started": "started", "deadline": "breached"}


WORK: dict[str, dict[str, Any]] = {
    "SlaPaused": {"sla_timers": None},
    "SlaStopped": {"sla_timers": None},
    "SlaResumed": {"sla_timers": "replaced"},
    "SlaWarned": {"sla_timers": "warning:50 gone"},
    "SlaBreached": {"sla_timers": "deadline gone"},
    "NotificationRequested": {"notification_outbox": "added"},
}


@pytest.mark.parametrize(("name", "event", "_"), EVENTS, ids=[n for n, _, _ in EVENTS])
def test_the_work_queues_after_each_event(name: str, event: Any, _: Any) -> None:
    projection = WorkQueuesProjection()
    before = fold(projection, OPENED, STARTED)
    assert set(before["sla_timers"]) == {(CASE, "fix", "warning:50"), (CASE, "fix", "deadline")}
    after = deepcopy(before)
    projection.apply(after, event)
    timers = set(after["sla_timers"])
    expected = WORK.get(name, {})
    assert set(changed(before, after)) == set(expected)
    match expected.get("sla_timers"):
        case None if "sla_timers" in expected:
            assert timers == set()
        case "replaced":
            [row] = after["sla_timers"].values()
            assert row["due_at"] == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        case "warning:50 gone":
            assert timers == {(CASE, "fix", "deadline")}
        case "deadline gone":
            assert timers == {(CASE, "fix", "warning:50")}
    if "notification_outbox" in expected:
        [row] = after["notification_outbox"].values()
        assert row["message"]["recipients"] == ["a@example.com"]
        assert row["message"]["case_type"] == "claim"


def test_a_delivered_notification_leaves_the_outbox() -> None:
    projection = WorkQueuesProjection()
    requested = next(e for n, e, _ in EVENTS if n == "NotificationRequested")
    sent = envelope(Case.NotificationSent, 4, {"notification_id": NOTICE, "detail": "250"})
    assert fold(projection, OPENED, requested)["notification_outbox"]
    assert fold(projection, OPENED, requested, sent)["notification_outbox"] == {}
