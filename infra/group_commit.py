"""Group commit: writers in one process that arrive together share one transaction.

A writer hands its item to :meth:`GroupCommitter.submit` and waits there for its own outcome.
The first writer that finds no batch being written becomes the leader: it takes what is
queued (oldest first, within the batch budget), writes it with one call of the function the
committer was built with, gives every writer of the batch its own outcome (a result, or the
exception that is raised in that writer's thread) and wakes each of them, then hands the lead
to the oldest writer still waiting, whose batch holds everything that queued meanwhile. Only
those threads wake: a batch does not stir every waiting writer. So the batch grows
with the load by itself: a lone writer commits at once, sixteen writers share a commit.

There is no thread of its own that could die or hang: the committer is its writers. A writer
whose deadline passes while it is still queued leaves the queue (nothing of it is written);
once a leader has taken it, it waits for that batch's outcome, which the write's own timeouts
bound.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class BatchBudget:
    """How much one batch may hold; a single item larger than this is written alone."""

    commands: int = 256
    events: int = 4_000
    size: int = 4 * 1024 * 1024


@dataclass(eq=False)
class Pending(Generic[T, R]):
    """One writer's item, and then its outcome."""

    item: T
    events: int
    size: int
    deadline: float | None  # time.monotonic() after which it is not written
    taken: bool = False
    done: bool = False
    result: R | None = None
    error: BaseException | None = None
    wake: threading.Event = field(default_factory=threading.Event)


#: Writes one batch: one outcome per item, in order (the result, or the exception to raise in
#: that item's writer). An exception raised by it is the outcome of every item of the batch.
BatchWriter = Callable[[Sequence[Pending[T, R]]], Sequence[R | BaseException]]


class GroupCommitter(Generic[T, R]):
    """Batches concurrent :meth:`submit` calls into calls of ``write``."""

    def __init__(
        self,
        write: BatchWriter[T, R],
        expired: Callable[[], BaseException],
        budget: BatchBudget | None = None,
    ) -> None:
        self._write = write
        self._expired = expired
        self.budget = budget or BatchBudget()
        self._lock = threading.Lock()
        self._queue: deque[Pending[T, R]] = deque()
        self._leading = False
        #: Batches written and items in them, since start (for tests and ``/metrics``).
        self.batches = 0
        self.items = 0

    def submit(self, item: T, events: int, size: int, deadline: float | None) -> R:
        """Write ``item`` with whatever else is waiting; returns its result once its batch
        is written, or raises its error."""
        pending: Pending[T, R] = Pending(item, events, size, deadline)
        with self._lock:
            self._queue.append(pending)
            leading = not self._leading
            self._leading = True
        if not leading:
            leading = self._wait(pending)
        while leading:
            with self._lock:
                batch = self._take()
            self._lead(batch)
            leading = not pending.done and self._wait(pending)
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[return-value]  # R may be None itself

    def _wait(self, pending: Pending[T, R]) -> bool:
        """Wait until ``pending`` is written (False) or this writer is to lead (True). Only
        its own writer is woken: by the leader that wrote it, or handing over the lead."""
        while not pending.wake.wait(self._left(pending)):
            with self._lock:  # out of time: leave, unless a leader has taken it or handed over
                if not pending.wake.is_set() and not pending.taken:
                    self._queue.remove(pending)
                    raise self._expired()
        if pending.done:
            return False
        pending.wake.clear()  # the lead: nobody else can take it now, or wake it before
        return True

    @staticmethod
    def _left(pending: Pending[T, R]) -> float | None:
        if pending.taken or pending.deadline is None:
            return None
        return max(0.0, pending.deadline - time.monotonic())

    def _take(self) -> list[Pending[T, R]]:
        """The oldest waiting items that fit in one batch (at least one)."""
        batch: list[Pending[T, R]] = []
        events = size = 0
        budget = self.budget
        while self._queue:
            head = self._queue[0]
            full = (
                len(batch) >= budget.commands
                or events + head.events > budget.events
                or size + head.size > budget.size
            )
            if batch and full:
                break
            batch.append(self._queue.popleft())
            head.taken = True
            events += head.events
            size += head.size
        return batch

    def _lead(self, batch: list[Pending[T, R]]) -> None:
        try:
            outcomes = list(self._write(batch))
            if len(outcomes) != len(batch):
                raise AssertionError(f"{len(outcomes)} outcomes for a batch of {len(batch)}")
        except BaseException as error:  # noqa: BLE001 - every writer of the batch learns why
            outcomes = [error] * len(batch)
        for pending, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                pending.error = outcome
            else:
                pending.result = outcome
            pending.done = True
            pending.wake.set()
        with self._lock:
            self.batches += 1
            self.items += len(batch)
            if self._queue:  # the oldest waiter leads the next batch
                self._queue[0].wake.set()
            else:
                self._leading = False
