"""Builds the FastAPI application from its dependencies; holds no configuration itself."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from services.api import (
    audit,
    bulk,
    case_types,
    cases,
    connector_webhooks,
    connectors,
    documents,
    exports,
    keys,
    live_metrics,
    me,
    monitoring,
    plugins,
    projections,
    read_model_exports,
    read_models,
    secrets,
    simulate,
    subjects,
    what_if,
)
from services.api.deadline import RequestDeadline
from services.api.deps import ApiDependencies, Deps, KnownCaller, known_query_only
from services.api.errors import install_error_handlers
from services.api.headers import SecurityHeaders
from services.api.idempotency import IdempotencyKeys
from services.api.limits import BodySizeLimit
from services.api.schemas import ErrorBody, HealthBody
from services.api.ui import mount_dashboard, mount_docs

DESCRIPTION = """
caseledger keeps every change to every case as an event. Authenticate with
`Authorization: Bearer <api key>`; roles are admin, manager, handler, integrator and auditor.
Commands accept `expected_version`: when the case has moved on, the answer is 409 and nothing
is stored. How a case behaves (states, transitions, fields, SLAs, rules, labels, views per
role) is set by its case type, administered under `/case-types` (docs/case-types.md).
"""


def create_app(deps: ApiDependencies) -> FastAPI:
    app = FastAPI(
        title="caseledger",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url=None,  # served offline by mount_docs
        redoc_url=None,  # ReDoc loads only from a CDN
    )
    app.state.deps = deps
    install_error_handlers(app)
    app.include_router(bulk.router)
    app.include_router(cases.router)
    app.include_router(case_types.router)
    app.include_router(secrets.router)
    app.include_router(keys.router)
    app.include_router(documents.router)
    app.include_router(connectors.router)
    app.include_router(monitoring.router)
    app.include_router(live_metrics.router)
    app.include_router(read_models.router)
    app.include_router(read_model_exports.router)
    app.include_router(connector_webhooks.router)
    app.include_router(exports.router)
    app.include_router(me.router)
    app.include_router(projections.router)
    app.include_router(audit.router)
    app.include_router(what_if.router)
    app.include_router(plugins.router)
    app.include_router(simulate.router)
    app.include_router(subjects.router)
    mount_dashboard(app)
    mount_docs(app)

    @app.get(
        "/health",
        tags=["operations"],
        response_model=HealthBody,
        response_model_exclude_none=True,
        responses={
            503: {"model": HealthBody, "description": "a component is down"},
            422: {"model": ErrorBody, "description": "an unknown query parameter"},
        },
        dependencies=[Depends(known_query_only)],
        openapi_extra={"security": [{}]},  # with the bearer key FastAPI lists: a key is optional
    )
    def health(deps: Deps, caller: KnownCaller) -> JSONResponse:
        """ok, or degraded (503) when the database or the broker is down. With a valid key,
        each component's state and details (addresses, errors) too."""
        components: dict[str, Any] = deps.health()
        ok = all(c.get("ok") for c in components.values())
        body: dict[str, Any] = {"status": "ok" if ok else "degraded"}
        if caller is not None:
            body["components"] = components
        return JSONResponse(body, status_code=200 if ok else 503)

    app.add_middleware(IdempotencyKeys, store=deps.idempotency, keys=deps.keys)
    app.add_middleware(RequestDeadline, seconds=deps.deadline_s)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=deps.max_body_bytes,
        larger={documents.UPLOAD_PATH: deps.max_document_bytes},
    )
    app.add_middleware(monitoring.RequestTimer)  # times what the client waits for
    app.add_middleware(SecurityHeaders)  # outermost: also on the answers of the others
    return app
