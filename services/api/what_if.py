"""What if: ``POST /case-types/{name}/versions/{version}/what-if`` replays recorded cases of
the case type under a draft, in memory, and answers what would differ (``services.what_if``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, Strict

from services.api.case_types import Name, Version
from services.api.deps import Caller, Deps, authenticated, known_query_only, require
from services.api.schemas import ErrorBody, _Request
from services.auth import Role
from services.deadline import remaining
from services.what_if import (
    DEFAULT_DAYS,
    DEFAULT_LIMIT,
    CaseComparison,
    Outcome,
    WhatIf,
    WhatIfReport,
    WhatIfRequest,
)

#: Who may try drafts: those who author case types.
AUTHORS = frozenset({Role.ADMIN})
#: The longest a what-if may replay within one request, and what it leaves to answer.
MAX_BUDGET_S = 30.0
ANSWER_MARGIN_S = 0.5
_errors: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 422)
}
router = APIRouter(
    prefix="/case-types",
    tags=["case types"],
    responses=_errors,
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)
Author = Annotated[Caller, Depends(require(AUTHORS, "try case-type drafts"))]


CaseId = Annotated[UUID, Strict(False)]  # written as a string in JSON


class WhatIfCommand(_Request):
    days: int | None = Field(
        default=DEFAULT_DAYS,
        ge=1,
        le=3_650,
        description="replay the cases opened in the last DAYS days (ignored with case_ids)",
    )
    case_ids: list[CaseId] = Field(
        default_factory=list, max_length=DEFAULT_LIMIT, description="replay these cases only"
    )
    limit: int = Field(
        default=DEFAULT_LIMIT, ge=1, le=DEFAULT_LIMIT, description="at most this many cases"
    )


class NotifiedPublic(BaseModel):
    notification: str
    recipients: list[str]


class OutcomePublic(BaseModel):
    status: str
    assignee: str | None
    queue: str | None
    priority: str
    sla_breaches: list[str] = Field(description="the SLAs breached, one entry per breach")
    notifications: list[NotifiedPublic] = Field(description="every notification requested")

    @classmethod
    def of(cls, outcome: Outcome | None) -> OutcomePublic | None:
        if outcome is None:
            return None
        return cls(
            status=outcome.status,
            assignee=outcome.assignee,
            queue=outcome.queue,
            priority=outcome.priority,
            sla_breaches=list(outcome.sla_breaches),
            notifications=[
                NotifiedPublic(notification=n.notification, recipients=list(n.recipients))
                for n in outcome.notifications
            ],
        )


class RefusalPublic(BaseModel):
    at: datetime = Field(description="when the command was recorded")
    case_version: int = Field(description="the recorded version of its first event")
    command: str = Field(description="the event type it recorded (and the transition)")
    reason: str
    hint: str


class CaseWhatIf(BaseModel):
    case_id: UUID
    title: str
    opened_at: datetime
    recorded: OutcomePublic
    would_be: OutcomePublic | None = Field(description="null: the draft would not open it")
    differences: list[str] = Field(description="the attributes that would differ")
    refused: list[RefusalPublic] = Field(description="recorded commands the draft refuses")

    @classmethod
    def of(cls, case: CaseComparison) -> CaseWhatIf:
        recorded = OutcomePublic.of(case.recorded)
        assert recorded is not None
        return cls(
            case_id=case.case_id,
            title=case.title,
            opened_at=case.opened_at,
            recorded=recorded,
            would_be=OutcomePublic.of(case.would_be),
            differences=list(case.differences),
            refused=[
                RefusalPublic(
                    at=r.at, case_version=r.case_version, command=r.command, reason=r.reason,
                    hint=r.hint,
                )
                for r in case.refused
            ],
        )  # fmt: skip


class WhatIfReportPublic(BaseModel):
    case_type: str
    version: int
    selected: int = Field(description="cases selected for the replay")
    compared: int = Field(description="cases replayed (fewer when the time ran out)")
    differing: int
    by_attribute: dict[str, int] = Field(description="differing cases per attribute")
    complete: bool
    stopped: str | None = Field(description="why the replay stopped early, if it did")
    cases: list[CaseWhatIf] = Field(description="the cases that would differ")

    @classmethod
    def of(cls, report: WhatIfReport) -> WhatIfReportPublic:
        return cls(
            case_type=report.case_type,
            version=report.version,
            selected=report.selected,
            compared=report.compared,
            differing=report.differing,
            by_attribute=report.by_attribute,
            complete=report.complete,
            stopped=report.stopped,
            cases=[CaseWhatIf.of(case) for case in report.cases],
        )


@router.post("/{name}/versions/{version}/what-if")
def what_if(
    name: Name, version: Version, body: WhatIfCommand, deps: Deps, _: Author
) -> WhatIfReportPublic:
    """Replay recorded cases of this type under draft ``version``, in memory (nothing is
    stored, published or projected), and report per case what would differ from what was
    recorded: status, assignee, queue, priority, SLA breaches, notifications, and the
    recorded commands the draft would refuse. The cases opened in the last ``days`` days
    (newest first), or the ``case_ids`` given; at most ``limit``. A replay that runs out of
    the request's time answers what it compared, with ``complete: false``."""
    left = remaining()
    budget = MAX_BUDGET_S if left is None else min(MAX_BUDGET_S, left - ANSWER_MARGIN_S)
    request = WhatIfRequest(
        case_type=name,
        version=version,
        days=body.days,
        case_ids=tuple(body.case_ids),
        limit=body.limit,
        budget_s=max(budget, 0.0),
    )
    report = WhatIf(deps.ledger, deps.case_types, deps.cases).run(request)
    return WhatIfReportPublic.of(report)
