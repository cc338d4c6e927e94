"""``GET /metrics``: latencies by route and outcome, and the pipeline's figures, which are
those ``caseledger status`` prints; across API worker processes, and with the database down.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from infra.bootstrap import Container, bootstrap
from infra.embedded import free_port, port_open, start_postgres
from infra.settings import Settings
from services.auth import Role
from services.ingestion import RunReport, SourceRecord
from tests.conftest import auth, settings_env
from tests.integration.helpers import wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
NOTES = "POST /cases/{case_id}/notes"
Served = tuple[str, str, psutil.Process, Path]


def scrape(text: str) -> Samples:
    """Every sample of a /metrics page, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def count(samples: Samples, command: str, outcome: str) -> float:
    return value(
        samples, "caseledger_command_duration_seconds_count", command=command, outcome=outcome
    )


def test_each_command_is_timed_under_its_route_and_outcome(
    client: TestClient, keys: dict[Role, str]
) -> None:
    handler = auth(keys[Role.HANDLER])
    before = scrape(client.get("/metrics").text)
    case_id = client.post("/cases", json={"case_type": "generic", "title": "t"}, headers=handler)
    case = case_id.json()["id"]
    for text in ("one", "two"):
        assert client.post(f"/cases/{case}/notes", json={"text": text}, headers=handler).is_success
    stale = {"text": "late", "expected_version": 1}
    assert client.post(f"/cases/{case}/notes", json=stale, headers=handler).status_code == 409
    assert client.post(f"/cases/{case}/notes", json={}, headers=handler).status_code == 422
    assert client.post(f"/cases/{case}/notes", json={"text": "x"}).status_code == 401
    assert client.get(f"/cases/{case}", headers=handler).is_success

    page = client.get("/metrics")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain")
    after = scrape(page.text)
    grown = {
        outcome: count(after, NOTES, outcome) - count(before, NOTES, outcome)
        for outcome in ("ok", "conflict", "rejected", "denied", "unavailable", "error")
    }
    assert grown == {
        "ok": 2, "conflict": 1, "rejected": 1, "denied": 1, "unavailable": 0, "error": 0
    }  # fmt: skip
    assert count(after, "POST /cases", "ok") - count(before, "POST /cases", "ok") == 1
    query = {"query": "GET /cases/{case_id}", "outcome": "ok"}
    assert value(after, "caseledger_query_duration_seconds_count", **query) == 1 + value(
        before, "caseledger_query_duration_seconds_count", **query
    )
    labels = {v for (_, pairs) in after for _, v in pairs}
    assert not any(case in label for label in labels), "a raw path became a label"


CONNECTOR = {
    "name": "metrics_drop",
    "kind": "file",
    "source": {"folder": "/tmp/caseledger-metrics-drop"},
    "mapping": {"case_type": "generic", "record_id": "record.id", "title": "record.title"},
}


def test_the_pipeline_figures_are_those_caseledger_status_prints(
    client: TestClient, container: Container, keys: dict[Role, str], settings: Settings
) -> None:
    handler = auth(keys[Role.HANDLER])
    cases = [
        client.post("/cases", json={"case_type": "generic", "title": f"c{i}"}, headers=handler)
        for i in range(3)
    ]
    container.relay.publish_next_batch()  # the relay catches up once; the projection never runs
    for case in cases:
        answer = client.post(
            f"/cases/{case.json()['id']}/notes", json={"text": "n"}, headers=handler
        )
        assert answer.is_success

    connector, _ = container.connector_admin.load(CONNECTOR, "test")
    report_ = RunReport(connector.name, connector.version)
    records = [SourceRecord({"id": "2"}, "f.csv:2")]  # no title: set aside, no event stored
    container.ingestor.ingest(connector, records, "b1", report_)
    container.connectors.save_run(report_, finished=True)

    samples = scrape(client.get("/metrics").text)
    status = subprocess.run(
        [sys.executable, "-m", "infra.cli", "status", "--json"],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(status.stdout)

    assert value(samples, "caseledger_pipeline_figures_up") == 1
    assert report["connectors"]["metrics_drop"]["quarantine_waiting"] == 1
    assert report["relay"]["lag"] == 3, "three notes stored after the relay's batch"
    assert report["projections"]["case_list"]["lag"] == 6, "three cases opened, three notes"
    relay = report["relay"]
    projection = report["projections"]["case_list"]
    assert {
        "head": value(samples, "caseledger_event_store_head_position"),
        "relay position": value(samples, "caseledger_relay_position"),
        "relay lag": value(samples, "caseledger_relay_lag_events"),
        "projection position": value(
            samples, "caseledger_projection_position", projection="case_list"
        ),
        "projection lag": value(
            samples, "caseledger_projection_lag_events", projection="case_list"
        ),
        "timers": value(samples, "caseledger_sla_timers"),
        "timers due": value(samples, "caseledger_sla_timers_due"),
        "notifications": value(samples, "caseledger_notifications_waiting"),
        "connector waiting": value(
            samples, "caseledger_connector_quarantine_waiting", connector="metrics_drop"
        ),
        "connector quarantined": value(
            samples,
            "caseledger_connector_last_run_records",
            connector="metrics_drop",
            outcome="quarantined",
        ),
    } == {
        "head": report["event_store"]["head_position"],
        "relay position": relay["position"],
        "relay lag": relay["lag"],
        "projection position": projection["max_position"],
        "projection lag": projection["lag"],
        "timers": report["work"]["sla_timers"],
        "timers due": report["work"]["sla_overdue"],
        "notifications": report["work"]["notifications_pending"],
        "connector waiting": report["connectors"]["metrics_drop"]["quarantine_waiting"],
        "connector quarantined": report["connectors"]["metrics_drop"]["last_run"]["quarantined"],
    }


def processes_that_observed_commands(shared: Path) -> set[str]:
    """The pids whose metric files in ``shared`` hold a timed command."""
    found = set()
    for file in shared.glob("histogram_*.db"):
        for metric in MultiProcessCollector.merge([str(file)], accumulate=True):  # type: ignore[no-untyped-call]
            if any(
                s.name == "caseledger_command_duration_seconds_count" and s.value > 0
                for s in metric.samples
            ):
                found.add(file.stem.rsplit("_", 1)[-1])
    return found


# -- the real server: worker processes share their figures; the database goes away ---------


@pytest.fixture
def served(tmp_path: Path, settings: Settings) -> Iterator[Served]:
    """`caseledger serve` with two workers on a PostgreSQL of its own (to be stopped)."""
    server, url = start_postgres(tmp_path / "pg")
    own = settings.model_copy(update={"database_url": url, "api_port": free_port()})
    container = bootstrap(own, name="setup")
    key = container.keys.create(Role.HANDLER, label="metrics")
    container.close()
    shared = tmp_path / "metrics"
    shared.mkdir()
    (shared / "counter_1.db").write_bytes(b"left by an earlier run")
    env = {
        **settings_env(own),
        "CASELEDGER_API_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "serve.log", "wb"),  # noqa: SIM115 - handed to the child
    )
    base = f"http://127.0.0.1:{own.api_port}"
    try:
        wait_until(lambda: port_open(own.api_port), timeout=60, what="the API's port")
        yield base, key, psutil.Process(server.get_pid()), shared
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        server.cleanup()


def test_every_worker_answers_for_all_and_a_scrape_answers_with_the_database_down(
    served: Served,
) -> None:
    base, key, postmaster, shared = served
    sent = 0

    def both_workers_observed_a_command() -> bool:
        nonlocal sent
        opened = httpx.post(  # a connection of its own: either worker may take it
            f"{base}/cases", json={"case_type": "generic", "title": "c"}, headers=auth(key)
        )
        assert opened.status_code == 201, opened.text
        sent += 1
        return len(processes_that_observed_commands(shared)) == 2

    wait_until(both_workers_observed_a_command, timeout=60, what="both workers to answer")
    assert not (shared / "counter_1.db").exists(), "a file of an earlier run would be counted"
    for _ in range(4):  # whichever worker answers, it counts the commands of both
        samples = scrape(httpx.get(f"{base}/metrics").text)
        assert count(samples, "POST /cases", "ok") == sent
        assert value(samples, "caseledger_pipeline_figures_up") == 1
    with httpx.Client(base_url=base, timeout=10) as http:
        postmaster.send_signal(signal.SIGINT)  # a fast shutdown, as an operator's restart
        postmaster.wait(30)
        started = time.monotonic()
        page = http.get("/metrics")
        took = time.monotonic() - started
    assert page.status_code == 200
    assert took < 3, f"a scrape took {took:.1f}s with the database down"
    samples = scrape(page.text)
    assert value(samples, "caseledger_pipeline_figures_up") == 0
    assert ("caseledger_relay_lag_events", frozenset()) not in samples
    assert count(samples, "POST /cases", "ok") == sent  # what the workers observed stays
