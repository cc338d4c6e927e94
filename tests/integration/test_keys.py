"""API keys an admin can list, create with an expiry, and revoke, over HTTP and the CLI.

A revoked key stops working on every API process within one second; an expired key is
refused with the date it expired.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from infra.bootstrap import Container, bootstrap, build_api
from infra.cli import app
from infra.settings import Settings
from services.auth import Role
from tests.conftest import auth, settings_env
from tests.integration.helpers import wait_until


def test_an_admin_creates_lists_and_revokes_keys_over_http(
    client: TestClient, keys: dict[Role, str]
) -> None:
    admin = auth(keys[Role.ADMIN])
    created = client.post(
        "/keys", json={"role": "handler", "label": "Ann", "expires_in": "30d"}, headers=admin
    )
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["key"].startswith("cl_handler_")
    expires = datetime.fromisoformat(new["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    assert client.get("/cases", headers=auth(new["key"])).status_code == 200

    listed = client.get("/keys", headers=admin)
    assert listed.status_code == 200
    entry = next(k for k in listed.json() if k["id"] == new["id"])
    assert entry == {
        "id": new["id"],
        "role": "handler",
        "label": "Ann",
        "created_at": new["created_at"],
        "expires_at": new["expires_at"],
        "revoked_at": None,
    }
    assert new["key"] not in listed.text
    assert len(listed.json()) == len(Role) + 1

    revoked = client.delete(f"/keys/{new['id']}", headers=admin)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    refused = client.get("/cases", headers=auth(new["key"]))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]


def test_refused_key_requests_say_what_to_do(client: TestClient, keys: dict[Role, str]) -> None:
    admin = auth(keys[Role.ADMIN])
    unknown = client.delete("/keys/0123456789ab", headers=admin)
    assert unknown.status_code == 404
    assert "GET /keys" in unknown.json()["hint"]
    bad_expiry = client.post("/keys", json={"role": "handler", "expires_in": "soon"}, headers=admin)
    assert bad_expiry.status_code == 422
    assert "30d" in bad_expiry.json()["hint"]
    bad_role = client.post("/keys", json={"role": "boss"}, headers=admin)
    assert bad_role.status_code == 422
    assert len(client.get("/keys", headers=admin).json()) == len(Role)  # nothing created


def test_an_expired_key_is_refused_with_its_date(
    client: TestClient, container: Container, keys: dict[Role, str]
) -> None:
    key = container.keys.create(Role.HANDLER, "short-lived", expires_in=timedelta(days=1))
    assert client.get("/cases", headers=auth(key)).status_code == 200
    with container.pool.connection() as conn:
        conn.execute(
            "UPDATE api_keys SET expires_at = '2026-01-02T03:04:05Z' WHERE label = 'short-lived'"
        )
    wait_until(
        lambda: client.get("/cases", headers=auth(key)).status_code == 401, 1.0, "the expiry"
    )
    answer = client.get("/cases", headers=auth(key))
    assert "this key expired on 2026-01-02 03:04:05 UTC" in answer.json()["detail"]
    assert "create a new one" in answer.json()["detail"]


def test_a_revoked_key_stops_working_on_every_api_process_within_a_second(
    settings: Settings, container: Container, client: TestClient, keys: dict[Role, str]
) -> None:
    other = bootstrap(settings, name="other-api")
    try:
        with TestClient(build_api(other)) as second:
            key, holder = container.keys.issue(Role.HANDLER, "soon revoked")
            for api in (client, second):  # both processes have seen (and cached) the key
                assert api.get("/cases", headers=auth(key)).status_code == 200
            revoked = client.delete(f"/keys/{holder.key_id}", headers=auth(keys[Role.ADMIN]))
            assert revoked.status_code == 200
            wait_until(
                lambda: second.get("/cases", headers=auth(key)).status_code == 401,
                1.0,
                "the second API process to refuse the revoked key",
            )
    finally:
        other.close()


def caseledger(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``caseledger keys ARGS`` as an operator runs it: a process of its own, whose errors
    reach its stderr."""
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "keys", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=settings_env(settings),
        check=False,
    )


def in_process(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``caseledger keys ARGS`` run in this process, for the calls that succeed (a process
    per call took 2 s each); the errors are read from a real process (:func:`caseledger`)."""
    result = CliRunner().invoke(app, ["keys", *args], env=settings_env(settings))
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_keys_list_and_revoke_from_the_cli(
    settings: Settings, container: Container, client: TestClient
) -> None:
    created = in_process(
        settings, "create", "--role", "auditor", "--label", "Bo", "--expires-in", "7d"
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert client.get("/cases", headers=auth(key)).status_code == 200

    listed = in_process(settings, "list")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if " Bo " in f"{line} ")
    key_id = line.split()[0]
    assert "auditor" in line and "expires" in line and key not in listed.stdout

    revoked = in_process(settings, "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert key_id in revoked.stdout
    wait_until(
        lambda: client.get("/cases", headers=auth(key)).status_code == 401, 1.0, "the revocation"
    )
    assert "revoked" in in_process(settings, "list").stdout

    unknown = caseledger(settings, "revoke", "0123456789ab")
    assert unknown.returncode == 1
    assert "caseledger keys list" in unknown.stderr
    bad = caseledger(settings, "create", "--role", "auditor", "--expires-in", "forever")
    assert bad.returncode != 0
    assert "30d" in bad.stderr
