"""Live metrics: events on the real broker, counted by real ``caseledger live-metrics``
processes (faust), read through the API from the real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from domain.envelope import SCHEMA_VERSION, Actor, EventEnvelope
from infra.bootstrap import Container, install_case_types
from infra.embedded import EmbeddedBroker, free_port
from infra.kafka import ensure_topic, new_producer, partition_for
from infra.settings import Settings
from services.auth import Role
from tests.conftest import auth, settings_env
from tests.integration.helpers import stop_process, wait_until

WORKER_START_S = 60


class Case:
    """Writes the envelopes of one case, version after version."""

    def __init__(self, case_type: str = "generic", type_version: int = 1) -> None:
        self.case_id = str(uuid4())
        self.case_type = case_type
        self.type_version = type_version
        self.version = 0

    def event(self, kind: str, at: datetime, **data: Any) -> EventEnvelope:
        self.version += 1
        return EventEnvelope(
            event_id=str(uuid4()),
            type=kind,
            case_id=self.case_id,
            case_type=self.case_type,
            case_type_version=self.type_version,
            case_version=self.version,
            global_position=self.version,
            occurred_at=at,
            recorded_at=at,
            actor=Actor("tester", "handler"),
            correlation_id=str(uuid4()),
            causation_id=None,
            source=None,
            schema_version=SCHEMA_VERSION,
            data=data,
        )

    def opened(self, at: datetime) -> EventEnvelope:
        return self.event("CaseOpened", at, title="t", fields={}, party_id=None, status="open")


def publish(settings: Settings, events: list[EventEnvelope]) -> None:
    ensure_topic(settings)
    producer = new_producer(settings)
    try:
        for event in events:
            producer.send(settings.kafka_topic, key=event.case_id.encode(), value=event.to_json())
        producer.flush()
    finally:
        producer.close()


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Start ``caseledger live-metrics`` processes; answers the path of each one's log."""
    started: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []

    def start(name: str, on: Settings = settings) -> Path:
        log = tmp_path / f"{name}.log"
        logs.append(log)
        with open(log, "wb") as out:
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "infra.cli", "live-metrics"],
                    env=settings_env(on),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        return log

    yield start
    for process in started:
        stop_process(process)
    for log in logs:  # shown when the test fails
        print(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-60:]))


def wait_for(
    client: TestClient, key: str, check: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """GET /live-metrics until ``check`` holds on its body."""
    last: dict[str, Any] = {}

    def holds() -> bool:
        answer = client.get("/live-metrics", headers=auth(key))
        assert answer.status_code == 200, answer.text
        last.clear()
        last.update(answer.json())
        return check(last)

    try:
        wait_until(holds, timeout, "the live metrics")
    except AssertionError as error:
        raise AssertionError(f"{error}; the last answer was {json.dumps(last, indent=1)}") from None
    return dict(last)


def hour_counts(body: dict[str, Any]) -> dict[tuple[str, str, str | None], tuple[int, ...]]:
    return {
        (b["hour"], b["case_type"], b["queue"]): (b["opened"], b["closed"], b["breached"])
        for b in body["hours"]
    }


def backlog(body: dict[str, Any]) -> dict[tuple[str, str | None], int]:
    return {(b["case_type"], b["queue"]): b["open_cases"] for b in body["backlog"]}


def iso_hour(moment: datetime) -> str:
    return moment.replace(minute=0, second=0, microsecond=0).isoformat().replace("+00:00", "Z")


def test_published_events_are_counted_once_per_hour_and_served_live(
    settings: Settings,
    container: Container,
    client: TestClient,
    keys: dict[Role, str],
    workers: Callable[..., Path],
) -> None:
    complaint_version = install_case_types(container.case_types, ("customer_complaint.yaml",))[
        "customer_complaint"
    ]
    now = datetime.now(UTC)
    earlier = now - timedelta(hours=3)
    a, b, c = Case(), Case(), Case("customer_complaint", complaint_version)
    history = [
        a.opened(earlier),
        a.event("CaseRoutedToQueue", earlier, queue="claims"),
        a.event("CaseClosed", now, reason="done"),
        b.opened(now),
        b.event("CaseRoutedToQueue", now, queue="claims"),
        b.event("CaseSlaBreached", now, sla="first_response", run=1, due_at=now.isoformat()),
        c.opened(now),
        c.event(
            "CaseStatusChanged",
            now,
            from_status="received",
            to_status="resolved",
            reason=None,
            transition="resolve",
        ),
    ]
    # The broker may deliver again: every event of a and c a second time, out of the blue.
    publish(settings, history + history[:3] + history[6:])
    workers("one")

    expected_hours = {
        (iso_hour(earlier), "generic", None): (1, 0, 0),
        (iso_hour(now), "generic", "claims"): (0, 1, 1),
        (iso_hour(now), "generic", None): (1, 0, 0),
        (iso_hour(now), "customer_complaint", None): (1, 1, 0),
    }
    body = wait_for(
        client,
        keys[Role.AUDITOR],
        lambda body: hour_counts(body) == expected_hours and len(body["workers"]) == 1,
        WORKER_START_S,
    )
    assert backlog(body) == {("generic", "claims"): 1}  # only b is open
    [worker] = body["workers"]
    assert worker["events_counted"] == len(history)
    assert worker["duplicates_skipped"] == 5
    assert sorted(worker["partitions"]) == list(range(settings.kafka_partitions))

    # The stream sends the same figures at once, and then each change.
    d = Case()
    with client.stream(
        "GET", "/live-metrics/stream?max_events=2&interval_s=0.5", headers=auth(keys[Role.HANDLER])
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = (line for line in stream.iter_lines() if line.startswith("data:"))
        first = json.loads(next(events)[5:])
        assert hour_counts(first) == expected_hours
        publish(settings, [d.opened(now)])
        second = json.loads(next(events)[5:])
    assert backlog(second) == {("generic", "claims"): 1, ("generic", None): 1}


def test_every_role_reads_them_and_bad_parameters_are_refused(
    client: TestClient, keys: dict[Role, str]
) -> None:
    for role in Role:
        answer = client.get("/live-metrics?hours=1", headers=auth(keys[role]))
        assert answer.status_code == 200, (role, answer.text)
        assert answer.json()["hours"] == [] and answer.json()["updated_at"] is None
    assert client.get("/live-metrics").status_code == 401
    too_far = client.get("/live-metrics?hours=25", headers=auth(keys[Role.MANAGER]))
    assert too_far.status_code == 422 and "24" in too_far.text
    too_fast = client.get("/live-metrics/stream?interval_s=0.01", headers=auth(keys[Role.MANAGER]))
    assert too_fast.status_code == 422 and "interval_s" in too_fast.text


@pytest.mark.slow
def test_two_workers_split_the_partitions_and_count_each_case_once(
    settings: Settings,
    container: Container,
    client: TestClient,
    keys: dict[Role, str],
    workers: Callable[..., Path],
) -> None:
    now = datetime.now(UTC)
    cases = [Case() for _ in range(60)]
    partitions = {partition_for(c.case_id.encode(), settings.kafka_partitions) for c in cases}
    assert partitions == set(range(settings.kafka_partitions))
    key = keys[Role.MANAGER]

    # One worker counts the openings of every case, on every partition.
    openings = [c.opened(now) for c in cases]
    publish(settings, openings)
    workers("first")
    wait_for(client, key, lambda body: backlog(body) == {("generic", None): 60}, WORKER_START_S)

    # A second joins the group: the partitions are split, and each finds the cases of the
    # partitions it took in the tables' changelog.
    workers("second")

    def split(body: dict[str, Any]) -> bool:
        owned = [set(w["partitions"]) for w in body["workers"]]
        return (
            len(owned) == 2
            and all(owned)
            and not owned[0] & owned[1]
            and owned[0] | owned[1] == partitions
        )

    before = {w["worker"]: w["events_counted"] for w in wait_for(client, key, split, 60)["workers"]}

    # Both count the closings of their cases; openings delivered again are not counted again.
    publish(settings, openings + [c.event("CaseClosed", now, reason="done") for c in cases])
    body = wait_for(
        client,
        key,
        lambda body: hour_counts(body).get((iso_hour(now), "generic", None)) == (60, 60, 0),
        WORKER_START_S,
    )
    assert backlog(body) == {}
    assert split(body)
    after = {w["worker"]: w["events_counted"] for w in body["workers"]}
    assert after.keys() == before.keys()
    assert all(after[worker] > before[worker] for worker in after), (before, after)


@pytest.mark.slow
def test_a_worker_outlives_a_broker_that_comes_back_empty(
    settings: Settings,
    client: TestClient,
    keys: dict[Role, str],
    workers: Callable[..., Path],
    tmp_path: Path,
) -> None:
    broker = EmbeddedBroker(free_port(), tmp_path / "broker.log").start()
    try:
        moved = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap})
        now = datetime.now(UTC)
        before, after = [Case() for _ in range(5)], [Case() for _ in range(7)]
        publish(moved, [c.opened(now) for c in before])
        workers("outlives", moved)
        key = keys[Role.MANAGER]
        wait_for(client, key, lambda body: backlog(body) == {("generic", None): 5}, 60)
        broker.stop()
        time.sleep(3)  # the worker meets the outage (a pause of the test's world, not a wait)
        broker.start()  # back, and empty: it kept nothing
        publish(moved, [c.opened(now) for c in after])
        wait_for(client, key, lambda body: backlog(body) == {("generic", None): 12}, 120)
    finally:
        broker.stop()
