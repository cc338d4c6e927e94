"""The HTTP way in for teams that push: a bulk endpoint answered record by record, upserts by
external id, and `source` / `occurred_at` as lineage and effective time from integrator keys."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from infra.bootstrap import Container
from services.auth import Role
from tests.conftest import auth, stored_event_count


def record(external_id: str, record_id: str, **more: Any) -> dict[str, Any]:
    return {
        "case_type": "generic",
        "external_id": external_id,
        "source": {"system": "crm", "record_id": record_id},
        "occurred_at": "2025-06-01T08:00:00+02:00",
        "title": f"Complaint {external_id}",
        "fields": {"channel": "phone"},
    } | more


def push(client: TestClient, key: str, records: Any, kind: str = "application/json") -> Any:
    body = records if isinstance(records, bytes) else json.dumps(records).encode()
    return client.post("/bulk/cases", content=body, headers={**auth(key), "Content-Type": kind})


def context_of(container: Container, case_id: str, index: int = 0) -> dict[str, Any]:
    return dict(vars(container.ledger.history(UUID(case_id))[index])["context"])


def test_a_batch_upserts_by_external_id_and_answers_each_record(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    key = keys[Role.INTEGRATOR]
    batch = [
        record("X-1", "r1"),
        record("X-1", "r2", state="in_progress", fields={"channel": "mail"}),
        record("X-2", "r3", fields="not an object"),  # refused alone
        record("X-3", "r4", state="no_such_state"),  # refused: no transition there
        record("X-3", "r5"),  # held behind it
    ]
    answer = push(client, key, batch)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [r["verdict"] for r in body["records"]] == [
        "ingested", "ingested", "refused", "refused", "held"
    ]  # fmt: skip
    assert (body["ingested"], body["refused"], body["held"]) == (2, 2, 1)
    assert "fields" in body["records"][2]["detail"]
    first, second = body["records"][0], body["records"][1]
    assert first["case_id"] == second["case_id"] and second["version"] > first["version"]
    case = container.ledger.get_case(UUID(first["case_id"]))
    assert case.status == "in_progress" and case.fields["channel"] == "mail"
    opened = context_of(container, first["case_id"])
    assert (opened["source_system"], opened["source_record_id"]) == ("crm", "r1")
    assert opened["occurred_at"] == "2025-06-01T08:00:00+02:00"

    history = client.get(f"/cases/{first['case_id']}/history", headers=auth(key)).json()
    assert history[0]["source"]["system"] == "crm" and history[0]["source"]["record_id"] == "r1"
    assert history[0]["occurred_at"] != history[0]["recorded_at"]  # when it happened, and learned

    lines = b"\n".join(json.dumps(r).encode() for r in batch[:2]) + b"\n"
    again = push(client, key, lines, "application/x-ndjson").json()
    assert [r["verdict"] for r in again["records"]] == ["duplicate", "duplicate"]
    assert again["records"][0]["case_id"] == first["case_id"]  # the first outcome


def test_a_record_idempotency_key_answers_its_first_outcome_and_refuses_another_record(
    client: TestClient, keys: dict[Role, str]
) -> None:
    key = keys[Role.INTEGRATOR]
    one = {"case_type": "generic", "title": "walk-in", "idempotency_key": "k-1"}
    first = push(client, key, [one]).json()["records"][0]
    again = push(client, key, [one]).json()["records"][0]
    assert first["verdict"] == "ingested" and again["verdict"] == "duplicate"
    assert again["case_id"] == first["case_id"]
    other = push(client, key, [{**one, "title": "another"}]).json()["records"][0]
    assert other["verdict"] == "refused" and "k-1" in other["detail"]


def test_bad_batches_are_refused_whole_with_a_clear_error_and_store_nothing(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    key = keys[Role.INTEGRATOR]
    before = stored_event_count(container)
    assert push(client, keys[Role.HANDLER], [record("Y", "y")]).status_code == 403
    assert push(client, key, b"[{", "application/json").status_code == 400
    assert push(client, key, {"case_type": "generic"}).status_code == 400
    assert push(client, key, b"[]", "text/plain").status_code == 415
    too_many = push(client, key, [{"case_type": "generic"}] * 1001)
    assert too_many.status_code == 413 and "at most 1,000" in too_many.json()["detail"]
    no_system = push(client, key, [{"case_type": "generic", "external_id": "Z", "title": "t"}])
    assert "source.system" in no_system.json()["records"][0]["detail"]
    assert stored_event_count(container) == before


def test_commands_take_source_and_occurred_at_from_integrator_keys_only(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    lineage = {"source": {"system": "portal", "record_id": "P-7"}}
    lineage["occurred_at"] = "2024-12-31T23:00:00Z"  # type: ignore[assignment]
    body = {"case_type": "generic", "title": "from the portal", **lineage}
    opened = client.post("/cases", json=body, headers=auth(keys[Role.INTEGRATOR]))
    assert opened.status_code == 201, opened.text
    context = context_of(container, opened.json()["id"])
    assert context["source_system"] == "portal" and context["occurred_at"].startswith("2024-12-31")
    note = client.post(
        f"/cases/{opened.json()['id']}/notes",
        json={"text": "called back", **lineage},
        headers=auth(keys[Role.INTEGRATOR]),
    )
    assert note.status_code == 200, note.text
    refused = client.post("/cases", json=body, headers=auth(keys[Role.HANDLER]))
    assert refused.status_code == 403 and "integrator" in refused.json()["hint"]
    naive = {**body, "occurred_at": "2024-12-31T23:00:00"}
    assert client.post("/cases", json=naive, headers=auth(keys[Role.INTEGRATOR])).status_code == 422


def test_a_case_whose_records_are_too_large_is_refused_alone(
    client: TestClient, keys: dict[Role, str]
) -> None:
    huge = "x" * 600_000  # over the 512 KiB an event may take, under the body's limit
    batch = [
        record("H-1", "h1", fields={"note": huge}),
        record("H-1", "h2"),
        record("H-2", "h3"),
    ]
    answer = push(client, keys[Role.INTEGRATOR], batch).json()
    assert [r["verdict"] for r in answer["records"]] == ["refused", "held", "ingested"]
    assert "at most 524,288 bytes" in answer["records"][0]["detail"]
