"""Personal data routes: erase a data subject, and put a case on legal hold or lift it
(docs/audit.md, "Personal data and erasure")."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from domain.case import MAX_NOTE
from services.api.deps import Caller, Deps, authenticated, known_query_only, require
from services.api.schemas import NO_NUL, ErrorBody, Text, _Request
from services.auth import Role
from services.errors import StoreUnavailable
from services.personal_data import Vault
from services.subject_erasure import erase_subject

_errors: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 422, 503)
}
router = APIRouter(
    tags=["personal data"],
    responses=_errors,
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)
#: Who may place a legal hold (admins, and managers who answer for their cases) and who may
#: lift one, which opens the case's personal data to erasure again (admins only).
PLACE_HOLD = frozenset({Role.ADMIN, Role.MANAGER})
LIFT_HOLD = frozenset({Role.ADMIN})
Admin = Annotated[Caller, Depends(require(frozenset({Role.ADMIN}), "erase personal data"))]
Placer = Annotated[Caller, Depends(require(PLACE_HOLD, "place a legal hold"))]
Lifter = Annotated[Caller, Depends(require(LIFT_HOLD, "lift a legal hold"))]
Subject = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)]
Reason = Annotated[Text, Field(min_length=1, max_length=MAX_NOTE)]


class ReasonBody(_Request):
    reason: Reason = Field(description="why: recorded in the case's history")


class ErasurePublic(BaseModel):
    subject: str
    cases: list[UUID] = Field(description="the subject's cases: each records the erasure")
    recorded: list[UUID] = Field(
        description="the cases that recorded it in this request (a repeated request records "
        "none, and finishes what an interrupted one left)"
    )
    key_destroyed: bool = Field(
        description="this request destroyed the subject's key (false: it was already)"
    )


class LegalHoldAnswer(BaseModel):
    id: UUID
    version: int
    legal_hold: bool


def _vault(deps: Deps) -> Vault:
    vault = deps.ledger.vault
    if vault is None:
        raise StoreUnavailable("no key store for personal data is configured")
    return vault


@router.post("/subjects/{subject}/erasure")
def erase(subject: Subject, body: ReasonBody, deps: Deps, caller: Admin) -> ErasurePublic:
    """Erase the personal data of a data subject (a case's ``party_id``, or ``case:<id>``
    for a case without one): each of its cases records ``CasePersonalDataErased``, then its
    key is destroyed, and its personal fields read as erased everywhere (``null``, named in
    ``erased``). 409, erasing nothing, while one of its cases is on legal hold."""
    report = erase_subject(deps.ledger, _vault(deps), subject, body.reason, caller.context(None))
    return ErasurePublic(
        subject=report.subject,
        cases=report.cases,
        recorded=report.recorded,
        key_destroyed=report.key_destroyed,
    )


@router.post("/cases/{case_id}/legal-hold")
def place_legal_hold(
    case_id: UUID, body: ReasonBody, deps: Deps, caller: Placer
) -> LegalHoldAnswer:
    """Put the case on legal hold: its personal data may not be erased until the hold is
    lifted (409 when it is already held)."""
    case = deps.ledger.place_legal_hold(case_id, body.reason, caller.context(None))
    return LegalHoldAnswer(id=case.id, version=case.version, legal_hold=True)


@router.delete("/cases/{case_id}/legal-hold")
def lift_legal_hold(
    case_id: UUID,
    deps: Deps,
    caller: Lifter,
    reason: Annotated[Text, Query(min_length=1, max_length=2000, description="why")],
) -> LegalHoldAnswer:
    """Lift the case's legal hold (409 when it has none)."""
    case = deps.ledger.lift_legal_hold(case_id, reason, caller.context(None))
    return LegalHoldAnswer(id=case.id, version=case.version, legal_hold=False)
