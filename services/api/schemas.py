"""Request and response bodies of the HTTP API (requests refuse unknown fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from domain.case import MAX_NOTE, MAX_TITLE


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Command(_Request):
    expected_version: int | None = Field(
        default=None,
        ge=1,
        description="the version you last read; if the case has moved on, the answer is 409",
    )


class CaseCreate(_Request):
    case_type: str = Field(min_length=1, max_length=100, examples=["generic"])
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    fields: dict[str, Any] = Field(default_factory=dict)
    party_id: str | None = Field(default=None, max_length=200)


class AssignCommand(_Command):
    assignee: str | None = Field(max_length=200, description="null unassigns the case")


class StatusCommand(_Command):
    status: str = Field(min_length=1, max_length=100)
    reason: str | None = Field(default=None, max_length=MAX_NOTE)


class NoteCommand(_Command):
    text: str = Field(min_length=1, max_length=MAX_NOTE)


class ReasonCommand(_Command):
    reason: str = Field(min_length=1, max_length=MAX_NOTE)


class CommandAccepted(BaseModel):
    id: UUID
    version: int


class NotePublic(BaseModel):
    version: int
    text: str
    author: str | None


class CasePublic(BaseModel):
    id: UUID
    case_type: str
    case_type_version: int
    title: str
    status: str
    assignee: str | None
    party_id: str | None
    fields: dict[str, Any]
    notes: list[NotePublic]
    closed_reason: str | None
    version: int
    opened_at: datetime
    updated_at: datetime


class ActorPublic(BaseModel):
    id: str
    role: str


class HistoryEntry(BaseModel):
    version: int
    type: str
    recorded_at: datetime
    occurred_at: datetime
    actor: ActorPublic
    correlation_id: str
    data: dict[str, Any]


class CaseSummary(BaseModel):
    id: UUID
    case_type: str
    title: str
    status: str
    assignee: str | None
    party_id: str | None
    version: int
    opened_at: datetime
    updated_at: datetime


class CasePage(BaseModel):
    cases: list[CaseSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= to get the next page")


class ErrorBody(BaseModel):
    detail: str
    code: str
    hint: str = ""
