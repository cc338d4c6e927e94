"""Documents live in the content store, referenced from case fields by hash; events stay small.

Issue 7: "Large content such as documents and attachments belongs in a content store
referenced by hash, not in events."
"""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient

from domain.context import CommandContext
from infra.bootstrap import Container
from services.auth import Role
from services.case_type_document import read_document
from tests.conftest import auth, stored_event_count

SCANS = b"""
name: scans
labels: {en: Scans}
states:
  new: {initial: true, labels: {en: New}}
fields:
  scan: {type: document, labels: {en: Scan}}
  private_scan: {type: document, labels: {en: Private scan}}
views:
  handler: {see: all, edit: all}
  integrator: {see: [scan], edit: [scan]}
"""
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 4_000  # ~1 MB: more than an event may hold


@pytest.fixture
def scans(container: Container) -> None:
    document = read_document(SCANS, "application/yaml")
    container.case_types.install(document, "documents test", CommandContext("t", "admin"))


def _upload(client: TestClient, key: str, content: bytes, media_type: str) -> dict[str, object]:
    answer = client.post(
        "/documents", content=content, headers={**auth(key), "Content-Type": media_type}
    )
    assert answer.status_code in (200, 201), answer.text
    return dict(answer.json())


def test_a_document_is_stored_once_and_read_through_a_case(
    client: TestClient, keys: dict[Role, str], container: Container, scans: None
) -> None:
    first = client.post(
        "/documents",
        content=PDF,
        headers={**auth(keys[Role.HANDLER]), "Content-Type": "application/pdf"},
    )
    assert first.status_code == 201, first.text
    ref = first.json()["ref"]
    assert ref == "sha256:" + hashlib.sha256(PDF).hexdigest()
    assert first.json() == {"ref": ref, "media_type": "application/pdf", "size": len(PDF)}
    again = client.post(
        "/documents",
        content=PDF,
        headers={**auth(keys[Role.INTEGRATOR]), "Content-Type": "application/pdf"},
    )
    assert (again.status_code, again.json()["ref"]) == (200, ref)

    before = stored_event_count(container)
    opened = client.post(
        "/cases",
        json={"case_type": "scans", "title": "x-ray", "fields": {"scan": ref}},
        headers=auth(keys[Role.HANDLER]),
    )
    assert opened.status_code == 201, opened.text
    assert stored_event_count(container) == before + 1
    case_id = opened.json()["id"]

    got = client.get(f"/cases/{case_id}/documents/{ref}", headers=auth(keys[Role.INTEGRATOR]))
    assert got.status_code == 200
    assert got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == "attachment"


def test_a_document_in_a_hidden_field_cannot_be_read(
    client: TestClient, keys: dict[Role, str], scans: None
) -> None:
    ref = _upload(client, keys[Role.HANDLER], b"private", "text/plain")["ref"]
    opened = client.post(
        "/cases",
        json={"case_type": "scans", "title": "x", "fields": {"private_scan": ref}},
        headers=auth(keys[Role.HANDLER]),
    )
    case_id = opened.json()["id"]
    assert (
        client.get(
            f"/cases/{case_id}/documents/{ref}", headers=auth(keys[Role.HANDLER])
        ).status_code
        == 200
    )
    hidden = client.get(f"/cases/{case_id}/documents/{ref}", headers=auth(keys[Role.INTEGRATOR]))
    assert hidden.status_code == 404
    assert "fields your role sees" in hidden.json()["detail"]
    other = _upload(client, keys[Role.HANDLER], b"unrelated", "text/plain")["ref"]
    unrelated = client.get(f"/cases/{case_id}/documents/{other}", headers=auth(keys[Role.HANDLER]))
    assert unrelated.status_code == 404


@pytest.mark.parametrize(
    ("content", "headers", "status", "words"),
    [
        (b"", {"Content-Type": "text/plain"}, 422, "empty"),
        (b"x", {"Content-Type": "not a type"}, 422, "not a media type"),
        (b"x" * (16 * 1_048_576 + 1), {"Content-Type": "application/pdf"}, 413, "larger than"),
    ],
    ids=["empty", "bad-media-type", "too-large"],
)
def test_bad_uploads_are_refused_and_store_nothing(
    client: TestClient,
    keys: dict[Role, str],
    container: Container,
    content: bytes,
    headers: dict[str, str],
    status: int,
    words: str,
) -> None:
    answer = client.post(
        "/documents", content=content, headers={**auth(keys[Role.HANDLER]), **headers}
    )
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]
    with container.pool.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM content_store").fetchone() == {"n": 0}


def test_uploads_need_a_role_that_writes_cases(client: TestClient, keys: dict[Role, str]) -> None:
    answer = client.post(
        "/documents",
        content=b"x",
        headers={**auth(keys[Role.AUDITOR]), "Content-Type": "text/plain"},
    )
    assert answer.status_code == 403
    assert client.post("/documents", content=b"x").status_code == 401


def test_a_malformed_reference_is_refused(client: TestClient, keys: dict[Role, str]) -> None:
    answer = client.get(
        "/cases/00000000-0000-0000-0000-000000000000/documents/sha256:xyz",
        headers=auth(keys[Role.HANDLER]),
    )
    assert answer.status_code == 422
