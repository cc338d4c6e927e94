"""What every route may depend on, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from domain.context import CommandContext
from services.api.errors import DATABASE_DOWN
from services.application import CaseLedger
from services.audit import AuditTrail
from services.auth import KeyStore, Role
from services.case_types import CaseTypeRegistry
from services.case_views import CaseViews
from services.connector_admin import ConnectorAdmin
from services.connectors import Connector
from services.content import ContentStore
from services.deadline import deadline_in
from services.idempotency import IdempotencyStore
from services.ingestion import Ingestor, RunReport
from services.metrics import MetricsPage
from services.projection_admin import ProjectionAdmin
from services.queries import CaseListQueries
from services.read_models import ReadModels
from services.secret_store import SecretBook


@dataclass(frozen=True)
class WebhookIntake:
    """What ``POST /connectors/{name}/webhook`` needs: a connector's current version by name
    (``ConnectorNotFound``, a 404, when none), a secret's value by name, and the ingestion."""

    connector: Callable[[str], Connector]
    secret: Callable[[str], str]
    ingestor: Ingestor
    #: Adds a delivery's counts to its connector's reconciliation (its run of the day).
    count: Callable[[RunReport], None] = lambda report: None


@dataclass(frozen=True)
class CaseTypeRoles:
    """Which roles author (draft, edit, validate, submit, discard), review (approve, reject)
    and publish case types: configuration (``CASELEDGER_CASE_TYPE_AUTHORS``, ``_REVIEWERS``,
    ``_PUBLISHERS``). A reviewer must moreover be another person than the draft's writers."""

    authors: frozenset[Role] = frozenset({Role.ADMIN})
    reviewers: frozenset[Role] = frozenset({Role.ADMIN, Role.MANAGER})
    publishers: frozenset[Role] = frozenset({Role.ADMIN})

    def rights(self, role: Role) -> list[str]:
        """What ``role`` may do with case types: author, review, publish."""
        return [
            right
            for right, roles in (
                ("author", self.authors),
                ("review", self.reviewers),
                ("publish", self.publishers),
            )
            if role in roles
        ]


@dataclass
class ApiDependencies:
    """Everything the API needs, built by the composition root (or a test)."""

    ledger: CaseLedger
    case_types: CaseTypeRegistry
    cases: CaseListQueries
    keys: KeyStore
    views: CaseViews
    secrets: SecretBook
    contents: ContentStore
    idempotency: IdempotencyStore
    health: Callable[[], dict[str, Any]]
    max_body_bytes: int = 1_048_576
    max_document_bytes: int = 16 * 1_048_576
    #: How long one request may take, all its waits together (None: no deadline).
    deadline_s: float | None = None
    #: What GET /metrics answers (without the pipeline's figures unless given them).
    metrics: MetricsPage = field(default_factory=lambda: MetricsPage(None))
    #: Signed webhooks of connectors (None: every webhook answers 404).
    webhooks: WebhookIntake | None = None
    #: The connector use cases (``/connectors``); None: those routes answer 503.
    connector_admin: ConnectorAdmin | None = None
    #: Counts, SLA status, cycle times, throughput, workload (``/read-models``).
    read_models: ReadModels | None = None
    #: Where each projection stands, what it holds, retries (``/projections``).
    projections: ProjectionAdmin | None = None
    #: Checkpoints and evidence bundles (``/audit``, ``/cases/{id}/evidence``).
    audit: AuditTrail | None = None
    #: Which roles author, review and publish case types (settings).
    case_type_roles: CaseTypeRoles = field(default_factory=CaseTypeRoles)


# Dependencies that do no I/O are ``async``: FastAPI runs a plain ``def`` dependency in its
# thread pool, one hop per dependency per request, which cost a command over HTTP more than
# the command's own work. Those that may wait on the database stay plain functions.


async def _deps(request: Request) -> ApiDependencies:
    deps: ApiDependencies = request.app.state.deps
    return deps


Deps = Annotated[ApiDependencies, Depends(_deps)]
KEY_CHECK_S = 0.3  # how long /health waits to check a key before answering without details
_bearer = HTTPBearer(auto_error=False, description="an API key: `caseledger keys create`")


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: the key's role, an id for the audit trail, and the label the
    key was given."""

    actor_id: str
    role: Role
    key_label: str = ""

    def context(self, correlation_id: str | None) -> CommandContext:
        if correlation_id:
            return CommandContext(self.actor_id, self.role.value, correlation_id=correlation_id)
        return CommandContext(self.actor_id, self.role.value)


async def authenticated(
    deps: Deps,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller the bearer key belongs to; 401 without a known key."""
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send the header 'Authorization: Bearer <key>' "
            "(create a key with `caseledger keys create --role ROLE`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    holder = deps.keys.cached_holder(credentials.credentials) or await run_in_threadpool(
        deps.keys.holder_of, credentials.credentials
    )
    if holder is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown API key: check the key, or create one with `caseledger keys create`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    refusal = holder.refusal(datetime.now(UTC))
    if refusal is not None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, refusal, headers={"WWW-Authenticate": "Bearer"}
        )
    return Caller(actor_id=holder.actor_id, role=holder.role, key_label=holder.label)


CurrentCaller = Annotated[Caller, Depends(authenticated)]


def known_caller(
    deps: Deps,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller | None:
    """The caller when the request carries a valid key, else ``None`` (never a 401): for
    public answers that say more to a known caller, such as /health. A key that cannot be
    checked quickly (the database is down) counts as unknown: /health stays fast."""
    if credentials is None:
        return None
    try:
        with deadline_in(KEY_CHECK_S):
            holder = deps.keys.holder_of(credentials.credentials)
    except DATABASE_DOWN:
        return None
    if holder is None or holder.refusal(datetime.now(UTC)) is not None:
        return None
    return Caller(actor_id=holder.actor_id, role=holder.role, key_label=holder.label)


KnownCaller = Annotated[Caller | None, Depends(known_caller)]


def _repeatable(annotation: object) -> bool:
    """Whether a query parameter of this type may be given more than once (a list of values)."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(_repeatable(arg) for arg in get_args(annotation))
    return origin in (list, set, frozenset, tuple, Sequence)


def _declared_query(dependant: Dependant) -> dict[str, bool]:
    """The query parameters a route takes, each with whether it may repeat."""
    names = {p.alias: _repeatable(p.field_info.annotation) for p in dependant.query_params}
    for sub in dependant.dependencies:
        names.update(_declared_query(sub))
    return names


async def known_query_only(request: Request) -> None:
    """Refuse query parameters the route does not declare, as bodies refuse unknown fields,
    and single values given twice: a misspelt filter (``?stauts=open``) or a repeated one
    (``?status=open&status=waiting``, of which FastAPI would keep the last) must not
    silently list other cases than the caller asked for."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    declared = _declared_query(route.dependant)
    takes = ", ".join(sorted(declared)) if declared else "no query parameters"
    errors: list[dict[str, Any]] = []
    for name in sorted(set(request.query_params)):
        values = request.query_params.getlist(name)
        if name not in declared:
            message = f"unknown query parameter; this operation takes {takes}"
            errors.append(_query_error("extra_forbidden", name, message, values))
        elif len(values) > 1 and not declared[name]:
            message = f"given {len(values)} times; give it once"
            errors.append(_query_error("too_many_values", name, message, values))
    if errors:
        raise RequestValidationError(errors)


def _query_error(kind: str, name: str, message: str, values: list[str]) -> dict[str, Any]:
    return {"type": kind, "loc": ("query", name), "msg": message, "input": values}


def require(allowed: frozenset[Role], action: str) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that lets through only callers whose role is in ``allowed``."""

    async def check(caller: CurrentCaller) -> Caller:
        _refuse_unless(caller, allowed, action)
        return caller

    return check


def require_configured(
    allowed: Callable[[ApiDependencies], frozenset[Role]], action: str
) -> Callable[[ApiDependencies, Caller], Awaitable[Caller]]:
    """:func:`require` with roles read from the configuration when the request comes, e.g.
    ``require_configured(lambda deps: deps.case_type_roles.reviewers, "review case types")``."""

    async def check(deps: Deps, caller: CurrentCaller) -> Caller:
        _refuse_unless(caller, allowed(deps), action)
        return caller

    return check


def _refuse_unless(caller: Caller, allowed: frozenset[Role], action: str) -> None:
    if caller.role not in allowed:
        roles = ", ".join(sorted(r.value for r in allowed))
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"the role {caller.role.value!r} may not {action}; allowed roles: {roles}",
        )
