"""Final states lock a case, on the real event store: over HTTP a paid claim refuses field
edits, assignments and transitions with a 409 that says how to proceed, and stores nothing
(store head, case version, case-list row); a connector's update to it is quarantined, and is
ingested exactly once after the case is reopened."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from domain.case import Case
from domain.context import CommandContext
from infra.bootstrap import Container
from services.auth import Role
from services.case_type_document import read_document
from services.connectors import Connector
from services.ingestion import SourceRecord
from tests.conftest import auth
from tests.integration.helpers import store_versions, view_rows
from tests.integration.test_case_types_api import project

FINAL_CLAIM = """
name: final_claim
labels: {en: Claim}
states:
  open: {initial: true, labels: {en: Open}}
  paid: {final: true, labels: {en: Paid}}
transitions:
  pay: {from: open, to: paid, labels: {en: Pay}}
fields:
  claim_no: {type: text, labels: {en: Claim number}}
  amount: {type: money, labels: {en: Amount}}
  archive_ref: {type: text, editable_when_final: true, labels: {en: Archive reference}}
rules:
  - name: archive_on_payment
    on: [CaseStatusChanged]
    if: 'case.status == "paid"'
    do: [{assign: {queue: archive}}]
"""
CONNECTOR: dict[str, Any] = {
    "name": "claims_db",
    "kind": "sql",
    "system": "legacy-claims",
    "source": {"dialect": "postgresql", "url": "postgresql://unused", "table": "claims"},
    "mapping": {
        "case_type": "final_claim",
        "record_id": "record.claim_no",
        "title": '"Claim " + record.claim_no',
        "fields": {
            "claim_no": "record.claim_no",
            "amount": {"from": "record.amount", "as": "money", "currency": "EUR"},
        },
        "status": {"from": "record.state", "states": {"O": "open", "P": "paid"}},
    },
}
EUR = "EUR"


@pytest.fixture
def installed(container: Container) -> None:
    document = read_document(FINAL_CLAIM.encode(), "application/yaml")
    container.case_types.install(document, "test", CommandContext("tester", "admin"))


def test_a_paid_claim_refuses_changes_with_a_409_and_stores_nothing(
    client: TestClient, keys: dict[Role, str], container: Container, installed: None
) -> None:
    handler, manager = auth(keys[Role.HANDLER]), auth(keys[Role.MANAGER])
    body = {"case_type": "final_claim", "title": "Flood", "fields": {"claim_no": "F-9"}}
    case_id = client.post("/cases", json=body, headers=handler).json()["id"]
    paid = client.post(f"/cases/{case_id}/transitions", json={"transition": "pay"}, headers=handler)
    assert paid.status_code == 200, paid.text
    project(container)
    head, versions, rows = container.reader.head(), store_versions(container), view_rows(container)
    assert rows[case_id][1:] == ("paid", None)

    refused = {
        "fields": ("PATCH", "fields", {"fields": {"amount": {"amount": 5, "currency": EUR}}}),
        "assign": ("POST", "assign", {"assignee": "bob"}),
        "unassign": ("POST", "assign", {"assignee": None}),
        "transition": ("POST", "transitions", {"transition": "pay"}),
        "close": ("POST", "close", {"reason": "tidy up"}),
    }
    for what, (method, verb, sent) in refused.items():
        answer = client.request(method, f"/cases/{case_id}/{verb}", json=sent, headers=manager)
        assert answer.status_code == 409, (what, answer.text)
        error = answer.json()
        assert error["code"] == "case_final", what
        assert "is in the final state 'paid', so it is locked" in error["detail"], what
        assert error["hint"].startswith(f"reopen it first (POST /cases/{case_id}/reopen"), what
    fields = client.patch(
        f"/cases/{case_id}/fields",
        json={"fields": {"amount": {"amount": 5, "currency": EUR}}},
        headers=handler,
    ).json()
    assert fields["detail"].endswith("its fields may not be changed (amount)")
    assert "editable_when_final: true in the case type 'final_claim'" in fields["hint"]

    project(container)
    assert container.reader.head() == head
    assert store_versions(container) == versions
    assert view_rows(container) == rows

    seen = client.get(f"/cases/{case_id}", headers=manager).json()
    assert (seen["transitions"], seen["editable_fields"]) == ([], ["archive_ref"])
    assert {name for name, allowed in seen["actions"].items() if allowed} == {
        "reopen",
        "add_note",
        "edit_fields",
    }
    assert seen["queue"] == "archive"  # the rule of the payment acted as the case was paid

    still = {"fields": {"archive_ref": "box 12"}}
    assert client.patch(f"/cases/{case_id}/fields", json=still, headers=handler).status_code == 200
    note = client.post(f"/cases/{case_id}/notes", json={"text": "paid"}, headers=handler)
    assert note.status_code == 200
    reopened = client.post(f"/cases/{case_id}/reopen", json={"reason": "new bill"}, headers=manager)
    assert reopened.status_code == 200
    edit = {"fields": {"amount": {"amount": 5, "currency": EUR}}}
    assert client.patch(f"/cases/{case_id}/fields", json=edit, headers=handler).status_code == 200


@pytest.fixture
def connector(container: Container, installed: None) -> Connector:
    loaded, _ = container.connectors.load(CONNECTOR, "tester")  # to replay its quarantine
    return loaded


def row(claim_no: str, state: str, amount: str = "100,50", **more: Any) -> SourceRecord:
    data = {"claim_no": claim_no, "amount": amount, "state": state, **more}
    return SourceRecord(data, position=f"row:{claim_no}")


def test_an_update_of_a_paid_claim_is_quarantined_and_ingested_once_after_reopening(
    container: Container, connector: Connector
) -> None:
    ingest = container.ingestor.ingest
    [first] = ingest(connector, [row("F-1", "P")], "b1")
    case_id = UUID(first.case_id or "")
    assert container.ledger.get_case(case_id).status == "paid"
    # the same values again (another column changed in the silo) are no change, not refused
    same = ingest(connector, [row("F-1", "P", note="seen by a clerk")], "b2")
    assert [o.verdict for o in same] == ["duplicate"]
    head, version = container.reader.head(), first.version

    late = ingest(connector, [row("F-1", "P", "200,00"), row("F-1", "P", "300,00")], "b3")
    assert [o.verdict for o in late] == ["quarantined", "held"]  # the later one waits behind
    assert "final state 'paid', so it is locked" in (late[0].reason or "")
    assert "its fields may not be changed (amount)" in (late[0].reason or "")
    assert (container.reader.head(), container.ledger.get_case(case_id).version) == (head, version)

    manager = CommandContext("boss", "manager")
    container.ledger.reopen_case(case_id, "the silo corrected the amount", manager, None)
    report, replayed = container.connector_admin.replay("claims_db")
    # each record is judged on the case as it stands: the first pays the claim again
    assert [o.verdict for o in replayed] == ["ingested", "quarantined"]
    assert report.replayed == 1
    assert container.connector_admin.replay("claims_db")[1][0].verdict == "quarantined"
    amounts = [
        e.changes["amount"]
        for e in container.ledger.history(case_id)
        if isinstance(e, Case.FieldsUpdated) and "amount" in e.changes
    ]
    assert amounts == [{"amount": 200.0, "currency": EUR}]  # ingested once


def test_the_record_that_pays_a_claim_does_not_unlock_the_next_one_in_its_batch(
    container: Container, connector: Connector
) -> None:
    outcomes = container.ingestor.ingest(
        connector, [row("F-2", "P"), row("F-2", "P", "9,00")], "b1"
    )
    assert [o.verdict for o in outcomes] == ["ingested", "quarantined"]
    case = container.ledger.get_case(UUID(outcomes[0].case_id or ""))
    assert case.queue == "archive"  # the first record's rules acted as it paid the claim
    assert case.fields["amount"] == {"amount": 100.5, "currency": EUR}
