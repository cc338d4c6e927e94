"""Connector administration over HTTP, for integrators: load with every problem named, status
with the run's reconciliation, the quarantine, and a replay after the mapping is fixed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from infra.bootstrap import Container
from services.auth import Role
from services.ingestion import RunReport, SourceRecord
from tests.conftest import auth

YAML = {"Content-Type": "application/yaml"}


def document(folder: Path, states: dict[str, str]) -> dict[str, Any]:
    return {
        "name": "api_drop",
        "kind": "file",
        "source": {"folder": str(folder)},
        "mapping": {
            "case_type": "generic",
            "record_id": "record.id",
            "title": "record.title",
            "status": {"from": "record.state", "states": states},
        },
    }


def load(client: TestClient, key: str, body: dict[str, Any]) -> Any:
    return client.post(
        "/connectors", content=yaml.safe_dump(body).encode(), headers={**auth(key), **YAML}
    )


def test_an_integrator_loads_watches_and_replays_a_connector(
    client: TestClient, keys: dict[Role, str], container: Container, tmp_path: Path
) -> None:
    key = keys[Role.INTEGRATOR]
    bad = {"name": "Bad Name", "kind": "file", "source": {}, "mapping": {"case_type": "x"}}
    refused = load(client, key, bad)
    assert refused.status_code == 422
    assert {p.split(":")[0] for p in refused.json()["problems"]} >= {
        "name", "source.folder", "mapping.record_id"
    }  # fmt: skip

    first = load(client, key, document(tmp_path, {"O": "open"}))
    assert (first.status_code, first.json()["version"], first.json()["new"]) == (201, 1, True)
    assert load(client, key, document(tmp_path, {"O": "open"})).json()["new"] is False

    connector = container.connectors.current("api_drop")
    report = RunReport("api_drop", 1)
    records = [SourceRecord({"id": "1", "title": "a", "state": "W"}, "f.csv:2"),
               SourceRecord({"id": "2", "title": "b", "state": "O"}, "f.csv:3")]  # fmt: skip
    container.ingestor.ingest(connector, records, "b1", report)
    container.connectors.save_run(report, finished=True)

    status = client.get("/connectors/api_drop", headers=auth(key)).json()
    run = status["runs"][0]
    assert (run["seen"], run["ingested"], run["quarantined"]) == (2, 1, 1)
    assert status["waiting_in_quarantine"] == 1
    waiting = client.get("/connectors/api_drop/quarantine", headers=auth(key)).json()
    assert waiting[0]["position"] == "f.csv:2" and "'W' is not mapped" in waiting[0]["reason"]

    assert (
        load(client, key, document(tmp_path, {"O": "open", "W": "waiting"})).json()["version"] == 2
    )
    replayed = client.post("/connectors/api_drop/replay", json={}, headers=auth(key)).json()
    assert replayed["replayed"] == 1 and replayed["outcomes"][0]["verdict"] == "ingested"
    assert client.get("/connectors/api_drop/quarantine", headers=auth(key)).json() == []
    assert client.get("/connectors/nope", headers=auth(key)).status_code == 404
