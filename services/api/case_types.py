"""Case-type administration routes: draft, edit, validate, review (submit, approve, reject),
publish, discard, list, show, diff, history, and the migration of open cases to a newer
version (dry run first). Which roles author, review and publish is configuration
(``CaseTypeRoles``)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool  # POST /check
from pydantic import BaseModel, Field  # POST /check

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
    ReviewCommand,
    ValidationReport,
    VersionDiscarded,
    VersionState,
    VersionSummary,
)
from services.api.deps import (
    Caller,
    CurrentCaller,
    Deps,
    authenticated,
    known_query_only,
    require,
    require_configured,
)
from services.api.language import Languages
from services.api.schemas import NO_NUL, ErrorBody
from services.auth import Role
from services.case_type_checks import issues_of  # POST /check (below)
from services.case_type_document import (  # POST /check (below)
    InvalidDocument,
    issues_in,
    read_document,
)
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
Author = Annotated[
    Caller,
    Depends(require_configured(lambda deps: deps.case_type_roles.authors, "author case types")),
]
Reviewer = Annotated[
    Caller,
    Depends(require_configured(lambda deps: deps.case_type_roles.reviewers, "review case types")),
]
Publisher = Annotated[
    Caller,
    Depends(require_configured(lambda deps: deps.case_type_roles.publishers, "publish case types")),
]
Reason = Annotated[str, Query(min_length=1, max_length=500, pattern=NO_NUL)]
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
    caller: Author,
    document: Annotated[dict[str, Any], Depends(_document)],
    reason: Reason = "new draft",
) -> CaseTypeCreated:
    """Save a document as the next draft version of its case type (created if new). A
    document with problems is refused (422, every problem listed with its path) and stores
    nothing: it uses up no version number. Change a draft with
    ``PUT /case-types/{name}/versions/{version}``; then submit it for review."""
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
    """A case type's versions (discarded drafts are not listed: the history names them),
    with who drafted, edited, submitted, reviewed and published each, and why."""
    case_type = deps.case_types.case_type(name)
    return CaseTypePublic(
        name=name,
        current_version=case_type.current,
        versions=[VersionSummary.of(r) for r in case_type.versions.values()],
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
def validate(name: Name, version: Version, deps: Deps, caller: Author) -> ValidationReport:
    """Check a version and record the result; every problem is listed with its path."""
    problems = deps.case_types.validate(name, version, caller.context(None))
    return ValidationReport(name=name, version=version, valid=not problems, problems=problems)


# -- drafts, review and publication (docs/case-types.md, "Drafts, review and publication") --


@router.put("/{name}/versions/{version}", openapi_extra=_DOCUMENT_BODY)
def edit_draft(
    name: Name,
    version: Version,
    deps: Deps,
    caller: Author,
    document: Annotated[dict[str, Any], Depends(_document)],
    reason: Reason = "edited",
) -> VersionState:
    """Replace a draft's document, keeping its number. A document with problems is refused
    (422, every problem listed) and nothing is stored. A submitted or approved draft goes
    back to ``draft``: its approval is void. Saving the same document again changes nothing.
    Published versions never change (409)."""
    deps.case_types.edit(name, version, document, reason, caller.context(None))
    return VersionState.named(name, deps.case_types.version(name, version))


@router.post("/{name}/versions/{version}/submit")
def submit(
    name: Name, version: Version, body: ReviewCommand, deps: Deps, caller: Author
) -> VersionState:
    """Submit a draft for review, with a comment for the reviewer. Refused (422) if it has
    problems, and (409) if it is already submitted or approved."""
    deps.case_types.submit(name, version, body.comment, caller.context(None))
    return VersionState.named(name, deps.case_types.version(name, version))


@router.post("/{name}/versions/{version}/approve")
def approve(
    name: Name, version: Version, body: ReviewCommand, deps: Deps, caller: Reviewer
) -> VersionState:
    """Approve a submitted draft, with a comment: it may then be published. Four eyes:
    whoever edited or submitted the draft cannot approve it (409: ask another reviewer)."""
    deps.case_types.approve(name, version, body.comment, caller.context(None))
    return VersionState.named(name, deps.case_types.version(name, version))


@router.post("/{name}/versions/{version}/reject")
def reject(
    name: Name, version: Version, body: ReviewCommand, deps: Deps, caller: Reviewer
) -> VersionState:
    """Send a submitted draft back to its authors, saying why in the comment. They edit it
    and submit it again. Whoever edited or submitted it cannot reject it (409)."""
    deps.case_types.reject(name, version, body.comment, caller.context(None))
    return VersionState.named(name, deps.case_types.version(name, version))


@router.post("/{name}/versions/{version}/publish")
def publish(
    name: Name, version: Version, body: PublishCommand, deps: Deps, caller: Publisher
) -> CaseTypeCreated:
    """Publish an approved draft: new cases of this type open under it. A draft that was not
    approved is refused (409) and nothing is stored; the draft is validated again first
    (422 with every problem). Open cases stay on the version they opened under until
    migrated."""
    deps.case_types.publish(name, version, body.reason, caller.context(None))
    return CaseTypeCreated(name=name, version=version, status="published", problems=[])


@router.delete("/{name}/versions/{version}")
def discard(
    name: Name,
    version: Version,
    deps: Deps,
    caller: Author,
    reason: Reason,
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
    """Every change to the case type: drafts, edits, validations, submissions, approvals,
    rejections, waived reviews, publications, discarded drafts; who, when, why."""
    return [
        CaseTypeEvent(
            type=type(event).__name__,
            version=getattr(event, "version", None),
            recorded_at=event.timestamp,
            actor=str(getattr(event, "context", {}).get("actor_id", "unknown")),
            reason=getattr(event, "reason", None),
            problems=getattr(event, "problems", None),
            comment=getattr(event, "comment", None),
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


# -- POST /case-types/check: validation as you type (stateless) -------------------------------


class IssuePublic(BaseModel):
    """One problem of a document, at its place."""

    path: str = Field(description="where, as problems name it: rules[2].if ('' for the whole)")
    pointer: str = Field(description="the same place as a JSON pointer: /rules/2/if")
    message: str = Field(description="what is wrong")
    hint: str = Field(description="how to write it, when that helps ('' otherwise)")


class CheckReport(BaseModel):
    """Every problem of a document, as text lines (like drafts answer) and at their places."""

    valid: bool
    problems: list[str]
    issues: list[IssuePublic]


_CHECK_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            # any YAML text is a document to check (its problems are the answer), so no type
            "application/yaml": {"schema": {}},
            "application/json": {"schema": {"type": "object"}},
        },
        "description": "the case-type document (docs/case-types.md), in YAML or JSON",
    }
}


@router.post("/check", openapi_extra=_CHECK_BODY)
async def check_document(request: Request, deps: Deps, _: Author) -> CheckReport:
    """Check a case-type document without storing anything: every problem at once
    (structure, references, expressions and their types), each at its place, for the studio
    to call as you type. YAML that cannot even be read (a syntax error, say) answers
    ``valid: false`` with that problem too; no body, JSON that is not an object, or a media
    type other than YAML or JSON is refused (422) like a draft."""
    body = await request.body()
    try:
        document = read_document(body, request.headers.get("content-type", ""))
        issues = await run_in_threadpool(
            issues_in, document, deps.case_types.known(), deps.case_types.policy
        )
    except InvalidDocument as error:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not body.strip() or "yaml" not in media:
            raise  # no document, or JSON that is not an object: refused (422) like a draft
        issues = issues_of(error.problems)
    return CheckReport(
        valid=not issues,
        problems=[str(issue) for issue in issues],
        issues=[
            IssuePublic(path=i.path, pointer=i.pointer, message=i.message, hint=i.hint)
            for i in issues
        ],
    )
