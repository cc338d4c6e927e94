"""Tamper evidence over HTTP: the signed checkpoints of the event logs, a checkpoint on
demand, and a case's evidence bundle (docs/audit.md). The same use cases as
``caseledger audit``; ``verify`` reads the whole store and is a CLI job."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from services.api.deps import Caller, Deps, authenticated, known_query_only, require
from services.api.schemas import ErrorBody
from services.audit import AuditTrail
from services.auth import Role

_errors: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 503)
}
router = APIRouter(
    tags=["audit"],
    responses=_errors,
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)
#: Checkpoints carry sizes, positions and roots, nothing of a case: managers may watch them.
READ = frozenset({Role.ADMIN, Role.MANAGER, Role.AUDITOR})
#: A bundle carries every event of a case as stored, whatever the case type's views hide.
PROVE = frozenset({Role.ADMIN, Role.AUDITOR})
Reader = Annotated[Caller, Depends(require(READ, "read the audit checkpoints"))]
Prover = Annotated[Caller, Depends(require(PROVE, "make checkpoints or evidence bundles"))]


class CheckpointPublic(BaseModel):
    id: int
    log: str = Field(description="the event table the checkpoint covers")
    size: int = Field(description="how many events (leaves) it covers")
    position: int = Field(description="the global position of the last event covered")
    root: str = Field(description="hex of the Merkle root of those events (RFC 9162)")
    signed_at: str
    key_id: str
    signature: str = Field(description="hex Ed25519 signature (docs/audit.md)")
    published: bool = Field(description="whether the audit topic has its copy yet")
    heads: str | None = Field(
        default=None,
        description="hex of the root of the tree of case heads (each case's newest version "
        "and hash, in case order), signed with the rest; null for a checkpoint signed before "
        "checkpoints had case heads",
    )
    cases: int | None = Field(default=None, description="how many case heads that tree holds")


def _trail(deps: Deps) -> AuditTrail:
    if deps.audit is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the audit trail is not wired")
    return deps.audit


@router.get("/audit/checkpoints")
def list_checkpoints(
    deps: Deps,
    _caller: Reader,
    log: Annotated[str | None, Query(max_length=63, description="only this log")] = None,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
) -> list[CheckpointPublic]:
    """The signed checkpoints, newest first."""
    return [CheckpointPublic(**asdict(c)) for c in _trail(deps).checkpoints(log, limit)]


@router.post("/audit/checkpoints")
def make_checkpoint(deps: Deps, _caller: Prover) -> list[CheckpointPublic]:
    """Sign a checkpoint of every event log that grew since its last one (an empty list when
    none did); the checkpointer publishes it on the audit topic. 409 when a log has a gap:
    nothing is signed over a tampered log."""
    return [CheckpointPublic(**asdict(c)) for c in _trail(deps).checkpoint()]


@router.get("/cases/{case_id}/evidence")
def case_evidence(case_id: UUID, deps: Deps, _caller: Prover) -> dict[str, Any]:
    """The case's evidence bundle: every event as stored, with its hash and Merkle inclusion
    proof, and the signed checkpoint (a fresh one when needed). Check it offline with the
    script of `caseledger audit verifier` and the key of `caseledger audit public-key`."""
    return _trail(deps).evidence(case_id)
