"""Idempotency keys make any case command safe to retry after a timeout (issue 8)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from infra.bootstrap import Container, bootstrap, build_api
from infra.settings import Settings
from services.auth import Role
from tests.conftest import auth, stored_event_count

OPEN = {"case_type": "generic", "title": "water damage"}
JSON = {"Content-Type": "application/json"}


def _with_key(key: str, idempotency_key: str) -> dict[str, str]:
    return {**auth(key), "Idempotency-Key": idempotency_key}


def _open(client: TestClient, key: str) -> str:
    answer = client.post("/cases", json=OPEN, headers=auth(key))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def test_the_same_request_twice_is_stored_once(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    headers = _with_key(keys[Role.HANDLER], "open-1")
    first = client.post("/cases", json=OPEN, headers=headers)
    again = client.post("/cases", json=OPEN, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert stored_event_count(container) == 1


def test_the_same_key_with_another_request_is_refused(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    case_id = _open(client, keys[Role.HANDLER])
    headers = _with_key(keys[Role.HANDLER], "note-1")
    assert client.post(f"/cases/{case_id}/notes", json={"text": "a"}, headers=headers).is_success
    other = client.post(f"/cases/{case_id}/notes", json={"text": "b"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert stored_event_count(container) == 2


def test_a_refusal_is_answered_again_without_running_the_command(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    headers = _with_key(keys[Role.HANDLER], "bad-type")
    body = {"case_type": "no_such_type", "title": "t"}
    first = client.post("/cases", json=body, headers=headers)
    again = client.post("/cases", json=body, headers=headers)
    assert first.status_code == again.status_code
    assert 400 <= first.status_code < 500
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert stored_event_count(container) == 0


@pytest.mark.parametrize("name", ["a\x00b", "\ud83d", "\ud83d\ude00\x00"])
def test_a_refusal_quoting_a_nul_or_a_lone_surrogate_is_remembered_too(
    client: TestClient, keys: dict[Role, str], container: Container, name: str
) -> None:
    """The refusal names the unknown key of ``source`` with NUL and lone surrogates written
    as escapes (PostgreSQL's jsonb holds neither: recording it answered 500, the fuzzer's
    find in stop 17's CI)."""
    headers = {**_with_key(keys[Role.HANDLER], f"odd-{len(name)}"), **JSON}
    body = json.dumps({**OPEN, "source": {name: 1}})  # ASCII: "\\ud83d" as sent on the wire
    first = client.post("/cases", content=body, headers=headers)
    again = client.post("/cases", content=body, headers=headers)
    assert first.status_code == again.status_code == 422, first.text
    assert "\x00" not in first.json()["detail"], first.json()
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert stored_event_count(container) == 0


def test_keys_belong_to_the_api_key_that_sent_them(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    for role in (Role.HANDLER, Role.MANAGER):
        answer = client.post("/cases", json=OPEN, headers=_with_key(keys[role], "shared-name"))
        assert answer.status_code == 201
        assert "Idempotent-Replayed" not in answer.headers
    assert stored_event_count(container) == 2


def test_racing_retries_store_the_command_once(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    case_id = _open(client, keys[Role.HANDLER])
    headers = _with_key(keys[Role.HANDLER], "racing-note")

    def send(_: int) -> tuple[int, str]:
        answer = client.post(f"/cases/{case_id}/notes", json={"text": "once"}, headers=headers)
        return answer.status_code, answer.json().get("code", "")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(16)))
    assert all(status == 200 or code == "request_replayed" for status, code in answers), answers
    assert stored_event_count(container) == 2  # the opening and one note
    final = client.post(f"/cases/{case_id}/notes", json={"text": "once"}, headers=headers)
    assert (final.status_code, final.json()["version"]) == (200, 2)


@pytest.mark.parametrize("bad", ["has space", "x" * 201, "naïve"], ids=["space", "long", "latin1"])
def test_a_malformed_key_is_refused(client: TestClient, keys: dict[Role, str], bad: str) -> None:
    headers = {**auth(keys[Role.HANDLER]), "Idempotency-Key": bad}
    raw = {k.encode(): v.encode("latin-1") for k, v in headers.items()}
    answer = client.post("/cases", json=OPEN, headers=raw)
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_idempotency_key"


@pytest.fixture
def forgetful(settings: Settings) -> Iterator[TestClient]:
    container = bootstrap(settings.model_copy(update={"idempotency_keep_s": 0.001}), name="t")
    with TestClient(build_api(container)) as client:
        yield client
    container.close()


def test_keys_are_forgotten_after_their_time(
    forgetful: TestClient, container: Container, keys: dict[Role, str]
) -> None:
    headers = _with_key(keys[Role.HANDLER], "short-lived")
    assert forgetful.post("/cases", json=OPEN, headers=headers).status_code == 201
    assert forgetful.post("/cases", json=OPEN, headers=headers).status_code == 201
    assert stored_event_count(container) == 2
