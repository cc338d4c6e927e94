"""Time travel over HTTP on the real event store: a case read as recorded at a past moment
(``as_of``, ``version``) is the case as it was then, and a read at an effective moment
(``effective_at``) orders facts a silo reported late by when they happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from domain.context import CommandContext
from infra.bootstrap import Container
from services.application import SNAPSHOT_EVERY
from services.auth import Role
from services.case_type_document import read_document
from services.connectors import Connector, compile_connector
from services.ingestion import SourceRecord
from tests.conftest import auth

PAST_ONLY = {"as_of", "effective_at"}  # the fields a past read adds to the case


def _now_view(client: TestClient, case_id: str, headers: dict[str, str]) -> dict[str, Any]:
    case = client.get(f"/cases/{case_id}", headers=headers).json()
    assert case["as_of"] is None and case["effective_at"] is None
    return {
        "case": {k: v for k, v in case.items() if k not in PAST_ONLY},
        "history": client.get(f"/cases/{case_id}/history", headers=headers).json(),
        "timeline": client.get(f"/cases/{case_id}/timeline", headers=headers).json(),
    }


def _past_view(
    client: TestClient, case_id: str, headers: dict[str, str], query: str
) -> dict[str, Any]:
    answers = {
        "case": client.get(f"/cases/{case_id}?{query}", headers=headers),
        "history": client.get(f"/cases/{case_id}/history?{query}", headers=headers),
        "timeline": client.get(f"/cases/{case_id}/timeline?{query}", headers=headers),
    }
    for answer in answers.values():
        assert answer.status_code == 200, answer.text
    view = {name: answer.json() for name, answer in answers.items()}
    view["case"] = {k: v for k, v in view["case"].items() if k not in PAST_ONLY}
    return view


def test_a_case_read_as_of_a_past_moment_is_the_case_as_it_was_then(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    handler, auditor = auth(keys[Role.HANDLER]), auth(keys[Role.AUDITOR])
    body = {"case_type": "generic", "title": "Leaking roof", "fields": {"amount": 120}}
    case_id = client.post("/cases", json=body, headers=handler).json()["id"]
    commands: list[tuple[str, dict[str, Any]]] = [
        ("assign", {"assignee": "ann"}),
        ("transitions", {"transition": "start_work", "reason": "on it"}),
        ("notes", {"text": "called the roofer"}),
        ("close", {"reason": "fixed"}),
    ]
    seen: list[tuple[datetime, dict[str, Any]]] = []
    for verb, command in commands:
        seen.append((datetime.now(UTC), _now_view(client, case_id, auditor)))
        answer = client.post(f"/cases/{case_id}/{verb}", json=command, headers=handler)
        assert answer.status_code == 200, answer.text
    context = CommandContext("bulk", "handler")
    for n in range(SNAPSHOT_EVERY + 10):  # past a snapshot: reads start from the nearest one
        container.ledger.add_note(UUID(case_id), f"note {n}", context, None)
        if n == SNAPSHOT_EVERY // 2:
            seen.append((datetime.now(UTC), _now_view(client, case_id, auditor)))
    seen.append((datetime.now(UTC), _now_view(client, case_id, auditor)))

    for moment, then in seen:
        version = then["case"]["version"]
        as_of = _past_view(client, case_id, auditor, f"as_of={quote(moment.isoformat())}")
        assert as_of == then, f"as of {moment}"
        assert _past_view(client, case_id, auditor, f"version={version}") == then
    answer = client.get(f"/cases/{case_id}?as_of={quote(seen[2][0].isoformat())}", headers=auditor)
    assert answer.json()["as_of"] == seen[2][0].isoformat().replace("+00:00", "Z")
    assert answer.headers["X-Case-Version"] == str(seen[2][1]["case"]["version"])


def test_a_moment_that_cannot_be_read_is_refused_with_what_to_do(
    client: TestClient, keys: dict[Role, str]
) -> None:
    handler = auth(keys[Role.HANDLER])
    before = datetime.now(UTC) - timedelta(seconds=1)
    case = client.post("/cases", json={"case_type": "generic", "title": "T"}, headers=handler)
    case_id = case.json()["id"]

    def refusal(query: str) -> tuple[int, str]:
        answer = client.get(f"/cases/{case_id}?{query}", headers=handler)
        return answer.status_code, f"{answer.json()['detail']} / {answer.json()['hint']}"

    status, text = refusal(f"as_of={quote(before.isoformat())}")
    assert status == 404 and "did not exist yet" in text and "opened at 20" in text
    status, text = refusal("version=2")
    assert status == 404 and "is at version 1" in text
    status, text = refusal("version=1&as_of=2030-01-01T00:00:00Z")
    assert status == 422 and "not both" in text
    status, text = refusal("as_of=yesterday")
    assert status == 422 and "ISO 8601" in text
    status, text = refusal("as_of=2030-01-01T00:00:00")
    assert status == 422 and "no UTC offset" in text and "2030-01-01T00:00:00Z" in text
    # An unencoded "+" arrives as a space: read as the offset it was.
    spaced = client.get(f"/cases/{case_id}?as_of=2030-01-01T00:00:00+01:00", headers=handler)
    assert spaced.status_code == 200, spaced.text
    status, _ = refusal("effective_at=2030-01-01")
    assert status == 422


CLAIM = """
name: late_claim
labels: {en: Late claim}
states:
  open: {initial: true, labels: {en: Open}}
  approved: {labels: {en: Approved}}
transitions:
  approve: {from: open, to: approved, roles: [integrator], labels: {en: Approve}}
fields:
  claim_no: {type: text, labels: {en: Claim number}}
  amount: {type: number, labels: {en: Amount}}
rules:
  - name: big_claim
    on: [CaseFieldsUpdated]
    if: 'fields.amount > 140.0'
    do:
      - set_priority: high
"""

SILO: dict[str, Any] = {
    "name": "claims_db",
    "kind": "sql",
    "system": "legacy-claims",
    "source": {"dialect": "postgresql", "url": "postgresql://unused", "table": "claims"},
    "mapping": {
        "case_type": "late_claim",
        "record_id": "record.claim_no",
        "title": '"Claim " + record.claim_no',
        "fields": {"claim_no": "record.claim_no", "amount": "double(record.amount)"},
        "status": {"from": "record.state", "states": {"O": "open", "A": "approved"}},
        "effective_time": "record.changed",
        "timezone": "UTC",
    },
}


@pytest.fixture
def silo(container: Container) -> Connector:
    document = read_document(CLAIM.encode(), "application/yaml")
    container.case_types.install(document, "test", CommandContext("tester", "admin"))
    return compile_connector(SILO, 1, container.case_types.current)


def record(state: str, amount: str, changed: str) -> SourceRecord:
    data = {"claim_no": "L-1", "state": state, "amount": amount, "changed": changed}
    return SourceRecord(data, position=f"row:{changed}")


def test_effective_time_reads_put_a_late_fact_where_it_happened(
    client: TestClient, keys: dict[Role, str], container: Container, silo: Connector
) -> None:
    auditor = auth(keys[Role.AUDITOR])
    ingest = container.ingestor.ingest
    opened = ingest(silo, [record("O", "100", "2024-02-03T10:00:00")])[0]
    assert opened.verdict == "ingested", opened.reason
    case_id = opened.case_id
    ingest(silo, [record("A", "130", "2024-03-01T10:00:00")])
    before_late_fact = datetime.now(UTC)
    late = ingest(silo, [record("A", "150", "2024-02-15T10:00:00")])[0]  # reported late
    assert late.verdict == "ingested", late.reason

    def case(query: str) -> dict[str, Any]:
        answer = client.get(f"/cases/{case_id}?{query}", headers=auditor)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    assert case("")["fields"]["amount"] == 150  # recorded last
    latest = case("effective_at=2024-12-31T00:00:00Z")
    assert (latest["fields"]["amount"], latest["priority"]) == (130, "high")  # happened last
    feb20 = case("effective_at=2024-02-20T00:00:00Z")
    assert (feb20["fields"]["amount"], feb20["status"], feb20["priority"]) == (150, "open", "high")
    feb10 = case("effective_at=2024-02-10T00:00:00Z")
    assert (feb10["fields"]["amount"], feb10["priority"]) == (100, "normal")
    known_then = case(
        f"effective_at=2024-02-20T00:00:00Z&as_of={quote(before_late_fact.isoformat())}"
    )
    assert known_then["fields"]["amount"] == 100  # the late fact was not known yet
    assert known_then["effective_at"] == "2024-02-20T00:00:00Z"
    too_early = client.get(f"/cases/{case_id}?effective_at=2024-01-01T00:00:00Z", headers=auditor)
    assert too_early.status_code == 404
    assert "opened effective 2024-02-03T10:00:00+00:00" in too_early.json()["detail"]

    history = client.get(
        f"/cases/{case_id}/history?effective_at=2024-12-31T00:00:00Z", headers=auditor
    ).json()
    told = [(h["type"], h["effective_at"], h["data"]) for h in history]
    effective = [at for _, at, _ in told]
    assert effective == sorted(effective)
    kinds = [kind for kind, _, _ in told]
    late_update = next(i for i, (k, _, d) in enumerate(told) if d.get("changes") == {"amount": 150})
    approval = kinds.index("CaseStatusChanged")
    assert late_update < approval  # told where it happened, though recorded after
    rule_fired = kinds.index("CaseRuleFired")
    # The rule's outcome is dated by its cause: the late fact that made the amount big.
    assert told[rule_fired][1] == told[late_update][1] == "2024-02-15T10:00:00Z"
    assert history[late_update]["source"]["system"] == "legacy-claims"
