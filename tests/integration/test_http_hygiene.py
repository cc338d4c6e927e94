"""HTTP hygiene: security headers on every answer, offline API docs, a /health that tells
strangers only whether caseledger is up, forged cursors refused, and a `production` setting
that refuses to start on development keys and insecure defaults."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from infra.bootstrap import Container, build_api
from infra.settings import Settings
from services.auth import Role
from tests.conftest import auth, settings_env

# A page, a static asset of the dashboard (services/api/ui.py serves them under /ui/assets/),
# the API docs, JSON, an answer refused for want of a key, and one for a path that is not.
PATHS = [
    "/ui/",
    "/ui/assets/js/app.js",
    "/docs",
    "/openapi.json",
    "/health",
    "/cases",
    "/nowhere",
]


@pytest.mark.parametrize("path", PATHS)
def test_every_answer_carries_the_security_headers(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert (answer.status_code == 404) == (path == "/nowhere"), answer.status_code
    headers = answer.headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_the_api_docs_load_every_asset_from_the_app_itself(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert asset.startswith("/"), asset
        assert client.get(asset).status_code == 200, asset
    assert "<script>" not in page.text  # no inline script: the CSP would block it
    assert client.get("/redoc").status_code == 404  # ReDoc only loads from a CDN


def test_health_shows_details_only_with_a_key(
    client: TestClient, keys: dict[Role, str], settings: Settings
) -> None:
    stranger = client.get("/health")
    assert stranger.status_code == 200
    assert stranger.json() == {"status": "ok"}
    assert settings.kafka_servers[0] not in stranger.text
    known = client.get("/health", headers=auth(keys[Role.AUDITOR])).json()
    assert known["status"] == "ok"
    assert known["components"]["broker"]["ok"] is True
    assert known["components"]["database"] == {"ok": True}
    wrong_key = client.get("/health", headers=auth("cl_admin_guessed"))
    assert wrong_key.json() == {"status": "ok"}


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "forged",
    [
        ["2026-11-30T10:00:00+00:00", 5],
        ["2026-11-30T10:00:00+00:00", ["x"]],
        ["2026-11-30T10:00:00+00:00", {"id": 1}],
        [5, "0b9e3e4e-7f0a-4d5e-9a3c-1f2e3d4c5b6a"],
        {"opened_at": 1},
        "plain",
        [1, 2, 3],
    ],
)
def test_a_forged_list_cursor_is_refused_with_a_422(
    client: TestClient, keys: dict[Role, str], forged: object
) -> None:
    answer = client.get(f"/cases?cursor={_cursor(forged)}", headers=auth(keys[Role.HANDLER]))
    assert answer.status_code == 422, answer.text
    assert "is not one this API gave out" in answer.json()["detail"]
    assert "next_cursor" in answer.json()["hint"]


# -- production ---------------------------------------------------------------------------

PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "database_url": "postgresql://caseledger:s3cret@db.internal:5432/caseledger",
    "kafka_bootstrap_servers": "kafka-1.internal:9092",
}


def test_production_refuses_the_insecure_defaults() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, environment="production", api_host="0.0.0.0")
    message = str(refused.value)
    assert "DATABASE_URL" in message
    assert "KAFKA_BOOTSTRAP_SERVERS" in message
    assert "0.0.0.0" in message and "CASELEDGER_TLS_CERT_FILE" in message
    Settings(_env_file=None, **PRODUCTION)  # loopback behind a proxy: accepted
    Settings(_env_file=None, **PRODUCTION, api_host="0.0.0.0", behind_tls_proxy=True)
    Settings(_env_file=None, api_host="0.0.0.0")


def test_production_refuses_to_serve_with_development_keys(
    settings: Settings, container: Container
) -> None:
    container.keys.create(Role.ADMIN, label="dev-admin")  # as `caseledger up` makes them
    production = settings.model_copy(update={"environment": "production"})
    container.settings = production
    with pytest.raises(RuntimeError, match="development keys") as refused:
        build_api(container)
    assert "caseledger keys revoke" in str(refused.value)
    dev_key = next(k for k in container.keys.list() if k.label == "dev-admin")
    container.keys.revoke(dev_key.key_id)
    build_api(container)  # revoked, they no longer stop it


def test_the_cli_refuses_production_without_a_database_in_one_clear_line(
    settings: Settings,
) -> None:
    env = {**settings_env(settings), "CASELEDGER_ENVIRONMENT": "production", "DATABASE_URL": ""}
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
