"""Connector administration for integration teams: check and load connector documents, see
each connector's runs (the reconciliation), its quarantine, and replay what it set aside.
The same use cases as ``caseledger connectors`` (``services.connector_admin``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, Field

from services.api.deps import Caller, Deps, authenticated, known_query_only, require
from services.api.schemas import ErrorBody, _Request
from services.auth import Role
from services.connector_admin import ConnectorAdmin
from services.connectors import InvalidConnector, read_document

_errors: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 415, 422, 503)
}
router = APIRouter(
    prefix="/connectors",
    tags=["connectors"],
    responses=_errors,
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)
MANAGE = frozenset({Role.ADMIN, Role.INTEGRATOR})
READ = frozenset({Role.ADMIN, Role.INTEGRATOR, Role.AUDITOR})
Manager = Annotated[Caller, Depends(require(MANAGE, "manage connectors"))]
Reader = Annotated[Caller, Depends(require(READ, "read connectors"))]
Name = Annotated[str, Path(max_length=63, pattern=r"^[a-z][a-z0-9_]{0,62}$")]
_DOCUMENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
        "description": "the connector document (docs/connectors.md), in YAML or JSON",
    }
}


class ConnectorLoaded(BaseModel):
    name: str
    version: int
    kind: str
    new: bool = Field(description="false when the document was the current version already")


class Problems(BaseModel):
    valid: bool
    problems: list[str] = Field(description="each as `path: problem`")


class ConnectorEntry(BaseModel):
    name: str
    version: int
    kind: str
    loaded_at: datetime
    loaded_by: str
    last_run_at: datetime | None
    waiting_in_quarantine: int


class RunPublic(BaseModel):
    run_id: str
    connector_version: int
    started_at: datetime
    finished_at: datetime | None
    seen: int
    ingested: int
    duplicates: int
    quarantined: int
    replayed: int
    last_error: str | None


class ConnectorStatusPublic(BaseModel):
    name: str
    version: int
    kind: str
    system: str
    description: str
    position: Any = Field(description="where the source has been read up to (its own form)")
    waiting_in_quarantine: int
    runs: list[RunPublic] = Field(description="recent runs, newest first")
    document: dict[str, Any]


class QuarantinedRecord(BaseModel):
    id: int
    connector_version: int
    record_id: str | None
    external_id: str | None
    reason: str
    held: bool = Field(description="waits behind an earlier quarantined record of its case")
    position: str | None
    batch_id: str
    record: dict[str, Any] | None
    raw: str | None
    quarantined_at: datetime


class ReplayCommand(_Request):
    ids: list[Annotated[int, Field(ge=1)]] | None = Field(
        default=None, max_length=10_000, description="entries to replay (default: all waiting)"
    )


class RecordOutcomePublic(BaseModel):
    verdict: Literal["ingested", "duplicate", "quarantined", "held"]
    record_id: str | None
    case_id: str | None
    version: int | None
    reason: str | None


class ReplayReport(BaseModel):
    replayed: int
    outcomes: list[RecordOutcomePublic]


def _admin(deps: Deps) -> ConnectorAdmin:
    if deps.connector_admin is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "connectors are not configured")
    return deps.connector_admin


async def _document(request: Request) -> dict[str, Any]:
    return read_document(await request.body(), request.headers.get("content-type", ""))


Document = Annotated[dict[str, Any], Depends(_document)]


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=_DOCUMENT_BODY)
def load_connector(deps: Deps, caller: Manager, document: Document) -> ConnectorLoaded:
    """Validate a connector document and load it as its connector's next version (or find
    it current already). A document with problems is refused (422) with every one of them,
    and nothing is loaded."""
    connector, new = _admin(deps).load(document, caller.actor_id)
    return ConnectorLoaded(
        name=connector.name, version=connector.version, kind=connector.kind, new=new
    )


@router.post("/{name}/validate", openapi_extra=_DOCUMENT_BODY)
def validate_connector(name: Name, deps: Deps, _: Manager, document: Document) -> Problems:
    """Check a document as the next version of connector ``name`` without loading it:
    valid, or refused (422) with every problem, by path."""
    problems = _admin(deps).problems(document)
    if document.get("name") != name:
        problems.insert(0, f"name: {document.get('name')!r} is not {name!r}, the connector checked")
    if problems:
        raise InvalidConnector(problems)
    return Problems(valid=True, problems=[])


@router.get("")
def list_connectors(deps: Deps, _: Reader) -> list[ConnectorEntry]:
    """Every connector: its current version, kind, last run and quarantine."""
    return [
        ConnectorEntry(**row, waiting_in_quarantine=row["waiting"])
        for row in _admin(deps).catalog.listing()
    ]


@router.get("/{name}")
def show_connector(
    name: Name,
    deps: Deps,
    _: Reader,
    runs: Annotated[int, Query(ge=1, le=100)] = 10,
) -> ConnectorStatusPublic:
    """A connector's current version and document, its position and the reconciliation of
    its recent runs (seen = ingested + duplicates + quarantined)."""
    found = _admin(deps).status(name, runs)
    connector = found.connector
    return ConnectorStatusPublic(
        name=connector.name,
        version=connector.version,
        kind=connector.kind,
        system=connector.system,
        description=connector.description,
        position=found.position,
        waiting_in_quarantine=found.waiting,
        runs=[RunPublic(**run) for run in found.runs],
        document=dict(connector.document),
    )


@router.get("/{name}/quarantine")
def quarantined(
    name: Name,
    deps: Deps,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[QuarantinedRecord]:
    """The records the connector set aside, oldest first, with why and the raw record."""
    admin = _admin(deps)
    admin.catalog.current(name)  # 404 for an unknown connector
    return [QuarantinedRecord(**entry) for entry in admin.quarantine.waiting(name, limit=limit)]


@router.post("/{name}/replay")
def replay(
    name: Name,
    deps: Deps,
    _: Manager,
    command: Annotated[ReplayCommand | None, Body()] = None,
) -> ReplayReport:
    """Ingest quarantined records again with the connector's current version (after the
    mapping or the case type was fixed): all, or the given ids, each with the records of its
    case held behind it, in order. What fails again is quarantined again."""
    report, outcomes = _admin(deps).replay(name, command.ids if command else None)
    return ReplayReport(
        replayed=report.replayed,
        outcomes=[RecordOutcomePublic(**vars(outcome)) for outcome in outcomes],
    )
