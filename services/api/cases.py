"""Case routes: open a case, run commands on it, read it, its history and timeline, and the
case list. What each role may read and do is decided by ``services.case_views``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Response, status
from fastapi.responses import StreamingResponse

from domain.case import Case
from domain.context import CommandContext
from domain.errors import NotAllowed
from services.api.case_search import case_filter
from services.api.csv_stream import _each_within as each_within
from services.api.deps import (
    Caller,
    CurrentCaller,
    Deps,
    authenticated,
    known_query_only,
    require,
)
from services.api.language import Languages
from services.api.schemas import (
    NO_NUL,
    AssignCommand,
    CaseActionsPublic,
    CaseCreate,
    CaseLabels,
    CasePage,
    CasePublic,
    CaseSlaPublic,
    CaseSummary,
    CommandAccepted,
    ErrorBody,
    FieldsCommand,
    HistoryEntry,
    LegalHoldPublic,
    NoteCommand,
    NotePublic,
    ReasonCommand,
    SlaClockPublic,
    TimelineEntryPublic,
    TransitionCommand,
    TransitionPublic,
    _Lineage,
)
from services.audit_export import AuditExport, ExportScope
from services.auth import OPEN_CASE, REOPEN_CASE, UPDATE_CASE, WORK_CASE, Role
from services.case_views import CaseView, Moment, Reader, RowView
from services.idempotency import HEADER, MAX_KEY_LENGTH
from services.queries import CaseFilter, PageCursor
from services.time_travel import parse_moment

_errors: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 503, 504)
}
# Authentication first (401), then unknown query parameters (422), then the route's own checks.
router = APIRouter(
    prefix="/cases",
    tags=["cases"],
    responses=_errors,
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)
Correlation = Annotated[str | None, Header(alias="X-Correlation-ID", max_length=200)]


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            pattern=r"^[\x21-\x7e]+$",
            max_length=MAX_KEY_LENGTH,
            description="makes the command safe to retry: the same key with the same request "
            "answers the first outcome (header Idempotent-Replayed: true) without running it "
            "again; with another request, 409. Keys are kept CASELEDGER_IDEMPOTENCY_KEEP_S "
            "(a day by default).",
        ),
    ] = None,
) -> None:
    """Declares ``Idempotency-Key``; ``services.api.idempotency`` acts on it."""


IDEMPOTENT = [Depends(idempotency_key)]


def _context(caller: Caller, correlation_id: str | None, body: _Lineage) -> CommandContext:
    """The command's context: who, and for integrator keys, where the fact came from and
    when it happened (others may not say so: 403)."""
    context = caller.context(correlation_id)
    if body.source is None and body.occurred_at is None:
        return context
    if caller.role != Role.INTEGRATOR:
        raise NotAllowed(
            f"the role {caller.role.value!r} may not state a source or occurred_at",
            hint="only integrator keys record facts from other systems; leave both out",
        )
    return replace(
        context,
        source_system=body.source.system if body.source else None,
        source_record_id=body.source.record_id if body.source else None,
        occurred_at=body.occurred_at,
    )


def _accepted(case: Case) -> CommandAccepted:
    return CommandAccepted(id=case.id, version=case.version)


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=IDEMPOTENT)
def open_case(
    body: CaseCreate,
    deps: Deps,
    caller: Annotated[Caller, Depends(require(OPEN_CASE, "open cases"))],
    correlation_id: Correlation = None,
) -> CommandAccepted:
    """Open a case of a case type; answers its id and version 1."""
    case = deps.ledger.open_case(
        body.case_type,
        body.title,
        body.fields,
        body.party_id,
        _context(caller, correlation_id, body),
    )
    return _accepted(case)


@router.post("/{case_id}/assign", dependencies=IDEMPOTENT)
def assign(
    case_id: UUID,
    body: AssignCommand,
    deps: Deps,
    caller: Annotated[Caller, Depends(require(WORK_CASE, "assign cases"))],
    correlation_id: Correlation = None,
) -> CommandAccepted:
    """Give the case to a handler, or unassign it with ``null``."""
    context = _context(caller, correlation_id, body)
    return _accepted(deps.ledger.assign(case_id, body.assignee, context, body.expected_version))


@router.post("/{case_id}/transitions", dependencies=IDEMPOTENT)
def transition(
    case_id: UUID,
    body: TransitionCommand,
    deps: Deps,
    caller: Annotated[Caller, Depends(require(UPDATE_CASE, "move cases"))],
    correlation_id: Correlation = None,
) -> CommandAccepted:
    """Take a named transition of the case's type; the case type decides which roles may,
    from which states, under which condition, and which fields must be filled first."""
    context = _context(caller, correlation_id, body)
    case = deps.ledger.transition(
        case_id, body.transition, body.reason, body.fields, context, body.expected_version
    )
    return _accepted(case)


@router.patch("/{case_id}/fields", dependencies=IDEMPOTENT)
def update_fields(
    case_id: UUID,
    body: FieldsCommand,
    deps: Deps,
    caller: Annotated[Caller, Depends(require(UPDATE_CASE, "change case fields"))],
    correlation_id: Correlation = None,
) -> CommandAccepted:
    """Change field values; each is checked against the case type, and your role's view
    decides which fields you may change."""
    context = _context(caller, correlation_id, body)
    case = deps.ledger.update_fields(case_id, body.fields, context, body.expected_version)
    return _accepted(case)


@router.post("/{case_id}/notes", dependencies=IDEMPOTENT)
def add_note(
    case_id: UUID,
    body: NoteCommand,
    deps: Deps,
    caller: Annotated[Caller, Depends(require(UPDATE_CASE, "add notes"))],
    correlation_id: Correlation = None,
) -> CommandAccepted:
    """Write a note on the case."""
    context = _context(caller, correlation_id, body)
    return _accepted(deps.ledger.add_note(case_id, body.text, context, body.expected_version))


@router.post("/{case_id}/close", dependencies=IDEMPOTENT)
def close(
    case_id: UUID,
    body: ReasonCommand,
    deps: Deps,
    caller: Annotated[Caller, Depends(require(WORK_CASE, "close cases"))],
    correlation_id: Correlation = None,
) -> CommandAccepted:
    """Close the case, giving the reason."""
    context = _context(caller, correlation_id, body)
    return _accepted(deps.ledger.close_case(case_id, body.reason, context, body.expected_version))


@router.post("/{case_id}/reopen", dependencies=IDEMPOTENT)
def reopen(
    case_id: UUID,
    body: ReasonCommand,
    deps: Deps,
    caller: Annotated[Caller, Depends(require(REOPEN_CASE, "reopen cases"))],
    correlation_id: Correlation = None,
) -> CommandAccepted:
    """Reopen a closed case, giving the reason."""
    context = _context(caller, correlation_id, body)
    return _accepted(deps.ledger.reopen_case(case_id, body.reason, context, body.expected_version))


# -- time travel: the moment a read reflects (docs/audit.md, "Time travel and exports") ----

_MOMENT = (
    "ISO 8601 with a UTC offset (2026-03-01T12:00:00Z, 2026-03-01T12:00:00+01:00; in a URL "
    "write + as %2B)"
)


def moment(
    as_of: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=NO_NUL,
            description="read it as recorded at this moment (what caseledger knew then): "
            + _MOMENT,
        ),
    ] = None,
    version: Annotated[
        int | None,
        Query(ge=1, description="read it at this version of the case, instead of as_of"),
    ] = None,
    effective_at: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=NO_NUL,
            description="read it as it stood in the world at this moment (facts by their "
            "occurred_at; derived events dated by their cause), by what was known now or at "
            "as_of/version: " + _MOMENT,
        ),
    ] = None,
) -> Moment:
    """The moment a read reflects: a recorded moment or version, and an effective moment."""
    return Moment(
        as_of=parse_moment("as_of", as_of),
        version=version,
        effective_at=parse_moment("effective_at", effective_at),
    )


At = Annotated[Moment, Depends(moment)]


def _say_moment(response: Response, at: Moment, version: int) -> None:
    """Headers saying which version and which moments a read reflects."""
    response.headers["X-Case-Version"] = str(version)
    if at.as_of is not None:
        response.headers["X-As-Of"] = at.as_of.isoformat()
    if at.effective_at is not None:
        response.headers["X-Effective-At"] = at.effective_at.isoformat()


@router.get("/{case_id}")
def get_case(
    case_id: UUID,
    deps: Deps,
    caller: CurrentCaller,
    languages: Languages,
    response: Response,
    at: At,
) -> CasePublic:
    """The case as its events make it now, shaped by your role's view of its case type, with
    labels in the language of your Accept-Language header (French or English), and what
    your role may do now: each transition from its state (enabled, or not with the reason)
    and the other commands (``actions``).

    With ``as_of`` (or ``version``), the case as it was recorded then; with
    ``effective_at``, as it stood in the world then. ``version``, ``as_of`` and
    ``effective_at`` in the answer (and the headers X-Case-Version, X-As-Of,
    X-Effective-At) say what it reflects."""
    view = deps.views.case_view(case_id, reader(caller, languages), at)
    response.headers["Content-Language"] = view.labels.language
    _say_moment(response, at, view.case.version)
    public = _case_public(view)
    if at.is_now:
        return public
    return public.model_copy(update={"as_of": at.as_of, "effective_at": at.effective_at})


def reader(caller: Caller, languages: tuple[str, ...]) -> Reader:
    return Reader(caller.role, caller.actor_id, languages)


def _case_public(view: CaseView) -> CasePublic:
    case = view.case
    return CasePublic(
        id=case.id,
        case_type=case.case_type,
        case_type_version=case.case_type_version,
        title=case.title,
        status=case.status,
        priority=case.priority,
        queue=case.queue,
        escalations=case.escalations,
        assignee=case.assignee,
        party_id=case.party_id,
        fields=view.seen.fields,
        editable_fields=view.editable_fields,
        labels=CaseLabels.model_validate(view.labels, from_attributes=True),
        transitions=[
            TransitionPublic.model_validate(t, from_attributes=True) for t in view.transitions
        ],
        actions=CaseActionsPublic.model_validate(view.actions, from_attributes=True),
        slas=[
            SlaClockPublic(
                sla=name,
                running=clock.running_since is not None,
                due={m: datetime.fromisoformat(at) for m, at in clock.due.items()},
                reached=list(clock.fired),
            )
            for name, clock in case.clocks.items()
        ],
        notes=[NotePublic(**note) for note in case.notes],
        closed_reason=case.closed_reason,
        parent_id=case.parent_id,
        children=list(case.children),
        erased=list(view.seen.erased),
        legal_hold=_legal_hold(case),
        version=case.version,
        opened_at=case.created_on,
        updated_at=case.modified_on,
    )


def _legal_hold(case: Case) -> LegalHoldPublic | None:
    hold = case.legal_hold
    if hold is None:
        return None
    return LegalHoldPublic(reason=hold["reason"], placed_by=hold["by"], version=hold["version"])


@router.get("/{case_id}/history")
def history(
    case_id: UUID, deps: Deps, caller: CurrentCaller, response: Response, at: At
) -> list[HistoryEntry]:
    """Every change to the case: who, when, what and why, oldest first. Field values your
    role's view hides are left out of each entry's data, and ``withheld`` names them.
    With ``as_of`` or ``version``, the history up to then; with ``effective_at``, the
    changes in effect by then, in effective-time order (``effective_at`` of each entry)."""
    entries = []
    seen_events = deps.views.history(case_id, caller.role.value, at)
    if not at.is_now:
        _say_moment(response, at, max((s.envelope.case_version for s in seen_events), default=0))
    for seen in seen_events:
        envelope = seen.envelope
        entries.append(
            HistoryEntry(
                version=envelope.case_version,
                type=envelope.type,
                recorded_at=envelope.recorded_at,
                occurred_at=envelope.occurred_at,
                actor={"id": envelope.actor.id, "role": envelope.actor.role},
                correlation_id=envelope.correlation_id,
                causation_id=envelope.causation_id,
                rule=seen.event.context.get("rule") if hasattr(seen.event, "context") else None,
                source=asdict(envelope.source) if envelope.source else None,
                data=envelope.data,
                withheld=seen.withheld,
                effective_at=seen.effective_at,
            )
        )
    return entries


@router.get("/{case_id}/timeline")
def timeline(
    case_id: UUID,
    deps: Deps,
    caller: CurrentCaller,
    languages: Languages,
    response: Response,
    at: At,
    lang: Annotated[
        str | None,
        Query(
            pattern=r"^[a-z]{2,3}$",
            description="the language to tell it in (en, fr), before those of Accept-Language",
        ),
    ] = None,
) -> list[TimelineEntryPublic]:
    """The case's history told as sentences in the case type's language ("Ann moved the
    insurance claim from Under review to Approved"), oldest first: field edits as before and
    after, the rule behind each automatic step, SLA milestones and the source of ingested
    facts. Times are UTC. Field values your role's view hides are in no entry. With
    ``as_of``, ``version`` or ``effective_at``, as the history tells it then."""
    wanted = (lang, *languages) if lang else languages
    told = deps.views.timeline(case_id, reader(caller, wanted), at)
    response.headers["Content-Language"] = told.language
    if not at.is_now:
        _say_moment(response, at, max((entry.version for entry in told.entries), default=0))
    return [TimelineEntryPublic.model_validate(e, from_attributes=True) for e in told.entries]


# -- the audit export of one case (docs/audit.md, "Time travel and exports") ---------------

AUDIT_EXPORT = frozenset({Role.ADMIN, Role.AUDITOR})
_EXPORT_TYPES = {"jsonl": "application/x-ndjson", "html": "text/html; charset=utf-8"}


@router.get(
    "/{case_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}, "text/html": {}}}},
)
def export_case(
    case_id: UUID,
    deps: Deps,
    caller: Annotated[Caller, Depends(require(AUDIT_EXPORT, "export case histories"))],
    languages: Languages,
    export_format: Annotated[
        Literal["jsonl", "html"],
        Query(
            alias="format",
            description="jsonl: one event envelope a line (with the rule behind each automatic "
            "step, withheld fields, effective time); html: a readable, printable report",
        ),
    ] = "jsonl",
) -> StreamingResponse:
    """The case's whole history for an auditor, as your role's view shows it, streamed a
    page at a time: JSON Lines or a self-contained HTML report (``caseledger audit export``
    makes the same for many cases, and PDF)."""
    exporter = AuditExport(deps.views)
    trail = deps.views.audit_trail(case_id, reader(caller, languages), exporter.page_size)
    if export_format == "jsonl":
        chunks: Iterator[str] = (line.decode() for line in exporter.jsonl([trail]))
    else:
        scope = ExportScope(caller.role.value, caller.actor_id, datetime.now(UTC), case_id)
        chunks = exporter.html(scope, [trail])
    return StreamingResponse(
        each_within(chunks, deps.deadline_s),
        media_type=_EXPORT_TYPES[export_format],
        headers={"Content-Disposition": f'attachment; filename="case-{case_id}.{export_format}"'},
    )


@router.get("")
def list_cases(
    deps: Deps,
    caller: CurrentCaller,
    languages: Languages,
    where: Annotated[CaseFilter, Depends(case_filter)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500, pattern=NO_NUL)] = None,
) -> CasePage:
    """The case list from the projection, newest first, with filters and a page cursor;
    labels of status, case type, priority and choice values in the language of your
    Accept-Language, and each case's SLA clocks with its nearest running deadline."""
    after = PageCursor.decode(cursor) if cursor else None
    page = deps.views.page(deps.cases, where, limit, after, reader(caller, languages))
    return CasePage(
        cases=[_summary(row) for row in page.rows],
        columns=page.columns,
        next_cursor=page.next_cursor.encode() if page.next_cursor else None,
    )


def _summary(view: RowView) -> CaseSummary:
    row = view.row
    return CaseSummary(
        id=UUID(row.case_id),
        case_type=row.case_type,
        case_type_version=row.case_type_version,
        title=row.title,
        status=row.status,
        priority=row.priority,
        queue=row.queue,
        escalations=row.escalations,
        sla_breaches=row.sla_breaches,
        assignee=row.assignee,
        party_id=row.party_id,
        fields=view.fields,
        version=row.version,
        opened_at=row.opened_at,
        updated_at=row.updated_at,
        status_label=view.status_label,
        case_type_label=view.case_type_label,
        priority_label=view.priority_label,
        choice_labels=view.choice_labels,
        sla_deadline=view.sla_deadline,
        slas={
            name: CaseSlaPublic.model_validate(clock, from_attributes=True)
            for name, clock in view.slas.items()
        },
        erased=view.erased,
        legal_hold=row.legal_hold,
    )
