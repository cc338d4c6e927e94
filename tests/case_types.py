"""Case-type definitions for tests: the shipped documents, and small ones written inline."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import yaml

from domain.definition import Definition
from services.case_type_document import compile_definition, read_document

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

SHIPPED = Path(__file__).resolve().parent.parent / "casetypes"


@cache
def shipped(name: str, version: int = 1) -> Definition:
    """A shipped case type (``generic``, ``insurance_claim``, ...), compiled."""
    document = read_document((SHIPPED / f"{name}.yaml").read_bytes(), "application/yaml")
    return compile_definition(document, version, known_case_types=[name])


def shipped_document(name: str) -> dict[str, Any]:
    return read_document((SHIPPED / f"{name}.yaml").read_bytes(), "application/yaml")


def draft(client: TestClient, key: str, document: dict[str, Any], reason: str = "t") -> Any:
    """``POST /case-types`` with ``document`` as YAML: the answer (201 with the version)."""
    return client.post(
        "/case-types",
        params={"reason": reason},
        content=yaml.safe_dump(document).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/yaml"},
    )


def from_yaml(text: str, version: int = 1, known: tuple[str, ...] = ()) -> Definition:
    """Compile a document written in a test."""
    document = read_document(text.encode(), "application/yaml")
    return compile_definition(document, version, known_case_types=[document["name"], *known])


# A small case type exercising every kind of rule action and SLA, on a 24/7 calendar.
REPAIR = """
name: repair
labels: {en: Repair, fr: Réparation}
states:
  new: {initial: true, labels: {en: New}}
  working: {labels: {en: Working}}
  on_hold: {labels: {en: On hold}}
  done: {final: true, labels: {en: Done}}
transitions:
  start: {from: new, to: working, labels: {en: Start}}
  hold: {from: working, to: on_hold, labels: {en: Hold}}
  resume: {from: on_hold, to: working, labels: {en: Resume}}
  finish: {from: working, to: done, requires: [cost], roles: [handler, manager],
           if: 'fields.cost.amount < 1000.0', labels: {en: Finish}}
fields:
  cost: {type: money, currencies: [EUR], labels: {en: Cost}}
  urgent: {type: boolean, labels: {en: Urgent}}
  contact: {type: text, labels: {en: Contact}}
slas:
  - name: fix_time
    deadline: 2h
    goal: 1h
    warn_at: [50]
    paused_in: [on_hold]
    on_breach:
      - escalate: {reason: fix time exceeded, queue: supervisors}
  - name: pickup
    state: new
    deadline: 30m
rules:
  - name: urgent_first
    on: [CaseOpened, CaseFieldsUpdated]
    if: 'has(fields.urgent) && fields.urgent'
    do:
      - set_priority: urgent
      - assign: {queue: urgent-repairs}
      - notify: tell_contact
notifications:
  tell_contact:
    channel: email
    to: [{field: contact}, {role: manager}]
    subject: "Repair {{ case.title }}"
    body: "Your repair is {{ case.priority }}."
views:
  handler: {see: [cost, urgent], edit: [cost], columns: [title, status, fields.cost]}
"""


# -- four-eyes publication over HTTP (docs/case-types.md, "Drafts, review and publication") --

_reviewers: WeakKeyDictionary[Any, str] = WeakKeyDictionary()


def reviewer_key(client: TestClient, admin_key: str) -> str:
    """A second admin key, labelled ``test-reviewer`` (another actor than the tests' admin),
    made once per client with ``admin_key``."""
    if client not in _reviewers:
        made = client.post(
            "/keys",
            json={"role": "admin", "label": "test-reviewer"},
            headers={"Authorization": f"Bearer {admin_key}"},
        )
        assert made.status_code == 201, made.text
        _reviewers[client] = made.json()["key"]
    return _reviewers[client]


def publish_reviewed(
    client: TestClient, author_key: str, name: str, version: int, reason: str = "test"
) -> Any:
    """Publish draft ``version`` the four-eyes way: submitted with ``author_key``, approved
    with a second admin key (:func:`reviewer_key`), published with ``author_key``. Answers
    the publication's response (the submission's or approval's when one of them failed)."""
    author = {"Authorization": f"Bearer {author_key}"}
    versions = f"/case-types/{name}/versions/{version}"
    submitted = client.post(f"{versions}/submit", json={"comment": "please review"}, headers=author)
    if submitted.status_code != 200:
        return submitted
    approved = client.post(
        f"{versions}/approve",
        json={"comment": "looks right"},
        headers={"Authorization": f"Bearer {reviewer_key(client, author_key)}"},
    )
    if approved.status_code != 200:
        return approved
    return client.post(f"{versions}/publish", json={"reason": reason}, headers=author)


def claim(category: str, amount: float, **more: Any) -> dict[str, Any]:
    """The fields of a valid insurance claim (casetypes/insurance_claim.yaml) of ``category``
    and amount, with ``more`` fields."""
    return {
        "policy_number": "AB-123456",
        "policy_holder": "P-77",
        "incident_date": "2026-11-02",
        "category": category,
        "claimed_amount": {"amount": amount, "currency": "EUR"},
        **more,
    }
