"""Rebuild a projection beside the live one and swap it in; check the live one for drift.

A rebuild fills the ``__next`` generation from the event store, in order, a chunk at a time:
each chunk and the position it reached commit together, so a rebuild killed midway resumes
from there. Close to the store's head it takes the projection's lock exclusively (live
batches wait a moment; queries never do), applies what was stored meanwhile, and renames
the new tables over the live ones in the same transaction. The live worker then goes on
with the new tables: what it receives again is skipped by their versions.

A drift check fills the ``__verify`` generation the same way, brings both it and the live
one to the store's head under the lock, and compares them row for row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from psycopg import Connection
from psycopg.rows import DictRow

from domain.errors import DomainError
from infra.projection_runner import ProjectionRunner
from infra.projection_tables import (
    NEXT,
    VERIFY,
    AfterSwap,
    Drift,
    compare,
    create,
    drop,
    exists,
    needs_rebuild,
    swap,
)

log = logging.getLogger(__name__)
#: Stored events read per chunk: one transaction each.
CHUNK = 5_000
#: Progress: (position reached, store head) after each chunk.
Progress = Callable[[int, int], None]


class RebuildRunning(DomainError):
    """Another rebuild or drift check of the projection holds its tables."""

    code = "rebuild_running"


@dataclass(frozen=True)
class RebuildReport:
    projection: str
    resumed_from: int
    position: int
    applied: int
    held_cases: int


def _quiet(_position: int, _head: int) -> None:
    return None


class Rebuilder:
    """Rebuilds and verifies the projection of ``live``."""

    def __init__(
        self,
        live: ProjectionRunner,
        after_swap: list[AfterSwap] | None = None,
        chunk: int = CHUNK,
    ) -> None:
        self.live = live
        self.chunk = chunk
        self.pool = live.pool
        self.reader = live.reader
        self.after_swap = after_swap or []

    def _shadow(self, suffix: str) -> ProjectionRunner:
        return ProjectionRunner(self.pool, self.reader, self.live.gen.sibling(suffix))

    def rebuild(self, progress: Progress = _quiet, fresh: bool = False) -> RebuildReport:
        """Build the projection anew from the event store and swap it in. A rebuild killed
        midway is resumed (unless ``fresh``)."""
        shadow = self._shadow(NEXT)
        with self._only_rebuild():
            with self.pool.connection() as conn, conn.transaction():
                stale = exists(conn, shadow.gen) and needs_rebuild(conn, shadow.gen)
                if fresh or stale or not exists(conn, shadow.gen):
                    drop(conn, shadow.gen)  # an interrupted rebuild by older code too
                create(conn, shadow.gen)
                start = int(shadow.state(conn).get("store_watermark") or 0)
            return self._rebuild(shadow, start, progress)

    @contextmanager
    def _only_rebuild(self) -> Iterator[None]:
        """Hold the projection's rebuild lock (a session lock on a connection of its own):
        two rebuilds of one projection would fill the same tables."""
        lock = self.live.gen.lock_id + 1
        with self.pool.connection() as holder:
            holder.autocommit = True
            row = holder.execute("SELECT pg_try_advisory_lock(%s) AS got", (lock,)).fetchone()
            if not (row and row["got"]):
                raise RebuildRunning(
                    f"a rebuild or drift check of {self.live.name} is running already",
                    hint="wait for it to finish (caseledger projections list shows when it"
                    " swapped in), then try again",
                )
            try:
                yield
            finally:
                holder.execute("SELECT pg_advisory_unlock(%s)", (lock,))
                holder.autocommit = False

    def _rebuild(self, shadow: ProjectionRunner, start: int, progress: Progress) -> RebuildReport:
        if start:
            log.info("resuming the rebuild of %s from position %d", self.live.name, start)
        position = self._fill(shadow, start, progress)
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.live.gen.lock_id,))
            position = self._fill(shadow, position, progress, conn)
            state = shadow.state(conn)
            swap(conn, shadow.gen, self.after_swap)
        return RebuildReport(
            projection=self.live.name,
            resumed_from=start,
            position=position,
            applied=int(state.get("applied_events") or 0),
            held_cases=int(state.get("held_cases") or 0),
        )

    def verify(self, progress: Progress = _quiet) -> list[Drift]:
        """Every row where the live projection differs from one rebuilt from the store."""
        shadow = self._shadow(VERIFY)
        with self._only_rebuild():
            return self._verify(shadow, progress)

    def _verify(self, shadow: ProjectionRunner, progress: Progress) -> list[Drift]:
        with self.pool.connection() as conn, conn.transaction():
            drop(conn, shadow.gen)
            create(conn, shadow.gen)
        try:
            position = self._fill(shadow, 0, progress)
            with self.pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.live.gen.lock_id,))
                self._fill(shadow, position, progress, conn)
                head = self.reader.head()
                while self.live.catch_up_from_store(head, self.chunk, conn):
                    pass
                return compare(conn, self.live.gen, shadow.gen)
        finally:
            with self.pool.connection() as conn, conn.transaction():
                drop(conn, shadow.gen)

    def _fill(
        self,
        shadow: ProjectionRunner,
        position: int,
        progress: Progress,
        conn: Connection[DictRow] | None = None,
    ) -> int:
        """Apply every stored event after ``position`` to ``shadow``, a chunk per
        transaction (or all in ``conn``'s); answers the position reached. The next chunk is
        read while the current one is applied (the apply waits on PostgreSQL a good part of
        its time)."""
        head = self.reader.head()
        with ThreadPoolExecutor(1, thread_name_prefix="rebuild-read") as reading:
            ahead = reading.submit(self.reader.read_log, position, self.chunk)
            while position < head:
                events, reached = ahead.result()
                if reached == position:
                    break
                ahead = reading.submit(self.reader.read_log, reached, self.chunk)
                shadow.apply_batch(events, conn=conn, watermark=reached)
                position = reached
                progress(position, head)
                if conn is None and position >= head:
                    # Events stored meanwhile: keep up until close; the caller takes the
                    # rest under the lock.
                    head = self.reader.head()
                    if head - position < self.chunk:
                        break
        return position
