"""Case routes: open a case, run commands on it, read it, its history, and the case list."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, status

from domain.case import Case
from domain.envelope import envelope_for
from services.api.deps import (
    Caller,
    CurrentCaller,
    Deps,
    authenticated,
    known_query_only,
    require,
)
from services.api.schemas import (
    NO_NUL,
    AssignCommand,
    CaseCreate,
    CasePage,
    CasePublic,
    CaseSummary,
    CommandAccepted,
    ErrorBody,
    HistoryEntry,
    NoteCommand,
    NotePublic,
    ReasonCommand,
    StatusCommand,
)
from services.auth import OPEN_CASE, REOPEN_CASE, UPDATE_CASE, WORK_CASE
from services.queries import CaseFilter, PageCursor

_errors: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422)
}
# Authentication first (401), then unknown query parameters (422), then the route's own checks.
router = APIRouter(
    prefix="/cases",
    tags=["cases"],
    responses=_errors,
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)
Correlation = Annotated[str | None, Header(alias="X-Correlation-ID", max_length=200)]


def _accepted(case: Case) -> CommandAccepted:
    return CommandAccepted(id=case.id, version=case.version)


@router.post("", status_code=status.HTTP_201_CREATED)
def open_case(
    body: CaseCreate,
    deps: Deps,
    caller: Annotated[Caller, Depends(require(OPEN_CASE, "open cases"))],
    correlation_id: Correlation = None,
) -> CommandAccepted:
    """Open a case of a case type; answers its id and version 1."""
    case = deps.ledger.open_case(
        body.case_type, body.title, body.fields, body.party_id, caller.context(correlation_id)
    )
    return _accepted(case)


@router.post("/{case_id}/assign")
def assign(
    case_id: UUID,
    body: AssignCommand,
    deps: Deps,
    caller: Annotated[Caller, Depends(require(WORK_CASE, "assign cases"))],
    correlation_id: Correlation = None,
) -> CommandAccepted:
    """Give the case to a handler, or unassign it with ``null``."""
    context = caller.context(correlation_id)
    return _accepted(deps.ledger.assign(case_id, body.assignee, context, body.expected_version))


@router.post("/{case_id}/status")
def change_status(
    case_id: UUID,
    body: StatusCommand,
    deps: Deps,
    caller: Annotated[Caller, Depends(require(UPDATE_CASE, "change a case's status"))],
    correlation_id: Correlation = None,
) -> CommandAccepted:
    """Move an open case to another status of its case type."""
    context = caller.context(correlation_id)
    case = deps.ledger.change_status(
        case_id, body.status, body.reason, context, body.expected_version
    )
    return _accepted(case)


@router.post("/{case_id}/notes")
def add_note(
    case_id: UUID,
    body: NoteCommand,
    deps: Deps,
    caller: Annotated[Caller, Depends(require(UPDATE_CASE, "add notes"))],
    correlation_id: Correlation = None,
) -> CommandAccepted:
    """Write a note on the case."""
    context = caller.context(correlation_id)
    return _accepted(deps.ledger.add_note(case_id, body.text, context, body.expected_version))


@router.post("/{case_id}/close")
def close(
    case_id: UUID,
    body: ReasonCommand,
    deps: Deps,
    caller: Annotated[Caller, Depends(require(WORK_CASE, "close cases"))],
    correlation_id: Correlation = None,
) -> CommandAccepted:
    """Close the case, giving the reason."""
    context = caller.context(correlation_id)
    return _accepted(deps.ledger.close_case(case_id, body.reason, context, body.expected_version))


@router.post("/{case_id}/reopen")
def reopen(
    case_id: UUID,
    body: ReasonCommand,
    deps: Deps,
    caller: Annotated[Caller, Depends(require(REOPEN_CASE, "reopen cases"))],
    correlation_id: Correlation = None,
) -> CommandAccepted:
    """Reopen a closed case, giving the reason."""
    context = caller.context(correlation_id)
    return _accepted(deps.ledger.reopen_case(case_id, body.reason, context, body.expected_version))


@router.get("/{case_id}")
def get_case(case_id: UUID, deps: Deps, _: CurrentCaller) -> CasePublic:
    """The case as its events make it now."""
    case = deps.ledger.get_case(case_id)
    return CasePublic(
        id=case.id,
        case_type=case.case_type,
        case_type_version=case.case_type_version,
        title=case.title,
        status=case.status,
        assignee=case.assignee,
        party_id=case.party_id,
        fields=case.fields,
        notes=[NotePublic(**note) for note in case.notes],
        closed_reason=case.closed_reason,
        version=case.version,
        opened_at=case.created_on,
        updated_at=case.modified_on,
    )


@router.get("/{case_id}/history")
def history(case_id: UUID, deps: Deps, _: CurrentCaller) -> list[HistoryEntry]:
    """Every change to the case: who, when, what and why, oldest first."""
    entries = []
    for event in deps.ledger.history(case_id):
        envelope = envelope_for(event, global_position=0)
        entries.append(
            HistoryEntry(
                version=envelope.case_version,
                type=envelope.type,
                recorded_at=envelope.recorded_at,
                occurred_at=envelope.occurred_at,
                actor={"id": envelope.actor.id, "role": envelope.actor.role},
                correlation_id=envelope.correlation_id,
                data=envelope.data,
            )
        )
    return entries


@router.get("")
def list_cases(
    deps: Deps,
    _: CurrentCaller,
    status: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    case_type: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    assignee: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500, pattern=NO_NUL)] = None,
) -> CasePage:
    """The case list from the projection, newest first, with filters and a page cursor."""
    where = CaseFilter(status=status, case_type=case_type, assignee=assignee)
    page = deps.cases.list_cases(where, limit, PageCursor.decode(cursor) if cursor else None)
    return CasePage(
        cases=[
            CaseSummary(
                id=UUID(row.case_id),
                case_type=row.case_type,
                title=row.title,
                status=row.status,
                assignee=row.assignee,
                party_id=row.party_id,
                version=row.version,
                opened_at=row.opened_at,
                updated_at=row.updated_at,
            )
            for row in page.cases
        ],
        next_cursor=page.next_cursor.encode() if page.next_cursor else None,
    )
