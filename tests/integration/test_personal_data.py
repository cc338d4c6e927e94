"""Personal data is sealed under its data subject's key wherever it is stored, and erasing
the subject leaves no readable personal value anywhere: the event store, the snapshots,
every read model, the Kafka topic's raw bytes, the CSV and audit exports and the API
answers, and the exports show those values as erased, not empty (docs/audit.md, "Personal
data and erasure"). Real PostgreSQL and the real broker."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from domain.context import CommandContext
from domain.evidence import verify_bundle
from infra.audit_bundle import EvidenceBundles
from infra.audit_verify import Verifier
from infra.bootstrap import Container
from infra.settings import Settings
from services.auth import Role
from tests.conftest import auth
from tests.integration.helpers import raw_records

ADMIN = CommandContext("test-setup", "admin")
SUBJECT = "patient-4711"
NAME, EMAIL, NEW_EMAIL = "Zoë Quillfeather", "zoe.quill@example.org", "zq-new@example.org"
OTHER_NAME = "Bartholomew Inkwell"
PLAIN = (NAME, EMAIL, NEW_EMAIL, "Quillfeather", "zoe.quill")
PATIENT = {
    "name": "patient_file",
    "labels": {"en": "Patient file"},
    "states": {"open": {"initial": True}, "done": {"final": True}},
    "transitions": {"finish": {"from": "open", "to": "done"}},
    "fields": {
        "full_name": {"type": "text", "personal": True},
        "email": {"type": "text", "personal": True},
        "ward": {"type": "text"},
    },
    "views": {"handler": {
        "see": ["full_name", "email", "ward"], "edit": ["full_name", "email", "ward"],
        "columns": ["title", "fields.full_name", "fields.email", "fields.ward"],
    }},
}  # fmt: skip


def open_patient(client: TestClient, key: str, party: str | None, name: str, email: str) -> str:
    body = {
        "case_type": "patient_file",
        "title": "Admission",
        "party_id": party,
        "fields": {"full_name": name, "email": email, "ward": "B2"},
    }
    answer = client.post("/cases", json=body, headers=auth(key))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def everything_stored(container: Container) -> str:
    """Every row of every table of the database, as text (bytea as its UTF-8 decoding)."""
    with container.pool.connection() as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema IN ('public', 'analytics') AND table_type = 'BASE TABLE'"
        ).fetchall()
        dumped = []
        for table in tables:
            rows = conn.execute(
                f'SELECT * FROM "{table["table_schema"]}"."{table["table_name"]}"'
            ).fetchall()
            for row in rows:
                dumped += [
                    bytes(v).decode("utf-8", "replace") if isinstance(v, bytes | memoryview)
                    else str(v)
                    for v in row.values()
                ]  # fmt: skip
    return "\n".join(dumped)


def readable(text: str) -> list[str]:
    return [plain for plain in PLAIN if plain in text]


def api_answers(client: TestClient, key: str, case_ids: list[str]) -> str:
    answers = [client.get("/cases?case_type=patient_file", headers=auth(key)).text]
    answers.append(client.get("/exports/cases.csv?case_type=patient_file", headers=auth(key)).text)
    for case_id in case_ids:
        for path in ("", "/history", "/timeline"):
            answer = client.get(f"/cases/{case_id}{path}", headers=auth(key))
            assert answer.status_code == 200, answer.text
            answers.append(answer.text)
    return "\n".join(answers)


def test_after_erasure_no_personal_value_is_readable_anywhere_and_others_stay_readable(
    client: TestClient, keys: dict[Role, str], container: Container, settings: Settings
) -> None:
    container.case_types.install(PATIENT, "test setup", ADMIN)
    handler, admin = keys[Role.HANDLER], keys[Role.ADMIN]
    first = open_patient(client, handler, SUBJECT, NAME, EMAIL)
    second = open_patient(client, handler, SUBJECT, NAME, EMAIL)
    other = open_patient(client, handler, "patient-9", OTHER_NAME, "b.inkwell@example.org")
    changed = client.patch(
        f"/cases/{first}/fields", json={"fields": {"email": NEW_EMAIL}}, headers=auth(handler)
    )
    assert changed.status_code == 200, changed.text
    container.ledger.take_snapshot(UUID(first))

    # sealed where stored, on the topic and in the read models; plain through the API
    container.relay.publish_available()
    container.projections.catch_up_from_store(container.reader.head(), 100_000)
    assert readable(everything_stored(container)) == []
    assert OTHER_NAME not in everything_stored(container)
    before = client.get(f"/cases/{first}", headers=auth(handler)).json()
    assert (before["fields"]["full_name"], before["fields"]["email"]) == (NAME, NEW_EMAIL)
    assert before["erased"] == [] and before["legal_hold"] is None
    listed = {c["id"]: c for c in client.get("/cases", headers=auth(handler)).json()["cases"]}
    assert listed[second]["fields"]["email"] == EMAIL
    assert (
        EMAIL in client.get("/exports/cases.csv?case_type=patient_file", headers=auth(handler)).text
    )

    container.audit.checkpoint_all()  # signed over the sealed events, before erasure
    erased = client.post(
        f"/subjects/{SUBJECT}/erasure", json={"reason": "GDPR art. 17, request 42"},
        headers=auth(admin),
    )  # fmt: skip
    assert erased.status_code == 200, erased.text
    assert set(erased.json()["cases"]) == {first, second}
    assert erased.json()["key_destroyed"] is True

    container.relay.publish_available()
    container.projections.catch_up_from_store(container.reader.head(), 100_000)
    records = raw_records(settings, 6)  # 3 opened, 1 field change, 2 erasures
    topic = b"\n".join(r.value for r in records)
    assert len(records) == 6 and topic.count(b'"CasePersonalDataErased"') == 2
    assert readable(topic.decode("utf-8", "replace")) == []
    assert readable(everything_stored(container)) == []
    for role in (Role.HANDLER, Role.ADMIN, Role.AUDITOR):
        assert readable(api_answers(client, keys[role], [first, second, other])) == []
    case = client.get(f"/cases/{first}", headers=auth(handler)).json()
    assert case["fields"] == {"full_name": None, "email": None, "ward": "B2"}
    assert case["erased"] == ["email", "full_name"]
    past = client.get(f"/cases/{first}?version=1", headers=auth(handler))
    assert past.status_code == 200, past.text
    assert past.json()["fields"]["full_name"] is None  # its key is gone for the past too
    assert "full_name" in past.json()["erased"]  # named as erased, not merely empty
    listed = {c["id"]: c for c in client.get("/cases", headers=auth(handler)).json()["cases"]}
    assert listed[second]["erased"] == ["email", "full_name"]
    assert listed[other]["fields"]["full_name"] == OTHER_NAME  # another subject: untouched
    assert OTHER_NAME in api_answers(client, handler, [other])
    assert_exports_say_erased(client, keys, first)

    # erasure rewrote nothing: the store verifies, and so does an evidence bundle
    trusted = {container.audit.key.key_id: container.audit.key.public_raw}
    verifier = Verifier(container.pool, container.audit.tables, settings, trusted)
    assert verifier.verify(read_topic=False).ok
    bundle = EvidenceBundles(container.audit, publish=False).bundle(UUID(first))
    assert verify_bundle(bundle, container.audit.key.public_raw) == []
    assert readable(json.dumps(bundle)) == []

    again = client.post(
        f"/subjects/{SUBJECT}/erasure", json={"reason": "again"}, headers=auth(admin)
    )
    assert again.status_code == 200, again.text
    assert (again.json()["recorded"], again.json()["key_destroyed"]) == ([], False)


def assert_exports_say_erased(client: TestClient, keys: dict[Role, str], case_id: str) -> None:
    """The exports show an erased value as erased, not as an empty one: the CSV export's
    cell, the audit export's JSON Lines (``erased`` of each record that set it) and its
    report (the case's fields now, and each change)."""
    csv_text = client.get(
        "/exports/cases.csv?case_type=patient_file", headers=auth(keys[Role.HANDLER])
    ).text
    header, *rows = csv_text.splitlines()
    row = next(r for r in rows if r.startswith(case_id))
    cells = dict(zip(header.split(","), row.split(","), strict=True))
    assert (cells["fields.full_name"], cells["fields.email"]) == ("(erased)", "(erased)")
    assert cells["fields.ward"] == "B2"

    admin = auth(keys[Role.ADMIN])
    jsonl = client.get(f"/cases/{case_id}/export?format=jsonl", headers=admin)
    assert jsonl.status_code == 200, jsonl.text
    records = {r["type"]: r for r in map(json.loads, jsonl.text.splitlines())}
    assert records["CaseOpened"]["erased"] == ["email", "full_name"]
    assert records["CaseOpened"]["data"]["fields"]["full_name"] is None
    assert records["CaseFieldsUpdated"]["erased"] == ["email"]
    assert records["CasePersonalDataErased"]["erased"] == []

    html = client.get(f"/cases/{case_id}/export?format=html", headers=auth(keys[Role.AUDITOR]))
    assert html.status_code == 200, html.text
    report = html.text
    assert "<dt>full_name</dt><dd>(erased)</dd>" in report
    assert "<dt>ward</dt><dd>B2</dd>" in report
    assert "<li>full_name: (empty) &rarr; (erased)</li>" in report  # opened with a value
    assert "<li>email: (erased) &rarr; (erased)</li>" in report  # then changed
    assert "(empty) &rarr; (empty)" not in report
    assert readable(jsonl.text + report) == []


def test_an_interrupted_erasure_is_finished_by_running_it_again(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    container.case_types.install(PATIENT, "test setup", ADMIN)
    first = open_patient(client, keys[Role.HANDLER], SUBJECT, NAME, EMAIL)
    second = open_patient(client, keys[Role.HANDLER], SUBJECT, NAME, EMAIL)
    # interrupted after the first case recorded its erasure, before the key was destroyed
    container.ledger.erase_personal_data(UUID(first), "asked", ADMIN)

    answer = client.post(
        f"/subjects/{SUBJECT}/erasure", json={"reason": "asked"}, headers=auth(keys[Role.ADMIN])
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["recorded"] == [second]
    assert answer.json()["key_destroyed"] is True
    kinds = [
        e["type"]
        for e in client.get(f"/cases/{first}/history", headers=auth(keys[Role.ADMIN])).json()
    ]
    assert kinds.count("CasePersonalDataErased") == 1


def test_a_case_without_a_party_is_its_own_subject_and_an_erased_subject_takes_no_new_data(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    container.case_types.install(PATIENT, "test setup", ADMIN)
    handler = keys[Role.HANDLER]
    case_id = open_patient(client, handler, None, NAME, EMAIL)
    erased = client.post(
        f"/subjects/case:{case_id}/erasure",
        json={"reason": "asked"},
        headers=auth(keys[Role.ADMIN]),
    )
    assert erased.status_code == 200, erased.text
    refused = client.patch(
        f"/cases/{case_id}/fields", json={"fields": {"email": EMAIL}}, headers=auth(handler)
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "subject_erased"
    kept = client.patch(
        f"/cases/{case_id}/fields", json={"fields": {"ward": "C3"}}, headers=auth(handler)
    )
    assert kept.status_code == 200, kept.text  # the case itself goes on


def test_the_analysts_see_personal_fields_as_null_not_as_ciphertext(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    container.case_types.install(PATIENT, "test setup", ADMIN)
    case_id = open_patient(client, keys[Role.HANDLER], SUBJECT, NAME, EMAIL)
    container.projections.catch_up_from_store(container.reader.head(), 100_000)
    with container.pool.connection() as conn:
        row = conn.execute(
            "SELECT fields FROM analytics.cases WHERE case_id = %s", (case_id,)
        ).fetchone()
    assert row is not None
    assert row["fields"] == {"full_name": None, "email": None, "ward": "B2"}


def test_erasure_requests_that_cannot_be_met_get_a_clear_4xx(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    container.case_types.install(PATIENT, "test setup", ADMIN)
    unknown = client.post(
        "/subjects/nobody/erasure", json={"reason": "asked"}, headers=auth(keys[Role.ADMIN])
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "subject_not_found"
    blank = client.post(
        "/subjects/nobody/erasure", json={"reason": ""}, headers=auth(keys[Role.ADMIN])
    )
    assert blank.status_code == 422
    forbidden = client.post(
        "/subjects/nobody/erasure", json={"reason": "x"}, headers=auth(keys[Role.MANAGER])
    )
    assert forbidden.status_code == 403
    sealed_shape: dict[str, Any] = {"sealed": "v1:someone:AAAA"}
    refused = client.post(
        "/cases",
        json={"case_type": "patient_file", "title": "t", "fields": {"ward": sealed_shape}},
        headers=auth(keys[Role.HANDLER]),
    )
    assert refused.status_code == 422, refused.text
