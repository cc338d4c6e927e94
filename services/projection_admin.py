"""What operators see and do with the projections over HTTP: where each stands, what it set
aside, and a retry after a fix. ``infra.projection_set.ProjectionSet`` implements it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True)
class ProjectionOverview:
    name: str
    tables: list[str]
    position: int
    applied_events: int
    lag: int
    held_cases: int
    rebuilt_at: datetime | None


@dataclass(frozen=True)
class DeadLetter:
    """An event a projection could not apply; its case waits behind it in that projection."""

    projection: str
    case_id: str
    case_version: int
    global_position: int
    event_type: str
    error: str
    recorded_at: datetime
    retried_at: datetime | None


@dataclass(frozen=True)
class RetryOutcome:
    retried: int
    moved_on: int
    applied: int


class ProjectionAdmin(Protocol):
    def overview(self) -> list[ProjectionOverview]: ...

    def held(self, name: str | None, limit: int) -> list[DeadLetter]:
        """Events set aside and not retried yet (``ProjectionNotFound`` for a bad name)."""
        ...

    def retry(self, name: str, case_id: UUID | None = None) -> RetryOutcome: ...
