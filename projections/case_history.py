"""Case history for analysts: one row per state a case entered, one row per SLA milestone.

``status_history`` holds a row per stay in a state: when the case entered it and left it, who
moved it there and by which transition (or ``kind``: opened, closed, reopened, migrated),
whether the state is final, and whether entering it closed the case (``closes``: final, from
a state that was not). Cycle times per state and per case type are read from it
(analytics views, docs/read-models.md). ``sla_outcomes`` holds a row per SLA clock run
started and per milestone reached (warned, breached) or kept (met, missed at stop).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.case import Case
from domain.envelope import EventEnvelope
from domain.event_names import event_type
from projections.base import CaseRows, Column, FinalStates, Projection, Row, Table, put, update

STATUS_HISTORY = Table(
    name="status_history",
    columns=(
        Column("case_id", "uuid NOT NULL"),
        Column("seq", "integer NOT NULL"),
        Column("case_type", "text NOT NULL"),
        Column("status", "text NOT NULL"),
        Column("kind", "text NOT NULL"),
        Column("transition", "text"),
        Column("from_status", "text"),
        Column("entered_at", "timestamptz NOT NULL"),
        Column("left_at", "timestamptz"),
        Column("actor_id", "text NOT NULL"),
        Column("actor_role", "text NOT NULL"),
        Column("reason", "text"),
        Column("final", "boolean NOT NULL"),
        Column("case_version", "integer NOT NULL"),
        Column("closes", "boolean NOT NULL DEFAULT false"),
    ),
    key=("case_id", "seq"),
    indexes=(
        ("entered", "entered_at"),
        ("status", "case_type, status, entered_at"),
        # Cycle times per state and throughput per day read these alone (index-only).
        ("stays", "(case_type, status) INCLUDE (entered_at, left_at) WHERE left_at IS NOT NULL"),
        ("by_day", "(entered_at) INCLUDE (case_type, kind, closes)"),
    ),
)
SLA_OUTCOMES = Table(
    name="sla_outcomes",
    columns=(
        Column("case_id", "uuid NOT NULL"),
        Column("sla", "text NOT NULL"),
        Column("run", "integer NOT NULL"),
        Column("milestone", "text NOT NULL"),
        Column("case_type", "text NOT NULL"),
        Column("outcome", "text NOT NULL"),
        Column("due_at", "timestamptz"),
        Column("at", "timestamptz NOT NULL"),
    ),
    key=("case_id", "sla", "run", "milestone"),
    indexes=(("at", "at"), ("outcome", "outcome, at")),
)

_OPENED, _MOVED, _MIGRATED = (
    event_type(Case.Opened),
    event_type(Case.StatusChanged),
    event_type(Case.Migrated),
)
_CLOSED, _REOPENED = event_type(Case.Closed), event_type(Case.Reopened)
_STARTED, _RESUMED, _STOPPED = (
    event_type(Case.SlaStarted),
    event_type(Case.SlaResumed),
    event_type(Case.SlaStopped),
)
_WARNED, _BREACHED = event_type(Case.SlaWarned), event_type(Case.SlaBreached)
#: Milestone names of the rows that are not warnings: a run's start and its deadline.
STARTED, DEADLINE = "started", "deadline"


class CaseHistoryProjection(Projection):
    name = "case_history"
    tables = (STATUS_HISTORY, SLA_OUTCOMES)

    def __init__(self, final_states: FinalStates) -> None:
        self.final_states = final_states

    def apply(self, rows: CaseRows, event: EventEnvelope) -> None:
        kind, data = event.type, event.data
        if kind == _OPENED:
            self._enter(rows, event, data["status"], "opened", None, None)
        elif kind == _MOVED:
            self._enter(
                rows, event, data["to_status"], "transition", data["transition"], data["reason"]
            )
        elif kind == _MIGRATED:
            self._enter(rows, event, data["to_status"], "migrated", None, None)
        elif kind == _CLOSED:
            self._enter(rows, event, "closed", "closed", None, data["reason"])
        elif kind == _REOPENED:
            self._enter(rows, event, data["status"], "reopened", None, data["reason"])
        elif kind in (_STARTED, _RESUMED):
            self._clock(rows, event, data)
        elif kind == _WARNED:
            self._outcome(rows, event, data["run"], data["milestone"], "warned", data["due_at"])
        elif kind == _BREACHED:
            self._outcome(rows, event, data["run"], DEADLINE, "breached", data["due_at"])
        elif kind == _STOPPED:
            self._stopped(rows, event, data)

    def _enter(
        self,
        rows: CaseRows,
        event: EventEnvelope,
        status: str,
        kind: str,
        transition: str | None,
        reason: str | None,
    ) -> None:
        history = rows[STATUS_HISTORY.name]
        last = max(history, default=None)
        if last is not None:
            update(rows, STATUS_HISTORY, last, left_at=event.recorded_at)
        final = self.final_states(event.case_type, event.case_type_version, status)
        was_final = last is not None and history[last]["final"]
        put(
            rows,
            STATUS_HISTORY,
            {
                "case_id": event.case_id,
                "seq": last[1] + 1 if last is not None else 1,
                "case_type": event.case_type,
                "status": status,
                "kind": kind,
                "transition": transition,
                "from_status": history[last]["status"] if last is not None else None,
                "entered_at": event.recorded_at,
                "left_at": None,
                "actor_id": event.actor.id,
                "actor_role": event.actor.role,
                "reason": reason,
                "final": final,
                "case_version": event.case_version,
                "closes": final and not was_final,
            },
        )

    def _clock(self, rows: CaseRows, event: EventEnvelope, data: dict[str, Any]) -> None:
        key = (event.case_id, data["sla"], data["run"], STARTED)
        deadline = data["due"].get(DEADLINE)
        if key in rows[SLA_OUTCOMES.name]:
            update(rows, SLA_OUTCOMES, key, due_at=_time(deadline))
            return
        self._outcome(rows, event, data["run"], STARTED, "started", deadline, data["sla"])

    def _stopped(self, rows: CaseRows, event: EventEnvelope, data: dict[str, Any]) -> None:
        sla = data["sla"]
        runs = [k[2] for k in rows[SLA_OUTCOMES.name] if k[1] == sla and k[3] == STARTED]
        if not runs:
            return  # a clock that never started has nothing to keep
        run = max(runs)
        if (event.case_id, sla, run, DEADLINE) in rows[SLA_OUTCOMES.name]:
            return  # breached already: that row tells the outcome
        started = rows[SLA_OUTCOMES.name][(event.case_id, sla, run, STARTED)]
        outcome = "met" if data["met"] else "missed"
        self._outcome(rows, event, run, DEADLINE, outcome, started["due_at"], sla)

    def _outcome(
        self,
        rows: CaseRows,
        event: EventEnvelope,
        run: int,
        milestone: str,
        outcome: str,
        due_at: str | datetime | None,
        sla: str | None = None,
    ) -> None:
        put(
            rows,
            SLA_OUTCOMES,
            {
                "case_id": event.case_id,
                "sla": sla if sla is not None else event.data["sla"],
                "run": run,
                "milestone": milestone,
                "case_type": event.case_type,
                "outcome": outcome,
                "due_at": _time(due_at),
                "at": event.recorded_at,
            },
        )


def _time(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


__all__ = ["SLA_OUTCOMES", "STATUS_HISTORY", "CaseHistoryProjection", "Row"]
