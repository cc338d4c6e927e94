"""A case's life over HTTP, against the real PostgreSQL event store."""

from __future__ import annotations

from fastapi.testclient import TestClient

from infra.bootstrap import Container
from services.auth import Role
from tests.conftest import auth


def open_case(client: TestClient, key: str, title: str = "Broken window", **extra: object) -> str:
    body = {"case_type": "generic", "title": title, "fields": {"amount": 120}, **extra}
    answer = client.post("/cases", json=body, headers=auth(key))
    assert answer.status_code == 201, answer.text
    assert answer.json()["version"] == 1
    return str(answer.json()["id"])


def test_a_case_lives_through_every_command(client: TestClient, keys: dict[Role, str]) -> None:
    handler, manager = auth(keys[Role.HANDLER]), auth(keys[Role.MANAGER])
    case_id = open_case(client, keys[Role.HANDLER], party_id="P-17")
    steps = [
        ("assign", {"assignee": "bob", "expected_version": 1}, handler),
        ("transitions", {"transition": "start_work", "reason": "started"}, handler),
        ("notes", {"text": "called the client"}, handler),
        ("close", {"reason": "repaired"}, handler),
        ("reopen", {"reason": "still leaking"}, manager),
    ]
    for version, (verb, body, headers) in enumerate(steps, start=2):
        answer = client.post(f"/cases/{case_id}/{verb}", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"id": case_id, "version": version}

    case = client.get(f"/cases/{case_id}", headers=handler).json()
    assert case["status"] == "open"
    assert case["assignee"] == "bob"
    assert case["party_id"] == "P-17"
    assert case["fields"] == {"amount": 120}
    assert case["notes"] == [{"version": 4, "text": "called the client", "author": "test-handler"}]
    assert case["version"] == 6

    history = client.get(f"/cases/{case_id}/history", headers=auth(keys[Role.AUDITOR])).json()
    assert [h["type"] for h in history] == [
        "CaseOpened",
        "CaseAssigned",
        "CaseStatusChanged",
        "CaseNoteAdded",
        "CaseClosed",
        "CaseReopened",
    ]
    assert history[4]["data"] == {"reason": "repaired"}
    assert history[5]["actor"] == {"id": "test-manager", "role": "manager"}
    assert [h["version"] for h in history] == [1, 2, 3, 4, 5, 6]


def test_stale_expected_version_is_refused_and_stores_nothing(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    case_id = open_case(client, keys[Role.HANDLER])
    headers = auth(keys[Role.HANDLER])
    client.post(f"/cases/{case_id}/notes", json={"text": "first"}, headers=headers)
    stale = client.post(
        f"/cases/{case_id}/notes", json={"text": "late", "expected_version": 1}, headers=headers
    )
    assert stale.status_code == 409
    assert stale.json()["code"] == "version_conflict"
    assert "version 2" in stale.json()["detail"]
    assert client.get(f"/cases/{case_id}", headers=headers).json()["version"] == 2


def test_closed_case_refuses_work_until_reopened(client: TestClient, keys: dict[Role, str]) -> None:
    headers = auth(keys[Role.HANDLER])
    case_id = open_case(client, keys[Role.HANDLER])
    client.post(f"/cases/{case_id}/close", json={"reason": "done"}, headers=headers)
    body = {"transition": "wait"}
    answer = client.post(f"/cases/{case_id}/transitions", json=body, headers=headers)
    assert answer.status_code == 409
    assert answer.json()["code"] == "case_final"
    assert answer.json()["hint"].startswith("reopen it first")
    again = client.post(f"/cases/{case_id}/close", json={"reason": "x"}, headers=headers)
    assert again.status_code == 409
