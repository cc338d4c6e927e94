"""The case list: one row per case, for handlers' and managers' lists and filters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from domain.case import Case
from domain.envelope import EventEnvelope
from domain.event_names import event_type

OPENED = event_type(Case.Opened)


@dataclass(frozen=True)
class CaseRow:
    """A row of the ``case_list`` read model (documented in docs/read-models.md)."""

    case_id: str
    case_type: str
    case_type_version: int
    title: str
    status: str
    assignee: str | None
    party_id: str | None
    version: int
    opened_at: datetime
    updated_at: datetime
    last_position: int
    priority: str = "normal"
    queue: str | None = None
    escalations: int = 0
    sla_breaches: int = 0
    fields: dict[str, Any] = field(default_factory=dict)


def apply(row: CaseRow | None, event: EventEnvelope) -> CaseRow:
    """The row after ``event``; ``row`` is the row at version ``event.case_version - 1``."""
    if row is None:
        if event.type != OPENED:
            raise ValueError(f"case {event.case_id} has no row, but got {event.type}")
        data = event.data
        return CaseRow(
            case_id=event.case_id,
            case_type=event.case_type,
            case_type_version=event.case_type_version,
            title=data["title"],
            status=data["status"],
            assignee=None,
            party_id=data.get("party_id"),
            fields=dict(data.get("fields") or {}),
            version=event.case_version,
            opened_at=event.recorded_at,
            updated_at=event.recorded_at,
            last_position=event.global_position,
        )
    return replace(
        _changed(row, event),
        case_type_version=event.case_type_version,
        version=event.case_version,
        updated_at=event.recorded_at,
        last_position=event.global_position,
    )


def _changed(row: CaseRow, event: EventEnvelope) -> CaseRow:
    change = _CHANGES.get(event.type)
    return change(row, event.data) if change else row


_BY_CLASS: dict[type[Case.Event], Callable[[CaseRow, dict[str, Any]], CaseRow]] = {
    Case.Assigned: lambda row, data: replace(row, assignee=data["assignee"]),
    Case.StatusChanged: lambda row, data: replace(row, status=data["to_status"]),
    Case.Migrated: lambda row, data: replace(row, status=data["to_status"]),
    Case.Closed: lambda row, data: replace(row, status="closed"),
    Case.Reopened: lambda row, data: replace(row, status=data["status"]),
    Case.FieldsUpdated: lambda row, data: replace(row, fields={**row.fields, **data["changes"]}),
    Case.PriorityChanged: lambda row, data: replace(row, priority=data["priority"]),
    Case.RoutedToQueue: lambda row, data: replace(row, queue=data["queue"]),
    Case.Escalated: lambda row, data: replace(row, escalations=data["level"]),
    Case.SlaBreached: lambda row, data: replace(row, sla_breaches=row.sla_breaches + 1),
}
_CHANGES = {event_type(kind): change for kind, change in _BY_CLASS.items()}
