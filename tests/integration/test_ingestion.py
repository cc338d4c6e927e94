"""The ingestion core on the real event store: records become case history exactly once, with
lineage and effective time; bad records are quarantined and block only their own case."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from domain.context import CommandContext
from infra.bootstrap import Container
from services.case_type_document import read_document
from services.connectors import Connector, compile_connector
from services.ingestion import RunReport, SourceRecord

LEGACY_CLAIM = """
name: legacy_claim
labels: {en: Legacy claim}
states:
  open: {initial: true, labels: {en: Open}}
  approved: {labels: {en: Approved}}
  paid: {final: true, labels: {en: Paid}}
transitions:
  approve: {from: open, to: approved, roles: [integrator, manager], labels: {en: Approve}}
  pay: {from: approved, to: paid, roles: [integrator], labels: {en: Pay}}
fields:
  claim_no: {type: text, labels: {en: Claim number}}
  amount: {type: money, labels: {en: Amount}}
  incident_date: {type: date, labels: {en: Incident date}}
"""

CONNECTOR: dict[str, Any] = {
    "name": "claims_db",
    "kind": "sql",
    "system": "legacy-claims",
    "source": {"dialect": "postgresql", "url": "postgresql://unused", "table": "claims"},
    "mapping": {
        "case_type": "legacy_claim",
        "record_id": "record.claim_no",
        "title": '"Claim " + record.claim_no',
        "fields": {
            "claim_no": "record.claim_no",
            "amount": {"from": "record.amount", "as": "money", "currency": "EUR"},
            "incident_date": {"from": "record.incident", "as": "date", "format": "%d/%m/%Y"},
        },
        "status": {"from": "record.state", "states": {"O": "open", "A": "approved", "P": "paid"}},
        "effective_time": "record.changed",
        "timezone": "Europe/Brussels",
    },
}


def row(claim_no: str, state: str = "O", amount: str = "100,50", **more: Any) -> SourceRecord:
    data = {"claim_no": claim_no, "amount": amount, "incident": "03/02/2024", "state": state}
    data |= {"changed": "2024-02-03T10:00:00"} | more
    return SourceRecord(data, position=f"row:{claim_no}")


@pytest.fixture
def connector(container: Container) -> Connector:
    document = read_document(LEGACY_CLAIM.encode(), "application/yaml")
    container.case_types.install(document, "test", CommandContext("tester", "admin"))
    return compile_connector(CONNECTOR, 1, container.case_types.current)


def case_of(container: Container, outcome: Any) -> Any:
    return container.ledger.get_case(UUID(outcome.case_id))


def test_records_open_and_update_cases_once_with_lineage_and_effective_time(
    container: Container, connector: Connector
) -> None:
    report = RunReport(connector.name, connector.version)
    first = container.ingestor.ingest(connector, [row("C-1"), row("C-2")], "b1", report)
    assert [o.verdict for o in first] == ["ingested", "ingested"]
    case = case_of(container, first[0])
    assert case.fields["amount"] == {"amount": 100.5, "currency": "EUR"}
    assert case.fields["incident_date"] == "2024-02-03"
    opened = vars(container.ledger.history(case.id)[0])
    assert opened["context"]["occurred_at"] == "2024-02-03T10:00:00+01:00"  # Brussels, back-dated
    assert opened["context"]["connector"] == "claims_db"
    assert opened["context"]["batch_id"] == "b1"
    assert opened["context"]["source_record_id"] == "C-1"
    assert opened["context"]["source_position"] == "row:C-1"

    again = container.ingestor.ingest(connector, [row("C-1"), row("C-2")], "b2", report)
    assert [o.verdict for o in again] == ["duplicate", "duplicate"]  # redelivered: no event

    changed = container.ingestor.ingest(connector, [row("C-1", "A"), row("C-1", "P")], "b3", report)
    assert [o.verdict for o in changed] == ["ingested", "ingested"]
    assert case_of(container, changed[1]).status == "paid"
    assert case_of(container, changed[1]).id == case.id  # the external id found the case
    assert (report.seen, report.ingested, report.duplicates) == (6, 4, 2)
    assert report.adds_up


def test_a_poison_record_blocks_only_its_own_case(
    container: Container, connector: Connector
) -> None:
    container.ingestor.ingest(connector, [row("P-1")], "setup")
    outcomes = container.ingestor.ingest(
        connector,
        [row("P-1", "X"), row("P-1", "A"), row("P-2"), row("P-3", amount="lots")],
        "b1",
    )
    assert [o.verdict for o in outcomes] == ["quarantined", "held", "ingested", "quarantined"]
    assert "'X' is not mapped to a state" in (outcomes[0].reason or "")
    assert "cannot be read as money" in (outcomes[3].reason or "")
    later = container.ingestor.ingest(connector, [row("P-1", "A"), row("P-1", "O")], "b2")
    assert [o.verdict for o in later] == ["held", "held"]  # still behind the poison record
    waiting = container.quarantine.waiting("claims_db")
    assert [(w["external_id"], w["held"], w["batch_id"]) for w in waiting] == [
        ("P-1", False, "b1"),
        ("P-1", True, "b1"),
        ("P-3", False, "b1"),
        ("P-1", True, "b2"),  # the record read again is set aside once, a new one is kept
    ]
    assert waiting[0]["record"]["state"] == "X"  # the raw record, to replay after a fix


def test_a_refused_transition_quarantines_the_record_and_keeps_the_ones_before(
    container: Container, connector: Connector
) -> None:
    outcomes = container.ingestor.ingest(
        connector, [row("T-1"), row("T-1", "P"), row("T-1", "A")], "b1"
    )
    assert [o.verdict for o in outcomes] == ["ingested", "quarantined", "held"]
    assert "no transition from 'open' to 'paid'" in (outcomes[1].reason or "")
    case = case_of(container, outcomes[0])
    assert case.status == "open" and case.version == outcomes[0].version


def test_quarantined_records_are_replayed_in_order_after_the_mapping_is_fixed(
    container: Container, connector: Connector
) -> None:
    store = container.connectors
    store.load(CONNECTOR, "tester")
    report = RunReport(connector.name, connector.version)
    batch = [row("R-1"), row("R-1", "X"), row("R-1", "P"), row("R-2")]
    container.ingestor.ingest(connector, batch, "b1", report)
    assert (report.ingested, report.quarantined) == (2, 2) and report.adds_up

    again, failed = container.connector_admin.replay("claims_db")  # not fixed yet
    assert [o.verdict for o in failed] == ["quarantined", "held"] and again.replayed == 0
    assert len(container.quarantine.waiting("claims_db")) == 2  # they keep waiting

    states = {"O": "open", "X": "approved", "P": "paid"}
    status = {"from": "record.state", "states": states}
    fixed = {**CONNECTOR, "mapping": {**CONNECTOR["mapping"], "status": status}}
    loaded, new = store.load(fixed, "tester")
    assert new and loaded.version == 2

    replayed, outcomes = container.connector_admin.replay("claims_db")
    assert [o.verdict for o in outcomes] == ["ingested", "ingested"]
    assert replayed.replayed == 2
    assert case_of(container, outcomes[1]).status == "paid"
    assert container.quarantine.waiting("claims_db") == []
    history = container.ledger.history(UUID(outcomes[1].case_id or ""))
    assert vars(history[-1])["context"]["connector_version"] == 2  # mapped by the fixed version
