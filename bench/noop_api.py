"""The baseline server of bench/http.py: a FastAPI note POST that parses the body and stores
nothing, served by uvicorn as ``caseledger serve`` serves the API. Kept apart from the
benchmark so that its workers import only FastAPI, not caseledger's stack.

Run by bench/http.py: ``python -c "from bench.noop_api import serve; serve(SETTINGS, FAST)"``.
"""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from infra.cli import server_options
from infra.settings import Settings


class Note(BaseModel):
    text: str


def noop_app() -> FastAPI:
    """The same path and body as ``POST /cases/{id}/notes``, answered at once."""
    app = FastAPI()

    @app.post("/cases/{case_id}/notes", status_code=201)
    def add_note(case_id: str, body: Note) -> dict[str, str]:
        return {"case_id": case_id}

    return app


def serve(settings_json: str, fast: bool) -> None:
    """Serve :func:`noop_app` with the API's options for ``settings``; ``fast=False``: on
    h11 and asyncio, what uvicorn does without its ``[standard]`` extra."""
    settings = Settings.model_validate_json(settings_json)
    options = server_options(settings, settings.api_port)
    if not fast:
        options |= {"http": "h11", "loop": "asyncio"}
    uvicorn.run("bench.noop_api:noop_app", **options)
