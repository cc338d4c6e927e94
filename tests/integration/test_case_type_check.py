"""POST /case-types/check: validation as you type. Every problem of a document in one answer,
each at its place, and nothing stored."""

from __future__ import annotations

import json
import time
from typing import Any

import yaml
from fastapi.testclient import TestClient

from infra.bootstrap import Container
from services.auth import Role
from tests.case_types import shipped_document
from tests.conftest import auth, stored_event_count

YAML = {"Content-Type": "application/yaml"}

FOUR_PROBLEMS = """
name: claim
labels: {en: Claim}
states:
  open: {initial: true}
  done: {final: true}
transitions:
  finish: {from: open, to: don, lables: {en: Finish}}
fields:
  estimate: {type: money, currencies: [EUR]}
rules:
  - name: big
    on: [CaseOpened]
    if: 'fields.colour == "red" &&'
    do: [{set_priority: high}]
  - name: bigger
    on: [CaseOpened]
    if: 'fields.estimate > 5000'
    do: [{set_priority: urgent}]
"""


def check(
    client: TestClient, key: str, body: bytes, headers: dict[str, str] = YAML
) -> dict[str, Any]:
    answer = client.post("/case-types/check", content=body, headers={**auth(key), **headers})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_every_problem_is_reported_at_once_at_its_place_and_nothing_is_stored(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    before = stored_event_count(container)
    report = check(client, keys[Role.ADMIN], FOUR_PROBLEMS.encode())
    assert report["valid"] is False
    assert [(i["pointer"], i["message"], i["hint"]) for i in report["issues"]] == [
        (
            "/transitions/finish/lables",
            "unknown key; allowed keys are from, to, roles, requires, if, labels, blocked_reason",
            "",
        ),
        ("/transitions/finish/to", "unknown state 'don'; states are open, done", ""),
        (
            "/rules/0/if",
            "'fields.colour == \"red\" &&' is not a valid condition: line 1, column 26: "
            "mismatched input '<EOF>'",
            "",
        ),
        ("/rules/0/if", "unknown field 'colour'; fields are estimate", ""),
        (
            "/rules/1/if",
            "fields.estimate is money ({amount, currency}) and 5000 is a whole number: they "
            "cannot be compared",
            "compare its amount: fields.estimate.amount > 5000",
        ),
    ]
    assert report["issues"][4]["path"] == "rules[1].if"
    assert report["problems"][4] == (
        "rules[1].if: fields.estimate is money ({amount, currency}) and 5000 is a whole number: "
        "they cannot be compared; compare its amount: fields.estimate.amount > 5000"
    )
    assert stored_event_count(container) == before
    assert client.get("/case-types/claim", headers=auth(keys[Role.ADMIN])).status_code == 404


def test_a_valid_document_in_json_and_an_unreadable_one(
    client: TestClient, keys: dict[Role, str]
) -> None:
    document = json.dumps(shipped_document("insurance_claim")).encode()
    valid = check(client, keys[Role.ADMIN], document, {"Content-Type": "application/json"})
    assert valid == {"valid": True, "problems": [], "issues": []}
    broken = check(client, keys[Role.ADMIN], b"name: [claim\n")
    assert broken["valid"] is False
    [issue] = broken["issues"]
    assert issue["pointer"] == "" and "line 2" in issue["message"], issue


def test_a_document_of_500_fields_and_500_rules_answers_quickly(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    container.case_types.names()  # the registry warmed up, as it is in a running service
    fields = {f"f{i}": {"type": "money" if i % 2 else "number"} for i in range(500)}
    rules = [
        {"name": f"r{i}", "on": ["CaseOpened"], "if": f"fields.f{i} > 100 && has(fields.f{i})",
         "do": [{"set_priority": "high"}]}
        for i in range(500)
    ]  # fmt: skip
    document = {
        "name": "wide", "labels": {"en": "Wide"},
        "states": {"open": {"initial": True}, "done": {"final": True}},
        "fields": fields, "rules": rules,
    }  # fmt: skip
    body = yaml.safe_dump(document).encode()
    started = time.perf_counter()
    report = check(client, keys[Role.ADMIN], body)
    elapsed = time.perf_counter() - started
    assert len(report["issues"]) == 250  # each money field compared with a number
    assert report["issues"][0]["hint"] == "compare its amount: fields.f1.amount > 100"
    assert elapsed < 3.0, f"checking took {elapsed:.2f} s"
