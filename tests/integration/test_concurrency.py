"""Concurrent writers: optimistic concurrency per case, and a gap-free global order."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from infra.bootstrap import Container
from services.auth import Role
from tests.conftest import auth, stored_event_count
from tests.integration.helpers import CTX, open_cases
from tests.integration.test_case_api import open_case

RACERS = 20


def test_twenty_clients_racing_on_one_case_leave_a_gap_free_history(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    headers = auth(keys[Role.HANDLER])
    case_id = open_case(client, keys[Role.HANDLER])
    rounds = 5
    for round_number in range(rounds):
        version = client.get(f"/cases/{case_id}", headers=headers).json()["version"]
        barrier = threading.Barrier(RACERS)

        def race(i: int, version: int = version, barrier: threading.Barrier = barrier) -> int:
            barrier.wait()
            body = {"text": f"racer {i}", "expected_version": version}
            return client.post(f"/cases/{case_id}/notes", json=body, headers=headers).status_code

        with ThreadPoolExecutor(RACERS) as pool:
            codes = list(pool.map(race, range(RACERS)))
        assert codes.count(200) == 1, (round_number, codes)
        assert codes.count(409) == RACERS - 1, codes

    history = client.get(f"/cases/{case_id}/history", headers=headers).json()
    assert [h["version"] for h in history] == list(range(1, rounds + 2))
    assert stored_event_count(container) == rounds + 1


def test_racing_without_expected_version_applies_every_command_once(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    headers = auth(keys[Role.HANDLER])
    case_id = open_case(client, keys[Role.HANDLER])
    barrier = threading.Barrier(RACERS)

    def race(i: int) -> int:
        barrier.wait()
        body = {"text": f"racer {i}"}
        return client.post(f"/cases/{case_id}/notes", json=body, headers=headers).status_code

    with ThreadPoolExecutor(RACERS) as pool:
        codes = list(pool.map(race, range(RACERS)))
    assert codes == [200] * RACERS
    case = client.get(f"/cases/{case_id}", headers=headers).json()
    assert case["version"] == RACERS + 1
    assert sorted(n["text"] for n in case["notes"]) == sorted(f"racer {i}" for i in range(RACERS))


def test_a_tailing_reader_never_skips_an_event_that_commits_late(container: Container) -> None:
    writers, per_writer = 8, 40
    done = threading.Event()
    read_positions: list[int] = []

    def tail() -> None:
        after = 0
        while True:
            finished = done.is_set()
            envelopes, after = container.reader.read_log(after, 50)
            read_positions.extend(e.global_position for e in envelopes)
            if finished and not envelopes:
                return

    def write(_: int) -> None:
        for _ in range(per_writer // 2):
            [case_id] = open_cases(container, 1)
            container.ledger.add_note(case_id, "more", CTX, None)  # type: ignore[arg-type]

    reader = threading.Thread(target=tail)
    reader.start()
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))
    done.set()
    reader.join(60)

    with container.pool.connection() as conn:
        query = container.reader.sql("SELECT notification_id FROM {events} ORDER BY 1")
        stored = [r["notification_id"] for r in conn.execute(query).fetchall()]
    assert len(stored) == writers * per_writer
    assert read_positions == stored  # every event, each once, in commit order
