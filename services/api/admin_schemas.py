"""Request and response bodies of the case-type administration routes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field

from domain.case_type import VersionRecord
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
    status: str = Field(description="draft or published")
    author: str = Field(description="who drafted it")
    reason: str
    validated: bool
    problems: list[str]
    published_by: str | None
    review: str = Field(
        description="four eyes: draft (not submitted), submitted (awaits a reviewer), approved "
        "(may be published), rejected (see review_comment), or waived (published without "
        "review by the system installer or an operator who said so)"
    )
    editors: list[str] = Field(
        description="who saved its document (drafted or edited it): none of them may approve it"
    )
    submitted_by: str | None = Field(description="who submitted it for the review under way")
    reviewed_by: str | None = Field(description="who approved or rejected it (or waived review)")
    review_comment: str | None = Field(
        description="the comment of the latest review step (submission, approval, rejection)"
    )

    @classmethod
    def of(cls, record: VersionRecord) -> VersionSummary:
        return cls(
            version=record.version,
            status=record.status,
            author=record.author,
            reason=record.reason,
            validated=record.problems is not None,
            problems=record.problems or [],
            published_by=record.published_by,
            review=record.review,
            editors=record.editors,
            submitted_by=record.submitted_by,
            reviewed_by=record.reviewed_by,
            review_comment=record.review_comment,
        )


class VersionState(VersionSummary):
    """Where one version stands after a change to it (edit, submit, approve, reject)."""

    name: str

    @classmethod
    def named(cls, name: str, record: VersionRecord) -> VersionState:
        return cls(name=name, **VersionSummary.of(record).model_dump())


class ReviewCommand(_Request):
    comment: Text = Field(
        min_length=1,
        max_length=2000,
        description="what the submitter asks the reviewer to look at, or why the reviewer "
        "approves or rejects; kept in the case type's history",
    )


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
        description="Created, DraftSaved, DraftEdited, DraftValidated, DraftSubmitted, "
        "DraftApproved, DraftRejected, ReviewWaived, Published or DraftDiscarded"
    )
    version: int | None
    recorded_at: datetime
    actor: str
    reason: str | None
    problems: list[str] | None
    comment: str | None = Field(
        default=None, description="the comment of a submission, approval or rejection"
    )


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
