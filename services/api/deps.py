"""What every route may depend on, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from domain.context import CommandContext
from services.application import CaseLedger
from services.auth import KeyStore, Role
from services.queries import CaseListQueries


@dataclass
class ApiDependencies:
    """Everything the API needs, built by the composition root (or a test)."""

    ledger: CaseLedger
    cases: CaseListQueries
    keys: KeyStore
    health: Callable[[], dict[str, Any]]
    max_body_bytes: int = 1_048_576


def _deps(request: Request) -> ApiDependencies:
    deps: ApiDependencies = request.app.state.deps
    return deps


Deps = Annotated[ApiDependencies, Depends(_deps)]
_bearer = HTTPBearer(auto_error=False, description="an API key: `caseledger keys create`")


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: the key's role, and an id for the audit trail."""

    actor_id: str
    role: Role

    def context(self, correlation_id: str | None) -> CommandContext:
        if correlation_id:
            return CommandContext(self.actor_id, self.role.value, correlation_id=correlation_id)
        return CommandContext(self.actor_id, self.role.value)


def _caller(
    deps: Deps,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send the header 'Authorization: Bearer <key>' "
            "(create a key with `caseledger keys create --role ROLE`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    holder = deps.keys.holder_of(credentials.credentials)
    if holder is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown API key: check the key, or create one with `caseledger keys create`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Caller(actor_id=holder.actor_id, role=holder.role)


CurrentCaller = Annotated[Caller, Depends(_caller)]


def require(allowed: frozenset[Role], action: str) -> Callable[[Caller], Caller]:
    """A dependency that lets through only callers whose role is in ``allowed``."""

    def check(caller: CurrentCaller) -> Caller:
        if caller.role not in allowed:
            roles = ", ".join(sorted(r.value for r in allowed))
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"the role {caller.role.value!r} may not {action}; allowed roles: {roles}",
            )
        return caller

    return check
