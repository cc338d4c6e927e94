"""The contracts in docs/ are generated from the code and must not go stale."""

from __future__ import annotations

from pathlib import Path

import jsonschema_rs
import yaml

from domain.case import Case
from infra.settings import Settings
from services.api.openapi import openapi_text
from services.contract import (
    ASYNCAPI_FILE,
    ENVELOPE_FILE,
    EVENTS_FOLDER,
    contract_files,
    event_json_schema,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"
FIX = "regenerate them with `caseledger contracts` and commit the result"
TOPIC = Settings.model_fields["kafka_topic"].default


def test_the_envelope_schema_in_docs_is_current() -> None:
    committed = (DOCS / ENVELOPE_FILE).read_text()
    assert committed == contract_files(TOPIC)[ENVELOPE_FILE], FIX


def test_the_event_schemas_in_docs_are_current_and_none_is_left_over() -> None:
    generated = {
        name: text for name, text in contract_files(TOPIC).items() if name.startswith(EVENTS_FOLDER)
    }
    committed = {
        f"{EVENTS_FOLDER}/{path.name}": path.read_text()
        for path in (DOCS / EVENTS_FOLDER).glob("*.schema.json")
    }
    assert sorted(committed) == sorted(generated), FIX
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale: {FIX}"


def test_the_asyncapi_document_in_docs_is_current() -> None:
    committed = (DOCS / ASYNCAPI_FILE).read_text()
    assert committed == contract_files(TOPIC)[ASYNCAPI_FILE], FIX


def test_the_openapi_document_in_docs_is_current() -> None:
    assert (DOCS / "openapi.json").read_text() == openapi_text(), FIX


def test_the_asyncapi_document_has_a_message_with_its_schema_for_every_event_type() -> None:
    document = yaml.safe_load((DOCS / ASYNCAPI_FILE).read_text())
    messages = document["channels"]["caseEvents"]["messages"]
    assert sorted(messages) == sorted(Case.event_types())
    for name in Case.event_types():
        payload = document["components"]["messages"][name]["payload"]["$ref"]
        assert (DOCS / payload).is_file(), f"{name}: {payload} is missing"


def test_an_event_schema_refuses_another_type_and_a_mistyped_attribute() -> None:
    """The schemas are specific: a note is not a valid assignment, nor an assignee a number."""
    assigned = jsonschema_rs.validator_for(event_json_schema(Case.Assigned))
    message = {
        "event_id": "0b7e7c50-9b1e-5c3e-8f53-6f1f0d1c2a3b",
        "type": "CaseAssigned",
        "case_id": "6f0c1a52-1111-4e0e-9f2b-0d9a5d1c2e3f",
        "case_type": "generic",
        "case_type_version": 1,
        "case_version": 2,
        "global_position": 7,
        "occurred_at": "2026-11-30T10:00:00+00:00",
        "recorded_at": "2026-11-30T10:00:00+00:00",
        "actor": {"id": "ann", "role": "handler"},
        "correlation_id": "c-1",
        "causation_id": None,
        "source": None,
        "schema_version": 1,
        "data": {"assignee": "ann"},
    }
    assigned.validate(message)
    assert not assigned.is_valid({**message, "type": "CaseNoteAdded", "data": {"text": "hi"}})
    assert not assigned.is_valid({**message, "data": {"assignee": 42}})
    assert not assigned.is_valid({**message, "data": {}})
