"""Tamper evidence as the API offers it: signed checkpoints of the event logs and evidence
bundles of cases. ``infra.audit_bundle.AuditTrail`` implements it (docs/audit.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from domain.errors import InvalidTransition


@dataclass(frozen=True)
class CheckpointView:
    """A signed checkpoint and whether the audit topic has its copy yet."""

    id: int
    log: str
    size: int
    position: int
    root: str
    signed_at: str
    key_id: str
    signature: str
    published: bool
    heads: str | None = None
    cases: int | None = None


class LogNotDense(InvalidTransition):
    """The log has a gap or leaves out of place: nothing is signed over it (409)."""

    code = "log_not_dense"


class AuditTrail(Protocol):
    def checkpoint(self) -> list[CheckpointView]:
        """Sign every log that grew since its last checkpoint (none: an empty list)."""
        ...

    def checkpoints(self, log_name: str | None, limit: int) -> list[CheckpointView]:
        """The newest checkpoints first."""
        ...

    def evidence(self, case_id: UUID) -> dict[str, Any]:
        """The evidence bundle of a case (``CaseNotFound`` when it has no events)."""
        ...

    def public_key(self) -> str:
        """The checkpoint signing key's public half, hex."""
        ...
