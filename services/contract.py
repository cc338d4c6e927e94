"""The published contracts, generated from the code: the event envelope's JSON Schema.

``caseledger contracts`` writes them to ``docs/``; a test fails when the files there are stale.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from domain.envelope import EventEnvelope

SCHEMA_ID = "urn:caseledger:schema:case-event-envelope"


def envelope_json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a message on the case-events topic."""
    schema = TypeAdapter(EventEnvelope).json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "description": " ".join((EventEnvelope.__doc__ or "").split()),
    }


def envelope_json_schema_text() -> str:
    return json.dumps(envelope_json_schema(), indent=2, sort_keys=True) + "\n"
