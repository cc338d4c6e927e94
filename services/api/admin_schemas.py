"""Request and response bodies of the case-type administration routes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field

from services.api.schemas import Text, _Request
from services.migrations import CaseMigration


class CaseTypeCreated(BaseModel):
    name: str
    version: int
    status: str = Field(description="draft or published")
    problems: list[str] = Field(description="what validation finds wrong; empty when valid")


class CaseTypeEntry(BaseModel):
    name: str
    label: str = Field(description="in the language asked for with Accept-Language")
    current_version: int | None = Field(description="the published version new cases open under")
    latest_version: int


class VersionSummary(BaseModel):
    version: int
    status: str
    author: str
    reason: str
    validated: bool
    problems: list[str]
    published_by: str | None


class CaseTypePublic(BaseModel):
    name: str
    current_version: int | None
    versions: list[VersionSummary]


class CaseTypeVersionPublic(BaseModel):
    name: str
    version: int
    status: str
    document: dict[str, Any]


class VersionDiscarded(BaseModel):
    name: str
    version: int
    status: str = Field(description="discarded")
    discarded_by: str
    reason: str


class ValidationReport(BaseModel):
    name: str
    version: int
    valid: bool
    problems: list[str]


class PublishCommand(_Request):
    reason: Text = Field(min_length=1, max_length=2000, description="why, for the audit trail")


class CaseTypeDiff(BaseModel):
    name: str
    old: int = Field(serialization_alias="from")
    new: int = Field(serialization_alias="to")
    patch: list[dict[str, Any]] = Field(description="JSON Patch (RFC 6902) from old to new")


class CaseTypeEvent(BaseModel):
    type: str = Field(
        description="Created, DraftSaved, DraftValidated, Published or DraftDiscarded"
    )
    version: int | None
    recorded_at: datetime
    actor: str
    reason: str | None
    problems: list[str] | None


StateName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", max_length=63)]


class MigrationCommand(_Request):
    to_version: int = Field(ge=1, description="a published version of the case type")
    state_map: dict[StateName, StateName] = Field(
        default_factory=dict,
        description="old state -> new state; states not listed keep their name",
    )
    dry_run: bool = Field(default=True, description="only report what would change")


class CaseMigrationPublic(BaseModel):
    case_id: UUID
    from_version: int
    from_status: str
    to_status: str | None
    outcome: str = Field(description="migrated, would migrate, or skipped")
    problems: list[str]
    warnings: list[str]


class MigrationReport(BaseModel):
    name: str
    to_version: int
    dry_run: bool
    counts: dict[str, int]
    cases: list[CaseMigrationPublic]

    @classmethod
    def of(
        cls, name: str, to_version: int, dry_run: bool, reports: Sequence[CaseMigration]
    ) -> MigrationReport:
        counts: dict[str, int] = {}
        for report in reports:
            counts[report.outcome] = counts.get(report.outcome, 0) + 1
        cases = [CaseMigrationPublic(**vars(report)) for report in reports]
        return cls(name=name, to_version=to_version, dry_run=dry_run, counts=counts, cases=cases)
