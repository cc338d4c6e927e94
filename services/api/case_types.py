"""Case-type administration routes: draft, validate, publish, discard, list, show, diff,
history, and the migration of open cases to a newer version (dry run first)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, status

from domain.definition import label_in
from services.api.admin_schemas import (
    CaseTypeCreated,
    CaseTypeDiff,
    CaseTypeEntry,
    CaseTypeEvent,
    CaseTypePublic,
    CaseTypeVersionPublic,
    MigrationCommand,
    MigrationReport,
    PublishCommand,
    ValidationReport,
    VersionDiscarded,
    VersionSummary,
)
from services.api.deps import Caller, CurrentCaller, Deps, authenticated, known_query_only, require
from services.api.language import Languages
from services.api.schemas import NO_NUL, ErrorBody
from services.auth import Role
from services.case_type_document import read_document
from services.migrations import check_state_map, migrate_cases

ADMIN = frozenset({Role.ADMIN})
_errors: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 415, 422)
}
router = APIRouter(
    prefix="/case-types",
    tags=["case types"],
    responses=_errors,
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)
Name = Annotated[str, Path(max_length=63, pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Version = Annotated[int, Path(ge=1, le=1_000_000)]
Admin = Annotated[Caller, Depends(require(ADMIN, "administer case types"))]
_DOCUMENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
        "description": "the case-type document (docs/case-types.md), in YAML or JSON",
    }
}


async def _document(request: Request) -> dict[str, Any]:
    body = await request.body()
    return read_document(body, request.headers.get("content-type", ""))


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=_DOCUMENT_BODY)
def create_draft(
    deps: Deps,
    caller: Admin,
    document: Annotated[dict[str, Any], Depends(_document)],
    reason: Annotated[str, Query(min_length=1, max_length=500, pattern=NO_NUL)] = "new draft",
) -> CaseTypeCreated:
    """Save a document as the next draft version of its case type (created if new). The
    answer lists the problems validation would report; a draft with problems is kept, but
    cannot be published until a new draft fixes them."""
    name, version, problems = deps.case_types.draft(document, reason, caller.context(None))
    return CaseTypeCreated(name=name, version=version, status="draft", problems=problems)


@router.get("")
def list_case_types(deps: Deps, _: CurrentCaller, languages: Languages) -> list[CaseTypeEntry]:
    """Every case type, its current published version and its latest version."""
    return [
        CaseTypeEntry(
            name=s.name,
            label=label_in(s.labels, languages, s.name),
            current_version=s.current,
            latest_version=s.latest,
        )
        for s in deps.case_types.summaries()
    ]


@router.get("/{name}")
def show_case_type(name: Name, deps: Deps, _: CurrentCaller) -> CaseTypePublic:
    """A case type's versions, with who drafted and published each and why."""
    case_type = deps.case_types.case_type(name)
    return CaseTypePublic(
        name=name,
        current_version=case_type.current,
        versions=[
            VersionSummary(
                version=r.version,
                status=r.status,
                author=r.author,
                reason=r.reason,
                validated=r.problems is not None,
                problems=r.problems or [],
                published_by=r.published_by,
            )
            for r in case_type.versions.values()
        ],
    )


@router.get("/{name}/versions/{version}")
def show_version(
    name: Name, version: Version, deps: Deps, _: CurrentCaller
) -> CaseTypeVersionPublic:
    """One version's document, as stored."""
    record = deps.case_types.version(name, version)
    return CaseTypeVersionPublic(
        name=name, version=version, status=record.status, document=record.document
    )


@router.post("/{name}/versions/{version}/validate")
def validate(name: Name, version: Version, deps: Deps, caller: Admin) -> ValidationReport:
    """Check a version and record the result; every problem is listed with its path."""
    problems = deps.case_types.validate(name, version, caller.context(None))
    return ValidationReport(name=name, version=version, valid=not problems, problems=problems)


@router.post("/{name}/versions/{version}/publish")
def publish(
    name: Name, version: Version, body: PublishCommand, deps: Deps, caller: Admin
) -> CaseTypeCreated:
    """Publish a valid draft: new cases of this type open under it. Open cases stay on the
    version they opened under until migrated."""
    deps.case_types.publish(name, version, body.reason, caller.context(None))
    return CaseTypeCreated(name=name, version=version, status="published", problems=[])


@router.delete("/{name}/versions/{version}")
def discard(
    name: Name,
    version: Version,
    deps: Deps,
    caller: Admin,
    reason: Annotated[str, Query(min_length=1, max_length=500, pattern=NO_NUL)],
) -> VersionDiscarded:
    """Discard an unpublished draft: it leaves every list, its number is not used again, and
    the history keeps who discarded it and why. Published versions cannot be discarded."""
    author = deps.case_types.discard(name, version, reason, caller.context(None))
    return VersionDiscarded(
        name=name, version=version, status="discarded", discarded_by=author, reason=reason
    )


@router.get("/{name}/diff")
def diff(
    name: Name,
    deps: Deps,
    _: CurrentCaller,
    old: Annotated[int, Query(alias="from", ge=1)],
    new: Annotated[int, Query(alias="to", ge=1)],
) -> CaseTypeDiff:
    """What changed between two versions, as a JSON Patch (RFC 6902)."""
    return CaseTypeDiff(name=name, old=old, new=new, patch=deps.case_types.diff(name, old, new))


@router.get("/{name}/history")
def history(name: Name, deps: Deps, _: CurrentCaller) -> list[CaseTypeEvent]:
    """Every change to the case type: drafts, validations, publications, discarded drafts;
    who, when, why."""
    return [
        CaseTypeEvent(
            type=type(event).__name__,
            version=getattr(event, "version", None),
            recorded_at=event.timestamp,
            actor=str(getattr(event, "context", {}).get("actor_id", "unknown")),
            reason=getattr(event, "reason", None),
            problems=getattr(event, "problems", None),
        )
        for event in deps.case_types.history(name)
    ]


@router.post("/{name}/migrations")
def migrate(name: Name, body: MigrationCommand, deps: Deps, caller: Admin) -> MigrationReport:
    """Move open cases of this type to a newer published version, mapping their states.
    ``dry_run`` (the default) only reports what would change, case by case."""
    new = deps.case_types.definition(name, body.to_version)
    check_state_map(new, body.state_map)
    ids: list[UUID] = deps.cases.open_case_ids(name, body.to_version)
    reports = migrate_cases(
        deps.ledger, ids, new, body.state_map, body.dry_run, caller.context(None)
    )
    return MigrationReport.of(name, body.to_version, body.dry_run, reports)
