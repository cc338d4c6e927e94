"""Projections for operators: where each read model stands, the events each set aside (each
holds its case), and a retry after the cause is fixed. The same use cases as
``caseledger projections`` (rebuilds and drift checks are long jobs: the CLI runs them)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from services.api.deps import Caller, Deps, authenticated, known_query_only, require
from services.api.schemas import ErrorBody, _Request
from services.auth import Role
from services.projection_admin import ProjectionAdmin

_errors: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 422, 503)
}
router = APIRouter(
    prefix="/projections",
    tags=["projections"],
    responses=_errors,
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)
READ = frozenset({Role.ADMIN, Role.MANAGER, Role.AUDITOR})
Reader = Annotated[Caller, Depends(require(READ, "read the projections' state"))]
Operator = Annotated[Caller, Depends(require(frozenset({Role.ADMIN}), "retry projections"))]
Name = Annotated[str, Path(max_length=63, pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class ProjectionState(BaseModel):
    name: str
    tables: list[str]
    position: int = Field(description="the highest global position it applied")
    applied_events: int
    lag: int = Field(description="stored case events it does not reflect yet")
    held_cases: int = Field(description="cases waiting behind an event it set aside")
    rebuilt_at: datetime | None


class HeldEvent(BaseModel):
    projection: str
    case_id: str
    case_version: int = Field(description="the event set aside; later ones of its case wait")
    global_position: int
    event_type: str
    error: str
    recorded_at: datetime
    retried_at: datetime | None


class RetryRequest(_Request):
    case_id: Annotated[UUID, Field(strict=False)] | None = Field(
        default=None, description="only this case; every held case of the projection if null"
    )


class RetryAnswer(BaseModel):
    retried: int
    moved_on: int = Field(description="cases whose events now all applied")
    applied: int = Field(description="events applied by the retry")


def _admin(deps: Deps) -> ProjectionAdmin:
    if deps.projections is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "projections are not wired")
    return deps.projections


@router.get("")
def list_projections(deps: Deps, _caller: Reader) -> list[ProjectionState]:
    """Every projection: its tables, position, lag and held cases."""
    return [ProjectionState(**asdict(p)) for p in _admin(deps).overview()]


@router.get("/{name}/held")
def held_events(
    name: Name,
    deps: Deps,
    _caller: Reader,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
) -> list[HeldEvent]:
    """The events a projection set aside with their errors, oldest first; each holds its
    case in that projection until a retry."""
    return [HeldEvent(**asdict(d)) for d in _admin(deps).held(name, limit)]


@router.post("/{name}/retry")
def retry(name: Name, body: RetryRequest, deps: Deps, _caller: Operator) -> RetryAnswer:
    """Apply the held cases' events again from the event store, after the cause was fixed;
    a case that fails again is held again with the new error."""
    return RetryAnswer(**asdict(_admin(deps).retry(name, body.case_id)))
