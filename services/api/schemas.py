"""Request and response bodies of the HTTP API (requests refuse unknown fields)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain.case import MAX_NOTE, MAX_TITLE

# Text must be storable everywhere a case travels: PostgreSQL text and jsonb columns refuse
# NUL, and UTF-8 cannot encode a lone surrogate (JSON lets a client send "\ud800").
NO_NUL = r"^[^\x00]*$"
NO_NUL_MESSAGE = "must not contain NUL (\\u0000) characters"
MAX_FIELDS_DEPTH = 32


def _encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text; it holds a lone surrogate") from None
    return value


def _storable(value: str, where: str) -> None:
    if "\x00" in value:
        raise ValueError(f"{where}{NO_NUL_MESSAGE}")
    try:
        _encodable(value)
    except ValueError as error:
        raise ValueError(f"{where}{error}") from None


def _storable_json(fields: dict[str, Any]) -> dict[str, Any]:
    """Refuse field values that could not be stored or published as they were sent."""
    pending: list[tuple[Any, str, int]] = [(fields, "", 0)]
    while pending:
        value, path, depth = pending.pop()
        if depth > MAX_FIELDS_DEPTH:
            raise ValueError(f"nests deeper than {MAX_FIELDS_DEPTH} levels at {path}")
        if isinstance(value, dict):
            for key, item in value.items():
                _storable(key, f"the key at {path or 'the top'} ")
                pending.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            _storable(value, f"{path}: ")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{path}: {value} is not a number JSON can carry; send a finite one")
    return fields


# A string the event store, the read models and Kafka consumers can all hold.
Text = Annotated[str, Field(pattern=NO_NUL), AfterValidator(_encodable)]
Fields = Annotated[
    dict[str, Any],
    AfterValidator(_storable_json),
    Field(
        description="the case's field values: any JSON object, without NUL characters or "
        f"non-finite numbers, nested at most {MAX_FIELDS_DEPTH} levels"
    ),
]


class _Request(BaseModel):
    # strict: "1", 1.0 or true are not a version; unknown fields are refused, not ignored
    model_config = ConfigDict(extra="forbid", strict=True)


class _Command(_Request):
    expected_version: int | None = Field(
        default=None,
        ge=1,
        description="the version you last read; if the case has moved on, the answer is 409",
    )


class CaseCreate(_Request):
    case_type: Text = Field(min_length=1, max_length=100, examples=["generic"])
    title: Text = Field(min_length=1, max_length=MAX_TITLE)
    fields: Fields = Field(default_factory=dict)
    party_id: Text | None = Field(default=None, max_length=200)


class AssignCommand(_Command):
    assignee: Text | None = Field(max_length=200, description="null unassigns the case")


class StatusCommand(_Command):
    status: Text = Field(min_length=1, max_length=100)
    reason: Text | None = Field(default=None, max_length=MAX_NOTE)


class NoteCommand(_Command):
    text: Text = Field(min_length=1, max_length=MAX_NOTE)


class ReasonCommand(_Command):
    reason: Text = Field(min_length=1, max_length=MAX_NOTE)


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
