"""Connector documents are refused with every problem named by its path, and mappings read
legacy formats the way integration teams write them (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.connectors import InvalidConnector, compile_connector, connector_problems
from services.errors import CaseTypeNotFound
from services.expressions import MappingError
from tests.case_types import shipped

GOOD: dict[str, Any] = {
    "name": "claims_db",
    "kind": "sql",
    "source": {"dialect": "postgresql", "url": "postgresql://db/claims", "table": "claims"},
    "mapping": {
        "case_type": "insurance_claim",
        "record_id": "record.no",
        "fields": {
            "claimed_amount": {"from": "record.amount", "as": "money", "currency": "EUR"},
            "incident_date": {"from": "record.day", "as": "date", "format": "%d/%m/%Y"},
            "fraud_suspected": {"from": "record.flag", "as": "boolean"},
            "description": "record.text",
        },
        "status": {"from": "record.state", "states": {"N": "submitted"}},
        "effective_time": "record.changed",
        "timezone": "Europe/Paris",
    },
}


def case_type(name: str) -> Any:
    if name != "insurance_claim":
        raise CaseTypeNotFound(f"no case type {name}")
    return shipped(name)


def test_a_document_with_many_problems_names_every_one_by_path() -> None:
    bad = {
        "name": "Claims DB",
        "kind": "sql",
        "every": "soon",
        "source": {"dialect": "oracle", "url": "x", "table": "t", "colour": "red"},
        "mapping": {
            "case_type": "insurance_claim",
            "record_id": "record.",
            "fields": {"amount": {"from": "record.a", "as": "euros"}, "n": 3},
            "status": {"from": "record.s", "states": {}},
        },
    }
    problems = connector_problems(bad)
    paths = sorted(p.split(":")[0] for p in problems)
    assert paths == [
        "every", "mapping.fields.amount.as", "mapping.fields.n", "mapping.record_id",
        "mapping.status.states", "name", "source.colour", "source.dialect",
    ]  # fmt: skip
    assert any("allowed keys are dialect, url" in p for p in problems)
    with pytest.raises(InvalidConnector, match="8 problems") as refused:
        compile_connector(bad, 1)
    assert "docs/connectors.md" in refused.value.hint


def test_the_mapping_is_checked_against_the_case_type_it_feeds() -> None:
    status = {"from": "record.s", "states": {"X": "lost"}}
    fields = {"colour": "record.c"}
    document = {**GOOD, "mapping": {**GOOD["mapping"], "fields": fields, "status": status}}
    problems = connector_problems(document, case_type)
    assert problems == [
        "mapping.fields.colour: the case type insurance_claim has no such field; its fields are "
        + ", ".join(sorted(shipped("insurance_claim").fields)),
        "mapping.status.states.X: 'lost' is not a state of insurance_claim; its states are "
        + ", ".join(shipped("insurance_claim").states),
    ]
    unknown = {**GOOD, "mapping": {**GOOD["mapping"], "case_type": "nope"}}
    assert connector_problems(unknown, case_type) == [
        "mapping.case_type: no published case type is named 'nope'"
    ]


def test_a_record_maps_with_conversions_state_and_effective_time() -> None:
    mapping = compile_connector(GOOD, 3, case_type).mapping
    record = {"no": 7, "amount": "1.234,50", "day": "03/02/2024", "flag": "Y", "text": "leak",
              "state": "N", "changed": "2024-02-03 10:00"}  # fmt: skip
    mapped = mapping.apply(record)
    assert mapped.record_id == "7" and mapped.external_id == "7"
    assert mapped.fields == {
        "claimed_amount": {"amount": 1234.5, "currency": "EUR"},
        "incident_date": "2024-02-03",
        "fraud_suspected": True,
        "description": "leak",
    }
    assert mapped.state == "submitted"
    assert mapped.effective_time == datetime(2024, 2, 3, 9, 0, tzinfo=UTC)  # Paris is UTC+1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amount": "lots"}, "mapping.fields.claimed_amount: 'lots' cannot be read as money"),
        ({"day": "2024-13-45"}, "cannot be read as date"),
        ({"flag": "maybe"}, "use true/false, yes/no"),
        ({"state": "Z"}, "the source value 'Z' is not mapped to a state"),
        ({"no": None}, "mapping.record_id: is empty"),
        ({"changed": "yesterday"}, "mapping.effective_time: 'yesterday' is not a time"),
    ],
)
def test_a_record_that_cannot_be_mapped_says_where_and_why(
    change: dict[str, Any], message: str
) -> None:
    mapping = compile_connector(GOOD, 1).mapping
    record = {"no": 7, "amount": "12", "day": "03/02/2024", "flag": "N", "text": "t",
              "state": "N", "changed": "2024-02-03T10:00:00"} | change  # fmt: skip
    with pytest.raises(MappingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        mapping.apply(record)
