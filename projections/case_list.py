"""The case list: one row per case, for handlers' and managers' lists and filters."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from domain.envelope import EventEnvelope


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


def apply(row: CaseRow | None, event: EventEnvelope) -> CaseRow:
    """The row after ``event``; ``row`` is the row at version ``event.case_version - 1``."""
    if row is None:
        if event.type != "CaseOpened":
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
    data = event.data
    if event.type == "CaseAssigned":
        return replace(row, assignee=data["assignee"])
    if event.type in ("CaseStatusChanged",):
        return replace(row, status=data["to_status"])
    if event.type == "CaseClosed":
        return replace(row, status="closed")
    if event.type == "CaseReopened":
        return replace(row, status=data["status"])
    return row
