"""The contracts in docs/ are generated from the code and must not go stale."""

from __future__ import annotations

from pathlib import Path

from services.api.openapi import openapi_text
from services.contract import envelope_json_schema_text

DOCS = Path(__file__).resolve().parents[2] / "docs"
FIX = "regenerate them with `caseledger contracts` and commit the result"


def test_the_envelope_schema_in_docs_is_current() -> None:
    committed = (DOCS / "case-event-envelope.schema.json").read_text()
    assert committed == envelope_json_schema_text(), FIX


def test_the_openapi_document_in_docs_is_current() -> None:
    assert (DOCS / "openapi.json").read_text() == openapi_text(), FIX
