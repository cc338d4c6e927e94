"""A case-type version that the connectors feeding it would not fit is not submitted or
published: each connector's mapping is checked against the new version (a field it no longer
has, a field whose kind changed under the mapping's expression, a state it maps to that is
gone), every problem named at its place with the way out, and nothing is stored. Before, the
version was published and the records failed one by one in quarantine (docs/case-types.md,
"Expression types"). Real PostgreSQL."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient

from domain.context import CommandContext
from infra.bootstrap import Container
from services.auth import Role
from tests.case_types import draft, publish_reviewed, reviewer_key
from tests.conftest import auth, stored_event_count

ADMIN = CommandContext("tester", "admin")
TINY: dict[str, Any] = {
    "name": "tiny",
    "labels": {"en": "Tiny"},
    "states": {"open": {"initial": True}, "done": {"final": True}},
    "transitions": {"finish": {"from": "open", "to": "done"}},
    "fields": {"note": {"type": "text"}, "reference": {"type": "text"}},
}
MAPPING: dict[str, Any] = {
    "case_type": "tiny",
    "record_id": "record.no",
    "title": '"Claim " + record.no',
    "fields": {"note": {"from": '"Claim " + record.no'}, "reference": {"from": "record.no"}},
    "status": {"from": "record.state", "states": {"C": "done"}},
}
CONNECTOR: dict[str, Any] = {
    "name": "claims_db",
    "kind": "sql",
    "system": "legacy",
    "source": {"dialect": "postgresql", "url": "postgresql://unused", "table": "claims"},
    "mapping": MAPPING,
}


def drafted(client: TestClient, key: str, document: dict[str, Any]) -> int:
    answer = draft(client, key, document)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["version"])


def test_a_version_the_connectors_would_not_fit_is_refused_until_they_are_changed(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    container.case_types.install(TINY, "t", ADMIN)
    container.connectors.load(CONNECTOR, "tester")
    admin = keys[Role.ADMIN]
    breaking = copy.deepcopy(TINY)
    breaking["fields"]["note"] = {"type": "number"}  # the mapping gives text
    del breaking["fields"]["reference"]  # the mapping fills it
    breaking["states"] = {"open": {"initial": True}, "closed_ok": {"final": True}}
    breaking["transitions"]["finish"]["to"] = "closed_ok"
    version = drafted(client, admin, breaking)  # a draft on its own is fine

    before = stored_event_count(container)
    versions = f"/case-types/tiny/versions/{version}"
    refused = client.post(f"{versions}/submit", json={"comment": "c"}, headers=auth(admin))
    assert refused.status_code == 422, refused.text
    where = "connectors.claims_db.mapping"
    issues = {i["path"]: i for i in refused.json()["issues"]}
    assert set(issues) == {
        f"{where}.fields.note",
        f"{where}.fields.reference",
        f"{where}.status.states.C",
    }
    assert "the field 'note' is number" in issues[f"{where}.fields.note"]["message"]
    assert "'done' is not a state" in issues[f"{where}.status.states.C"]["message"]
    hint = issues[f"{where}.fields.note"]["hint"]
    assert "connector 'claims_db'" in hint and "fits both versions" in hint
    assert stored_event_count(container) == before  # nothing stored
    shown = client.get("/case-types/tiny", headers=auth(admin)).json()
    assert [v["review"] for v in shown["versions"] if v["version"] == version] == ["draft"]

    # the way out: a connector version that fits both, then the case type, then the mapping
    interim = copy.deepcopy(CONNECTOR)
    interim["mapping"]["fields"] = {}
    del interim["mapping"]["status"]
    container.connectors.load(interim, "tester")
    assert publish_reviewed(client, admin, "tiny", version).status_code == 200
    final = copy.deepcopy(interim)
    final["mapping"]["fields"] = {"note": {"from": "record.no", "as": "number"}}
    final["mapping"]["status"] = {"from": "record.state", "states": {"C": "closed_ok"}}
    container.connectors.load(final, "tester")


def test_a_connector_changed_after_approval_stops_the_publication(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    container.case_types.install(TINY, "t", ADMIN)
    admin = keys[Role.ADMIN]
    changed = copy.deepcopy(TINY)
    changed["fields"]["note"] = {"type": "number"}
    version = drafted(client, admin, changed)
    versions = f"/case-types/tiny/versions/{version}"
    submitted = client.post(f"{versions}/submit", json={"comment": "c"}, headers=auth(admin))
    assert submitted.status_code == 200, submitted.text
    reviewer = {"Authorization": f"Bearer {reviewer_key(client, admin)}"}
    approved = client.post(f"{versions}/approve", json={"comment": "ok"}, headers=reviewer)
    assert approved.status_code == 200, approved.text
    container.connectors.load(CONNECTOR, "tester")  # fits the published version only

    before = stored_event_count(container)
    refused = client.post(f"{versions}/publish", json={"reason": "go"}, headers=auth(admin))
    assert refused.status_code == 422, refused.text
    assert [i["path"] for i in refused.json()["issues"]] == [
        "connectors.claims_db.mapping.fields.note"
    ]
    assert stored_event_count(container) == before
    assert client.get("/case-types/tiny", headers=auth(admin)).json()["current_version"] == 1
