"""Signed webhooks over HTTP: deliveries signed by the ``standardwebhooks`` package (an
independent sender) become cases once; rotation, replays, and every refusal stores nothing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from infra.bootstrap import Container
from tests.conftest import stored_event_count

OLD = "whsec_" + base64.b64encode(b"old signing key of the portal 01").decode()
NEW = "whsec_" + base64.b64encode(b"new signing key of the portal 02").decode()
URL = "/connectors/portal/webhook"


def load_connector(container: Container, name: str, kind: str = "webhook") -> None:
    source: dict[str, Any] = {"secret": "portal_signing", "tolerance": "5m"}
    if kind == "kafka":
        source = {"topic": "elsewhere"}
    document = {
        "name": name,
        "kind": kind,
        "system": "patient-portal",
        "source": source,
        "mapping": {
            "case_type": "generic",
            "record_id": "record.id",
            "fields": {"n": {"from": "record.n", "as": "integer"}},
        },
    }
    container.connectors.load(document, "test")


@pytest.fixture
def portal(container: Container) -> Container:
    container.secrets.set("portal_signing", OLD)
    load_connector(container, "portal")
    return container


def signed(
    body: bytes,
    secret: str = OLD,
    webhook_id: str | None = None,
    at: datetime | None = None,
) -> dict[str, str]:
    webhook_id = webhook_id or f"msg_{uuid4().hex}"
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(webhook_id, at, body.decode())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def post(client: TestClient, body: bytes, headers: dict[str, str], url: str = URL) -> Any:
    return client.post(url, content=body, headers=headers)


def record(record_id: str, n: Any = 1) -> dict[str, Any]:
    return {"id": record_id, "n": n}


def test_a_signed_record_becomes_a_case_once_and_a_redelivery_answers_the_first_answer(
    client: TestClient, portal: Container
) -> None:
    body = json.dumps(record("R-1", 7)).encode()
    headers = signed(body)
    first = post(client, body, headers)
    assert first.status_code == 200, first.text
    (answer,) = first.json()["records"]
    assert answer["verdict"] == "ingested" and answer["version"] == 1
    case = portal.ledger.get_case(UUID(answer["case_id"]))
    assert case.fields["n"] == 7
    events = stored_event_count(portal)

    retried = post(client, body, signed(body, webhook_id=headers["webhook-id"]))
    assert retried.status_code == 200 and retried.json() == first.json()
    assert stored_event_count(portal) == events

    other = json.dumps(record("R-2")).encode()
    reused = post(client, other, signed(other, webhook_id=headers["webhook-id"]))
    assert reused.status_code == 409 and reused.json()["code"] == "webhook_id_reused"
    assert stored_event_count(portal) == events


def test_a_batch_answers_per_record_and_a_bad_record_is_quarantined_alone(
    client: TestClient, portal: Container
) -> None:
    body = json.dumps([record("B-1"), record("B-2", "many"), record("B-3")]).encode()
    answer = post(client, body, signed(body))
    assert answer.status_code == 200, answer.text
    verdicts = [r["verdict"] for r in answer.json()["records"]]
    assert verdicts == ["ingested", "quarantined", "ingested"]
    (waiting,) = portal.quarantine.waiting("portal")
    assert waiting["record"] == record("B-2", "many")
    assert waiting["position"].endswith("#1")
    post(client, body, signed(body))  # another delivery of the same records: duplicates
    (today,) = portal.connectors.runs("portal")  # the reconciliation of the day's deliveries
    assert (today["seen"], today["ingested"], today["duplicates"], today["quarantined"]) == (
        6,
        2,
        2,
        2,
    )


def test_during_a_rotation_either_secret_verifies(client: TestClient, portal: Container) -> None:
    portal.secrets.set("portal_signing", f"{OLD} {NEW}")  # 1. add the new secret
    for n, secret in enumerate((OLD, NEW)):  # 2. the sender switches when it is ready
        body = json.dumps(record(f"K-{n}")).encode()
        assert post(client, body, signed(body, secret)).status_code == 200
    body = json.dumps(record("K-9")).encode()
    headers = signed(body, NEW)  # a sender may send several signatures; one must match
    headers["webhook-signature"] = (
        f"v1,{base64.b64encode(b'x' * 32).decode()} " + (headers["webhook-signature"])
    )
    assert post(client, body, headers).status_code == 200
    portal.secrets.set("portal_signing", NEW)  # 3. remove the old one
    body = json.dumps(record("K-10")).encode()
    assert post(client, body, signed(body, OLD)).status_code == 401


def _refusals(client: TestClient) -> dict[str, tuple[Any, int, str]]:
    good = json.dumps(record("X-1")).encode()
    now = datetime.now(UTC)
    missing = signed(good)
    del missing["webhook-signature"]
    garbled = signed(good) | {"webhook-signature": "v1;nonsense, v1,%%%"}
    large = b'{"id": "X-2", "pad": "' + b"x" * 1_100_000 + b'"}'
    cases = {
        "signed with another secret": (good, signed(good, NEW), 401, "webhook_signature_invalid"),
        "a garbled signature header": (good, garbled, 401, "webhook_signature_invalid"),
        "missing signature header": (good, missing, 401, "webhook_headers_missing"),
        "stale": (good, signed(good, at=now - timedelta(minutes=6)), 401, "timestamp_stale"),
        "from the future": (good, signed(good, at=now + timedelta(minutes=6)), 401, "stale"),
        "timestamp not seconds": (
            good,
            signed(good) | {"webhook-timestamp": "soon"},
            422,
            "invalid_request",
        ),
        "malformed JSON": (b'{"id": ', signed(b'{"id": '), 400, "malformed_json"),
        "records not objects": (b"[1, 2]", signed(b"[1, 2]"), 422, "not_object"),
        "empty batch": (b"[]", signed(b"[]"), 422, "webhook_batch_size"),
        "too large": (large, signed(large), 413, ""),
    }
    return {
        what: (post(client, body, headers), status, code)
        for what, (body, headers, status, code) in cases.items()
    }


def test_bad_deliveries_are_refused_with_a_clear_4xx_and_store_nothing(
    client: TestClient, portal: Container
) -> None:
    load_connector(portal, "orders_topic", kind="kafka")
    events = stored_event_count(portal)
    answers = _refusals(client)
    body = json.dumps(record("X-3")).encode()
    answers["unknown connector"] = (
        post(client, body, signed(body), "/connectors/nowhere/webhook"),
        404,
        "connector_not_found",
    )
    answers["a connector of another kind"] = (
        post(client, body, signed(body), "/connectors/orders_topic/webhook"),
        409,
        "not_a_webhook_connector",
    )
    for what, (answer, status, code) in answers.items():
        assert answer.status_code == status, f"{what}: {answer.text}"
        assert code in answer.json()["code"], f"{what}: {answer.text}"
        assert answer.json()["hint"] or status == 413, what
    assert stored_event_count(portal) == events
    assert portal.quarantine.waiting("portal") == []
