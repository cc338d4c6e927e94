"""Cached cases and snapshots: loading stops growing with history, and stays correct when
several processes write the same case (each has its own cache)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import project_aggregate

from domain.case import Case
from infra.bootstrap import Container, bootstrap
from infra.settings import Settings
from services.application import SNAPSHOT_EVERY
from services.errors import VersionConflict
from tests.integration.helpers import CTX, open_cases


@pytest.fixture
def other(settings: Settings) -> Iterator[Container]:
    """A second ledger on the same store, with a cache of its own (as another process)."""
    built = bootstrap(settings, name="other")
    yield built
    built.close()


def state(case: Case) -> dict[str, Any]:
    return {k: v for k, v in case.__dict__.items() if k != "_pending_events"}


def replayed(container: Container, case_id: UUID, version: int | None = None) -> Case:
    """The case rebuilt from every one of its events, without snapshot or cache."""
    events = container.ledger.events.get(case_id, lte=version)
    case = project_aggregate(None, events)
    assert isinstance(case, Case)
    return case


def test_a_case_written_by_two_ledgers_is_seen_whole_by_each_before_it_decides(
    container: Container, other: Container
) -> None:
    [case_id] = [UUID(c) for c in open_cases(container, 1)]
    mine, theirs = container.ledger, other.ledger
    assert mine.get_case(case_id).version == theirs.get_case(case_id).version == 1  # cached
    theirs.add_note(case_id, "from the other process", CTX, 1)
    case = mine.get_case(case_id)
    assert case.version == 2 and case.notes[-1]["text"] == "from the other process"
    with pytest.raises(VersionConflict):
        mine.add_note(case_id, "decided on a stale case", CTX, 1)
    mine.add_note(case_id, "decided on the fresh case", CTX, 2)
    theirs.assign(case_id, "bob", CTX, None)  # no expected version: retried on the fresh case
    for ledger in (mine, theirs):
        case = ledger.get_case(case_id)
        assert case.version == 4 and case.assignee == "bob"
        assert [n["text"] for n in case.notes] == [
            "from the other process",
            "decided on the fresh case",
        ]
        assert state(case) == state(replayed(container, case_id))


def test_a_refused_command_leaves_the_cached_case_as_it_was(container: Container) -> None:
    [case_id] = [UUID(c) for c in open_cases(container, 1)]
    before = state(container.ledger.get_case(case_id))
    with pytest.raises(VersionConflict):
        container.ledger.update_fields(case_id, {"amount": 999}, CTX, 7)
    assert state(container.ledger.get_case(case_id)) == before


def test_snapshots_bound_a_load_and_give_the_same_case_now_and_in_the_past(
    container: Container, settings: Settings
) -> None:
    [case_id] = [UUID(c) for c in open_cases(container, 1)]
    ledger = container.ledger
    for i in range(2 * SNAPSHOT_EVERY + 20):
        if i % 3 == 0:
            ledger.assign(case_id, f"handler-{i % 2}", CTX, None)
        else:
            ledger.add_note(case_id, f"note {i}", CTX, None)
    assert ledger.snapshots is not None
    snapshots = [s.originator_version for s in ledger.snapshots.get(case_id)]
    assert snapshots == [SNAPSHOT_EVERY, 2 * SNAPSHOT_EVERY]

    fresh = bootstrap(settings, name="fresh")  # an empty cache: the load starts at a snapshot
    try:
        now = fresh.ledger.get_case(case_id)
        assert now.version == 2 * SNAPSHOT_EVERY + 21
        assert state(now) == state(replayed(container, case_id))
        for version in (1, SNAPSHOT_EVERY - 1, SNAPSHOT_EVERY, SNAPSHOT_EVERY + 37):
            past = fresh.ledger.get_case(case_id, version=version)
            assert past.version == version
            assert state(past) == state(replayed(container, case_id, version))
    finally:
        fresh.close()


def test_readers_never_see_a_cached_case_half_brought_up_to_date(
    container: Container, other: Container
) -> None:
    [case_id] = [UUID(c) for c in open_cases(container, 1)]
    done = threading.Event()
    torn: list[tuple[int, int]] = []

    def read() -> None:
        while not done.is_set():
            case = container.ledger.get_case(case_id)
            if len(case.notes) != case.version - 1:  # every event after opening is a note
                torn.append((case.version, len(case.notes)))

    readers = [threading.Thread(target=read) for _ in range(6)]
    for reader in readers:
        reader.start()
    try:
        for i in range(60):  # written by another ledger: this one catches up on every read
            other.ledger.add_note(case_id, f"note {i}", CTX, None)
    finally:
        done.set()
        for reader in readers:
            reader.join(30)
    assert not torn
    assert container.ledger.get_case(case_id).version == 61
