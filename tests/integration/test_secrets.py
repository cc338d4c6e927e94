"""Secrets by reference: a notification names a secret; its value is written by an admin (API
or CLI), never read back, and travels only in the webhook's Authorization header."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from domain.case import Case
from infra.bootstrap import Container, bootstrap, build_api, build_notifier
from infra.cli import app as cli
from infra.settings import Settings
from services.auth import Role
from tests.case_types import publish_reviewed
from tests.conftest import auth
from tests.integration.helpers import CTX
from tests.integration.receivers import WebhookReceiver, webhook_receiver

VALUE = "Bearer s3cr3t-token-value"


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def allowing(settings: Settings) -> Iterator[tuple[Container, Settings, TestClient]]:
    configured = settings.model_copy(update={"webhook_allowlist": "127.0.0.1"})
    container = bootstrap(configured, name="test-secrets")
    with TestClient(build_api(container)) as client:
        yield container, configured, client
    container.close()


def hooked(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "hooked",
        "labels": {"en": "Hooked"},
        "states": {"open": {"initial": True}},
        "rules": [{"name": "tell", "on": ["CaseOpened"], "do": [{"notify": "hook"}]}],
        "notifications": {"hook": {"channel": "webhook", "url": url, "body": "hi", **extra}},
    }


def test_only_admins_write_secrets_and_nobody_reads_a_value_back(
    client: TestClient, keys: dict[Role, str]
) -> None:
    admin = auth(keys[Role.ADMIN])
    for role in (Role.MANAGER, Role.HANDLER, Role.INTEGRATOR, Role.AUDITOR):
        refused = client.put(
            "/secrets/claims_webhook", json={"value": VALUE}, headers=auth(keys[role])
        )
        assert refused.status_code == 403
        assert client.get("/secrets", headers=auth(keys[role])).status_code == 403
    assert (
        client.put("/secrets/claims_webhook", json={"value": VALUE}, headers=admin).status_code
        == 204
    )
    assert (
        client.put(
            "/secrets/claims_webhook", json={"value": VALUE + "2"}, headers=admin
        ).status_code
        == 204
    )
    listed = client.get("/secrets", headers=admin)
    assert listed.status_code == 200
    [entry] = listed.json()
    assert entry["name"] == "claims_webhook" and set(entry) == {"name", "created_at", "updated_at"}
    assert "s3cr3t" not in listed.text
    assert client.get("/secrets/claims_webhook", headers=admin).status_code in (404, 405)
    bad = client.put("/secrets/claims_webhook", json={"value": "a\r\nX-Injected: 1"}, headers=admin)
    assert bad.status_code == 422 and "line break" in bad.json()["detail"]
    assert client.delete("/secrets/claims_webhook", headers=admin).status_code == 204
    gone = client.delete("/secrets/claims_webhook", headers=admin)
    assert gone.status_code == 404 and "caseledger secrets list" in gone.json()["hint"]
    assert client.get("/secrets", headers=admin).json() == []


def test_a_url_with_credentials_is_refused_at_draft_and_nothing_is_stored(
    client: TestClient, keys: dict[Role, str]
) -> None:
    admin = auth(keys[Role.ADMIN])
    answer = client.post(
        "/case-types", json=hooked("https://bot:hunter2@hooks.example.com/x"), headers=admin
    )
    assert answer.status_code == 422
    assert "credentials" in answer.text and "secret:" in answer.text
    assert "hunter2" not in answer.text
    assert client.get("/case-types/hooked", headers=admin).status_code == 404


def test_a_named_secret_must_exist_to_publish_and_is_sent_only_as_the_authorization_header(
    allowing: tuple[Container, Settings, TestClient],
    webhook: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    container, settings, client = allowing
    admin = auth(container.keys.create(Role.ADMIN))
    document = hooked(webhook.url("/h"), secret="claims_webhook")
    refused = client.post("/case-types", json=document, headers=admin)
    assert refused.status_code == 422  # and nothing is stored: the draft below is v1
    assert refused.json()["problems"] == [
        "notifications.hook.secret: no secret is called 'claims_webhook'"
        "; set it first: caseledger secrets set claims_webhook (or PUT /secrets/claims_webhook)"
    ]
    client.put("/secrets/claims_webhook", json={"value": VALUE}, headers=admin)
    assert client.post("/case-types", json=document, headers=admin).json()["version"] == 1
    key = admin["Authorization"].removeprefix("Bearer ")
    published = publish_reviewed(client, key, "hooked", 1, "r")
    assert published.status_code == 200, published.text

    with caplog.at_level(logging.DEBUG):
        case = container.ledger.open_case("hooked", "Leak", {}, None, CTX)
        container.projections.catch_up_from_store(container.reader.head(), 1_000)
        notifier = build_notifier(container, settings)
        notifier.run_once()
        notifier.close()
    [post] = webhook.posts
    assert post.headers["Authorization"] == VALUE
    assert "s3cr3t" not in post.body.decode()
    history = container.ledger.history(case.id)
    assert [type(e).__name__ for e in history if isinstance(e, Case.NotificationSent)] == [
        "NotificationSent"
    ]
    assert "s3cr3t" not in json.dumps([str(vars(e)) for e in history])
    assert "s3cr3t" not in caplog.text
    assert "s3cr3t" not in client.get("/case-types/hooked/versions/1", headers=admin).text


def test_the_cli_sets_lists_and_deletes_secrets_without_showing_values(
    container: Container, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in settings.as_env().items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    stored = runner.invoke(cli, ["secrets", "set", "claims_webhook"], input=f"{VALUE}\n")
    assert stored.exit_code == 0, stored.output
    assert "s3cr3t" not in stored.output
    listed = runner.invoke(cli, ["secrets", "list"])
    assert listed.exit_code == 0 and "claims_webhook" in listed.output
    assert "s3cr3t" not in listed.output
    assert runner.invoke(cli, ["secrets", "delete", "claims_webhook"]).exit_code == 0
    missing = runner.invoke(cli, ["secrets", "delete", "claims_webhook"])
    assert missing.exit_code == 1
    assert "no secret is called 'claims_webhook'" in missing.output
