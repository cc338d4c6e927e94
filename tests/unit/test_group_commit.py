"""The group committer on its own: batches form under concurrency, each writer gets its own
outcome, a writer out of time leaves the queue, a failed batch fails only its own writers."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from infra.group_commit import BatchBudget, GroupCommitter, Pending
from tests.integration.helpers import wait_until


class Expired(Exception):
    pass


class Refused(Exception):
    pass


def test_a_lone_writer_commits_at_once() -> None:
    seen: list[list[int]] = []

    def write(batch: Sequence[Pending[int, int]]) -> list[int | BaseException]:
        seen.append([p.item for p in batch])
        return [p.item * 10 for p in batch]

    committer: GroupCommitter[int, int] = GroupCommitter(write, Expired)
    assert committer.submit(4, events=1, size=1, deadline=None) == 40
    assert seen == [[4]]


def test_writers_that_arrive_together_share_batches_and_get_their_own_outcomes() -> None:
    gate = threading.Event()
    sizes: list[int] = []

    def write(batch: Sequence[Pending[int, int]]) -> list[int | BaseException]:
        gate.wait(5)  # the first batch holds the others back until all have queued
        sizes.append(len(batch))
        return [Refused(p.item) if p.item % 5 == 0 else p.item * 2 for p in batch]

    committer: GroupCommitter[int, int] = GroupCommitter(write, Expired)

    def submit(i: int) -> int | str:
        try:
            return committer.submit(i, events=1, size=1, deadline=None)
        except Refused:
            return "refused"

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(submit, i) for i in range(1, 17)]
        wait_until(lambda: len(committer._queue) >= 15, 5, "the writers to queue")
        gate.set()
        results = [f.result(5) for f in futures]
    assert results == ["refused" if i % 5 == 0 else i * 2 for i in range(1, 17)]
    assert sum(sizes) == 16
    assert len(sizes) < 16, sizes  # batched
    assert committer.batches == len(sizes) and committer.items == 16


def test_a_batch_respects_its_budget() -> None:
    gate = threading.Event()
    sizes: list[int] = []

    def write(batch: Sequence[Pending[int, int]]) -> list[int | BaseException]:
        gate.wait(5)
        sizes.append(len(batch))
        return [0] * len(batch)

    committer: GroupCommitter[int, int] = GroupCommitter(
        write, Expired, BatchBudget(commands=4, events=100, size=100)
    )
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(committer.submit, i, 1, 1, None) for i in range(12)]
        gate.set()
        for f in futures:
            f.result(5)
    assert max(sizes) <= 4 and sum(sizes) == 12


def test_a_writer_whose_deadline_passes_in_the_queue_leaves_it_unwritten() -> None:
    release = threading.Event()
    written: list[str] = []

    def write(batch: Sequence[Pending[str, str]]) -> list[str | BaseException]:
        if batch[0].item == "slow":
            release.wait(5)
        written.extend(p.item for p in batch)
        return [p.item for p in batch]

    committer: GroupCommitter[str, str] = GroupCommitter(write, Expired)
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(committer.submit, "slow", 1, 1, None)
        wait_until(lambda: committer._leading, 5, "a leader")
        with pytest.raises(Expired):
            committer.submit("late", 1, 1, time.monotonic() + 0.05)
        release.set()
        assert slow.result(5) == "slow"
    assert written == ["slow"]
    assert not committer._queue


def test_an_error_of_the_write_itself_reaches_every_writer_of_the_batch_only() -> None:
    calls = 0

    def write(batch: Sequence[Pending[int, int]]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("lost")
        return [1] * len(batch)

    committer: GroupCommitter[int, int] = GroupCommitter(write, Expired)
    with pytest.raises(ConnectionError):
        committer.submit(1, 1, 1, None)
    assert committer.submit(2, 1, 1, None) == 1  # the committer is not stuck
