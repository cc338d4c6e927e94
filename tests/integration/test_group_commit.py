"""Group commit on the real event store: writers that arrive together share a commit, and
still get exactly the outcome each would get alone (issue 9's proof of concurrency)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from infra.bootstrap import Container
from infra.recorder import BoundedApplicationRecorder, _CommitUnanswered, _Write
from infra.settings import Settings
from services.deadline import deadline_in
from services.errors import OutcomeUnknown, RequestReplayed, StoreUnavailable, VersionConflict
from services.idempotency import Claim, claiming
from services.metrics import OBSERVED
from tests.conftest import settings_env
from tests.integration.helpers import CTX, open_cases

WRITERS = 16
ROOT = Path(__file__).resolve().parents[2]


def recorder_of(container: Container) -> BoundedApplicationRecorder:
    recorder = container.ledger.recorder
    assert isinstance(recorder, BoundedApplicationRecorder)
    return recorder


def metric(name: str) -> float:
    return OBSERVED.get_sample_value(name) or 0.0


def history(container: Container, case_id: str) -> list[tuple[int, str]]:
    events = container.ledger.history(UUID(case_id))
    return [(e.originator_version, type(e).__name__) for e in events]


def test_sixteen_writers_with_expected_versions_get_one_winner_per_version(
    container: Container,
) -> None:
    cases = open_cases(container, 4)
    recorder = recorder_of(container)
    batches, items = recorder.committer.batches, recorder.committer.items
    committed = metric("caseledger_commit_commands_sum")
    for _ in range(3):
        versions = {c: container.ledger.get_case(UUID(c)).version for c in cases}
        barrier = threading.Barrier(WRITERS)

        def race(
            i: int, versions: dict[str, int] = versions, barrier: threading.Barrier = barrier
        ) -> tuple[str, str]:
            case_id = cases[i % len(cases)]
            barrier.wait()
            try:
                container.ledger.add_note(UUID(case_id), f"w{i}", CTX, versions[case_id])
            except VersionConflict:
                return case_id, "conflict"
            return case_id, "stored"

        with ThreadPoolExecutor(WRITERS) as pool:
            outcomes = list(pool.map(race, range(WRITERS)))
        for case_id in cases:
            mine = [o for c, o in outcomes if c == case_id]
            assert mine.count("stored") == 1, (case_id, mine)
            assert mine.count("conflict") == WRITERS // len(cases) - 1
    for case_id in cases:
        assert [v for v, _ in history(container, case_id)] == [1, 2, 3, 4]
    saves = recorder.committer.items - items  # a writer that loads a newer case saves nothing
    assert recorder.committer.batches - batches < saves  # some saves shared a commit
    assert metric("caseledger_commit_commands_sum") - committed == 3 * len(cases)  # /metrics


@pytest.mark.parametrize("shared", [True, False], ids=["shared cases", "distinct cases"])
def test_sixteen_writers_without_expected_versions_store_every_command_once(
    container: Container, shared: bool
) -> None:
    cases = open_cases(container, 4 if shared else WRITERS)
    per_writer = 6

    def write(i: int) -> None:
        case_id = UUID(cases[i % len(cases)])
        for n in range(per_writer):
            container.ledger.add_note(case_id, f"w{i} n{n}", CTX, None)

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, range(WRITERS)))
    notes: Counter[str] = Counter()
    for case_id in cases:
        case = container.ledger.get_case(UUID(case_id))
        assert [v for v, _ in history(container, case_id)] == list(range(1, case.version + 1))
        notes.update(n["text"] for n in case.notes)
    expected = {f"w{i} n{n}" for i in range(WRITERS) for n in range(per_writer)}
    assert set(notes) == expected and set(notes.values()) == {1}


def stored_event(originator: UUID, version: int) -> StoredEvent:
    return StoredEvent(originator, version, "bench:Event", b"{}")


def test_a_conflict_in_a_batch_fails_only_its_own_save(container: Container) -> None:
    recorder = recorder_of(container)
    taken, free, twice = uuid4(), uuid4(), uuid4()
    recorder.insert_events([stored_event(taken, 1)])
    writes = [
        _Write([stored_event(free, 1), stored_event(free, 2)], ()),
        _Write([stored_event(taken, 1)], ()),  # stored already
        _Write([stored_event(twice, 1)], ()),
        _Write([stored_event(twice, 1)], ()),  # wants the version its batch-mate takes
    ]
    outcomes = recorder._write_together(writes, 5_000)
    assert isinstance(outcomes[1], IntegrityError) and isinstance(outcomes[3], IntegrityError)
    first, third = outcomes[0], outcomes[2]
    assert not isinstance(first, BaseException) and not isinstance(third, BaseException)
    assert len(first) == 2 and len(third) == 1 and max(first) < min(third)
    assert [e.originator_version for e in recorder.select_events(free)] == [1, 2]
    assert len(recorder.select_events(twice)) == 1


def test_two_saves_with_one_idempotency_key_in_one_batch_store_once(
    container: Container,
) -> None:
    recorder = recorder_of(container)
    claim = Claim("tester", f"key-{uuid4()}", "hash")
    a, b = uuid4(), uuid4()
    outcomes = recorder._write_together(
        [_Write([stored_event(a, 1)], (claim,)), _Write([stored_event(b, 1)], (claim,))], 5_000
    )
    assert isinstance(outcomes[1], RequestReplayed)
    assert recorder.select_events(a) and not recorder.select_events(b)

    def racer(originator: UUID) -> str:
        with claiming(Claim("tester", "raced", "hash")):
            try:
                recorder.insert_events([stored_event(originator, 1)])
            except RequestReplayed:
                return "replayed"
            return "stored"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(racer, [uuid4() for _ in range(8)]))
    assert results.count("stored") == 1 and results.count("replayed") == 7


WRITER = """
import sys, threading, uuid
from eventsourcing.persistence import StoredEvent
from infra.bootstrap import bootstrap
from infra.settings import Settings

container = bootstrap(Settings(), name="killed-writer")
recorder = container.ledger.recorder
lock = threading.Lock()

def write() -> None:
    while True:
        originator = uuid.uuid4()
        recorder.insert_events(
            [StoredEvent(originator, v, "test:Event", b"{}") for v in (1, 2, 3)]
        )
        with lock:
            sys.stdout.write(f"{originator}\\n")
            sys.stdout.flush()

for _ in range(16):
    threading.Thread(target=write, daemon=True).start()
threading.Event().wait()
"""


def test_a_writer_killed_in_the_middle_of_batches_stores_whole_saves_only(
    container: Container, settings: Settings
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER],
        cwd=ROOT,
        env={**settings_env(settings), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    acknowledged: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    try:
        while len(acknowledged) < 300 and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            acknowledged.append(line.strip())
        os.kill(process.pid, signal.SIGKILL)
        acknowledged.extend(line.strip() for line in process.stdout)
    finally:
        process.kill()
        process.wait()
    assert len(acknowledged) >= 300, "the writer did not get going"
    with container.pool.connection() as conn:
        rows = conn.execute(
            container.reader.sql(
                "SELECT originator_id::text AS id, count(*) AS n,"
                " array_agg(originator_version ORDER BY originator_version) AS versions"
                " FROM {events} WHERE topic = 'test:Event' GROUP BY originator_id"
            )
        ).fetchall()
    stored = {row["id"]: row["versions"] for row in rows}
    assert all(versions == [1, 2, 3] for versions in stored.values())  # no half save
    assert set(acknowledged) <= set(stored)  # every acknowledged save is there


def test_a_save_whose_commit_went_unanswered_is_looked_up_not_guessed(
    container: Container,
) -> None:
    recorder = recorder_of(container)
    case, child = uuid4(), uuid4()
    save = [stored_event(case, 1), stored_event(case, 2), stored_event(child, 1)]
    ids = recorder.insert_events(save)
    assert recorder._ids_of(save) == sorted(ids or [])  # the whole save, children too
    other = StoredEvent(case, 1, "bench:Event", b'{"another": "command"}')
    assert recorder._ids_of([other]) == []  # that version holds another command's event
    assert recorder._ids_of([stored_event(uuid4(), 1)]) == []  # not stored at all
    with pytest.raises(StoreUnavailable, match="it was not stored"):
        recorder._after_unanswered_commit(_CommitUnanswered(None, [other]))


def test_an_unanswered_commit_is_looked_up_until_the_deadline_then_answered_unknown(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the database is away the lookup is tried again; if it never answers in time,
    the outcome is "unknown" (504), never "not stored" (503): it may be stored."""
    recorder = recorder_of(container)
    save = [stored_event(uuid4(), 1)]
    ids = recorder.insert_events(save)
    lookup, tries = recorder._ids_of, []

    def away_then_back(events: list[StoredEvent]) -> list[int]:
        tries.append(1)
        if len(tries) < 3:
            raise OperationalError("the database is away")
        return lookup(events)

    monkeypatch.setattr(recorder, "_ids_of", away_then_back)
    with deadline_in(5.0):
        assert recorder._after_unanswered_commit(_CommitUnanswered(None, save)) == ids
    assert len(tries) == 3

    monkeypatch.setattr(
        recorder, "_ids_of", lambda _: (_ for _ in ()).throw(OperationalError("away"))
    )
    started = time.monotonic()
    with deadline_in(0.5), pytest.raises(OutcomeUnknown, match="whether it was stored"):
        recorder._after_unanswered_commit(_CommitUnanswered(None, save))
    assert time.monotonic() - started < 1.0
