"""Every error answers JSON ``{detail, code, hint}`` with a 4xx that says how to fix it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg
from eventsourcing import persistence
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from domain.case_type import UnknownVersion
from domain.errors import DomainError, InvalidCommand, InvalidTransition, NotAllowed
from domain.values import NO_NUL_MESSAGE, escaped
from services.api.schemas import NO_NUL
from services.auth import KeyNotFound
from services.errors import (
    CaseNotFound,
    CaseTypeNotFound,
    OutcomeUnknown,
    ProjectionNotFound,
    RequestReplayed,
    SaveTooLarge,
    StoreUnavailable,
    VersionConflict,
)
from services.secret_store import SecretNotFound
from services.time_travel import BadMoment

_STATUS: list[tuple[type[DomainError], int]] = [
    (NotAllowed, 403),
    (CaseNotFound, 404),
    (CaseTypeNotFound, 404),
    (ProjectionNotFound, 404),
    (KeyNotFound, 404),
    (SecretNotFound, 404),
    (UnknownVersion, 404),
    (SaveTooLarge, 413),
    (StoreUnavailable, 503),
    (OutcomeUnknown, 504),
    (VersionConflict, 409),
    (RequestReplayed, 409),
    (InvalidTransition, 409),
    (InvalidCommand, 422),
    (BadMoment, 422),
]


def error_response(
    status: int,
    detail: str,
    code: str,
    hint: str = "",
    headers: Mapping[str, str] | None = None,
    problems: list[str] | None = None,
    issues: list[dict[str, str]] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail, "code": code, "hint": hint}
    if problems:
        body["problems"] = problems
    if issues:  # a refused case-type draft: each problem at its place (services.case_types)
        body["issues"] = issues
    return JSONResponse(body, status_code=status, headers=headers)


def _domain_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    status = next((s for kind, s in _STATUS if isinstance(error, kind)), 400)
    problems = getattr(error, "problems", None)
    headers = {"Retry-After": "1"} if status in (503, 504) else None
    issues = getattr(error, "issues", None)
    return error_response(
        status,
        error.message,
        error.code,
        error.hint,
        headers=headers,
        problems=problems,
        issues=issues,
    )


# What FastAPI says when the body is JSON-typed but json.loads fails with something other
# than a syntax error: invalid UTF-8, nesting too deep, an integer of more than 4300 digits.
_UNREADABLE_BODY = "There was an error parsing the body"


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def _flat(routes: Sequence[Any]) -> Iterator[Any]:
    """Every route, those of included routers too (FastAPI includes routers lazily)."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        yield from (contexts() if contexts is not None else (route,))


def _allowed_methods(request: Request) -> str:
    """The methods this path answers. Starlette's 405 names only the first route it tried
    (``Allow: POST`` on ``/cases``, which also answers GET), so ask every route, per method."""
    routes = request.app.router.routes
    # A path a fixed route names (POST /case-types/check) is that route's, not a value of a
    # parameter of another (GET /case-types/{name}): only fixed routes count there.
    fixed = [
        route
        for route in _flat(routes)
        if "{" not in str(getattr(route, "path", "{"))
        and route.matches({**request.scope, "method": request.method})[0] != Match.NONE
    ]
    routes = fixed or routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]
    return ", ".join(allowed)


def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    if error.status_code == 405:
        allowed = _allowed_methods(request)
        return error_response(
            405,
            f"{request.method} is not allowed on {request.url.path}",
            "method_not_allowed",
            f"this path answers: {allowed}",
            headers={**(error.headers or {}), "Allow": allowed},
        )
    if error.status_code == 400 and error.detail == _UNREADABLE_BODY:
        return error_response(
            400,
            "the request body could not be read as JSON: it is not UTF-8, is nested too "
            "deeply, or holds a number too long to read",
            "malformed_json",
            "send a UTF-8 JSON object with Content-Type: application/json",
        )
    return error_response(
        error.status_code, str(error.detail), f"http_{error.status_code}", headers=error.headers
    )


#: What an unreachable database raises in the read models and key checks (psycopg_pool's
#: PoolTimeout is an OperationalError) and through the eventsourcing library.
DATABASE_DOWN = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    persistence.OperationalError,
    persistence.InterfaceError,
)


def _database_down(_: Request, error: Exception) -> JSONResponse:
    return error_response(
        503,
        "the database is unavailable; nothing was stored",
        "store_unavailable",
        "retry in a moment (commands: with the same Idempotency-Key)",
        headers={"Retry-After": "1"},
    )


def _unexpected(_: Request, error: Exception) -> JSONResponse:
    # The traceback goes to the server log (Starlette's ServerErrorMiddleware re-raises);
    # the client gets the same JSON shape as every other error, without internals.
    return error_response(
        500,
        "the server failed to handle this request",
        "internal_error",
        "this is a bug: report it with the request's X-Correlation-ID",
    )


def _describe(errors: Sequence[Any]) -> str:
    parts = []
    for e in errors[:10]:
        where = escaped(".".join(str(p) for p in e.get("loc", ())))  # a key sent with NUL
        message = e.get("msg", "invalid")
        if e.get("type") == "string_pattern_mismatch" and e.get("ctx", {}).get("pattern") == NO_NUL:
            message = NO_NUL_MESSAGE
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = error.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(
            400,
            "the request body is not valid JSON",
            "malformed_json",
            "send a JSON object with Content-Type: application/json",
        )
    return error_response(
        422, _describe(errors), "invalid_request", "see the OpenAPI document at /docs"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for kind in DATABASE_DOWN:
        app.add_exception_handler(kind, _database_down)
    app.add_exception_handler(Exception, _unexpected)
