"""Every error answers JSON ``{detail, code, hint}`` with a 4xx that says how to fix it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from domain.errors import DomainError, InvalidCommand, InvalidTransition
from services.errors import CaseNotFound, VersionConflict

_STATUS: list[tuple[type[DomainError], int]] = [
    (CaseNotFound, 404),
    (VersionConflict, 409),
    (InvalidTransition, 409),
    (InvalidCommand, 422),
]


def error_response(
    status: int, detail: str, code: str, hint: str = "", headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"detail": detail, "code": code, "hint": hint}
    return JSONResponse(body, status_code=status, headers=headers)


def _domain_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    status = next((s for kind, s in _STATUS if isinstance(error, kind)), 400)
    return error_response(status, error.message, error.code, error.hint)


def _http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    return error_response(
        error.status_code, str(error.detail), f"http_{error.status_code}", headers=error.headers
    )


def _describe(errors: Sequence[Any]) -> str:
    parts = []
    for e in errors[:10]:
        where = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
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
