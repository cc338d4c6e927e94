"""Timers and outboxes derived from case events: the SLA milestones still to come and the
notifications still to send. Pure functions; ``infra`` applies their changes in the same
transaction as the case list, so each event changes them exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.case import Case
from domain.envelope import EventEnvelope
from domain.event_names import event_type

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
