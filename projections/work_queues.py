"""Timers and outboxes derived from case events: the SLA milestones still to come and the
notifications still to send. The SLA watcher reads ``sla_timers``; the notifier claims and
drops ``notification_outbox`` rows through the table's owner (``infra.work_queue_store``),
which also keeps each row's attempts (``kept`` columns: the projection never writes them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.case import Case
from domain.envelope import EventEnvelope
from domain.event_names import event_type
from projections.base import CaseRows, Column, Projection, Table, drop, put

_CLOCK_RUNS = (event_type(Case.SlaStarted), event_type(Case.SlaResumed))
_CLOCK_HALTS = (event_type(Case.SlaPaused), event_type(Case.SlaStopped))
_WARNED, _BREACHED = event_type(Case.SlaWarned), event_type(Case.SlaBreached)
_REQUESTED = event_type(Case.NotificationRequested)
_DELIVERED = (event_type(Case.NotificationSent), event_type(Case.NotificationFailed))


@dataclass(frozen=True)
class TimerChange:
    """Replace the SLA's timers by ``due`` (empty: remove them), or drop one ``milestone``."""

    case_id: str
    sla: str
    run: int = 0
    due: tuple[tuple[str, datetime], ...] = ()
    milestone: str | None = None


@dataclass(frozen=True)
class OutboxChange:
    """Add a notification to send (``message`` set), or remove it once its outcome is known."""

    notification_id: str
    case_id: str
    message: dict[str, Any] | None = None


def timer_change(event: EventEnvelope) -> TimerChange | None:
    """How ``event`` changes the SLA timers, if it does."""
    data, case = event.data, event.case_id
    if event.type in _CLOCK_RUNS:
        due = tuple((m, datetime.fromisoformat(at)) for m, at in data["due"].items())
        return TimerChange(case, data["sla"], data["run"], due)
    if event.type in _CLOCK_HALTS:
        return TimerChange(case, data["sla"])
    if event.type == _WARNED:
        return TimerChange(case, data["sla"], data["run"], milestone=data["milestone"])
    if event.type == _BREACHED:
        return TimerChange(case, data["sla"], data["run"], milestone="deadline")
    return None


def outbox_change(event: EventEnvelope) -> OutboxChange | None:
    """How ``event`` changes the notification outbox, if it does."""
    data = event.data
    if event.type == _REQUESTED:
        message = {k: data[k] for k in ("notification", "channel", "recipients", "subject", "body")}
        message.update(target=data["target"], case_type=event.case_type)
        return OutboxChange(data["notification_id"], event.case_id, message)
    if event.type in _DELIVERED:
        return OutboxChange(data["notification_id"], event.case_id)
    return None


SLA_TIMERS = Table(
    name="sla_timers",
    columns=(
        Column("case_id", "uuid NOT NULL"),
        Column("sla", "text NOT NULL"),
        Column("milestone", "text NOT NULL"),
        Column("run", "integer NOT NULL"),
        Column("due_at", "timestamptz NOT NULL"),
    ),
    key=("case_id", "sla", "milestone"),
    indexes=(("due", "due_at"),),
)
NOTIFICATION_OUTBOX = Table(
    name="notification_outbox",
    columns=(
        Column("notification_id", "uuid NOT NULL"),
        Column("case_id", "uuid NOT NULL"),
        Column("message", "jsonb NOT NULL"),
    ),
    key=("notification_id",),
    indexes=(("case", "case_id"), ("next", "next_attempt_at")),
    kept=(
        Column("attempts", "integer NOT NULL DEFAULT 0"),
        Column("next_attempt_at", "timestamptz NOT NULL DEFAULT now()"),
        Column("last_error", "text"),
    ),
)


class WorkQueuesProjection(Projection):
    name = "work_queues"
    tables = (SLA_TIMERS, NOTIFICATION_OUTBOX)

    def apply(self, rows: CaseRows, event: EventEnvelope) -> None:
        timer = timer_change(event)
        if timer is not None and timer.milestone is not None:
            drop(rows, SLA_TIMERS, (timer.case_id, timer.sla, timer.milestone))
        elif timer is not None:
            for key in [k for k in rows[SLA_TIMERS.name] if k[1] == timer.sla]:
                drop(rows, SLA_TIMERS, key)
            for milestone, due_at in timer.due:
                put(
                    rows,
                    SLA_TIMERS,
                    {
                        "case_id": timer.case_id,
                        "sla": timer.sla,
                        "milestone": milestone,
                        "run": timer.run,
                        "due_at": due_at,
                    },
                )
        outbox = outbox_change(event)
        if outbox is not None and outbox.message is not None:
            put(
                rows,
                NOTIFICATION_OUTBOX,
                {
                    "notification_id": outbox.notification_id,
                    "case_id": outbox.case_id,
                    "message": outbox.message,
                },
            )
        elif outbox is not None:
            drop(rows, NOTIFICATION_OUTBOX, (outbox.notification_id,))
