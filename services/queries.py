"""Queries over read models: what the API asks, independent of how the view is stored."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.errors import InvalidCommand
from projections.case_list import CaseRow


@dataclass(frozen=True)
class CaseFilter:
    """Filters of the case list; ``None`` means any."""

    status: str | None = None
    case_type: str | None = None
    assignee: str | None = None
    queue: str | None = None
    priority: str | None = None


@dataclass(frozen=True)
class PageCursor:
    """Where the previous page ended: cases are listed newest first."""

    opened_at: datetime
    case_id: str

    def encode(self) -> str:
        raw = json.dumps([self.opened_at.isoformat(), self.case_id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> PageCursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            opened_at, case_id = json.loads(raw)
            if not isinstance(opened_at, str) or not isinstance(case_id, str):
                raise TypeError("a cursor holds two strings")  # a forged one may hold anything
            return cls(datetime.fromisoformat(opened_at), str(UUID(case_id)))
        except (ValueError, TypeError) as error:
            raise InvalidCommand(
                f"the cursor {token[:40]!r} is not one this API gave out",
                hint="pass the next_cursor of the previous page unchanged, or omit it",
            ) from error


@dataclass(frozen=True)
class CaseListPage:
    cases: list[CaseRow]
    next_cursor: PageCursor | None


class CaseListQueries(Protocol):
    """The case list, as the API reads it."""

    def list_cases(
        self, where: CaseFilter, limit: int, cursor: PageCursor | None
    ) -> CaseListPage: ...

    def open_case_ids(self, case_type: str, below_version: int) -> list[UUID]:
        """Cases of ``case_type`` not closed, pinned to a version below ``below_version``."""
        ...
