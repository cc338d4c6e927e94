"""Every projection of the stack, run together: the worker hands each batch to all of them.

Each projection applies a batch in its own transaction (its own tables, its own tracking):
a projection held up by a poison event or a rebuild's swap never holds the others. The
worker commits its Kafka offsets once all of them have applied the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from domain.envelope import EventEnvelope
from domain.errors import DomainError
from infra.event_store import EventStoreReader
from infra.projection_runner import ApplyResult, ProjectionRunner
from infra.projection_tables import AfterSwap, Generation, create_state_tables, needs_rebuild
from projections.base import FinalStates, Projection
from projections.case_history import CaseHistoryProjection
from projections.case_list import CaseListProjection
from projections.work_queues import WorkQueuesProjection
from services.application import CaseLedger
from services.errors import ProjectionNotFound
from services.projection_admin import DeadLetter, ProjectionOverview, RetryOutcome


def final_states(ledger: CaseLedger) -> FinalStates:
    """Whether a status is final in a case type version (closed always is)."""

    def is_final(case_type: str, version: int, status: str) -> bool:
        try:
            return ledger.definitions.definition(case_type, version).is_final(status)
        except DomainError:
            return status == "closed"

    return is_final


def all_projections(ledger: CaseLedger) -> tuple[Projection, ...]:
    final = final_states(ledger)
    return (CaseListProjection(final), CaseHistoryProjection(final), WorkQueuesProjection())


class ProjectionSet:
    """The live generation of every projection."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[DictRow]],
        reader: EventStoreReader,
        projections: Sequence[Projection],
    ) -> None:
        self.pool = pool
        self.reader = reader
        self.runners = {p.name: ProjectionRunner(pool, reader, Generation(p)) for p in projections}
        self._threads = ThreadPoolExecutor(len(self.runners), thread_name_prefix="projection")
        #: Recreate what depends on the live tables (the analysts' views) after a swap.
        self.after_swap: list[AfterSwap] = []

    def create_tables(self) -> None:
        """Create missing tables (call under ``infra.db.schema_lock``)."""
        with self.pool.connection() as conn, conn.transaction():
            create_state_tables(conn)
        for runner in self.runners.values():
            runner.create_tables()

    def runner(self, name: str) -> ProjectionRunner:
        if name not in self.runners:
            raise ProjectionNotFound(
                f"there is no projection called {name!r}",
                hint=f"the projections are {', '.join(self.runners)}",
            )
        return self.runners[name]

    def apply_batch(self, events: Sequence[EventEnvelope]) -> dict[str, ApplyResult]:
        """Apply ``events`` to every projection, each in its own transaction, side by side
        (most of a batch's time is spent waiting on PostgreSQL)."""
        futures = {
            name: self._threads.submit(runner.apply_batch, events)
            for name, runner in self.runners.items()
        }
        return {name: future.result() for name, future in futures.items()}

    def close(self) -> None:
        self._threads.shutdown(wait=True)

    def catch_up_from_store(self, upto: int, limit: int) -> int:
        return sum(r.catch_up_from_store(upto, limit) for r in self.runners.values())

    def lag(self) -> int:
        """Stored case events some projection does not reflect yet (for tests and benches)."""
        with self.pool.connection() as conn:
            return sum(runner.lag(conn) for runner in self.runners.values())

    def state(self, name: str) -> dict[str, Any]:
        with self.pool.connection() as conn:
            return self.runner(name).state(conn)

    def figures(self, on: Connection[DictRow]) -> dict[str, dict[str, Any]]:
        """Each projection's position, lag and held cases, for status and metrics."""
        return {
            name: {
                **runner.state(on),
                "lag": runner.lag(on),
                "outdated": needs_rebuild(on, runner.gen),
            }
            for name, runner in self.runners.items()
        }

    def overview(self) -> list[ProjectionOverview]:
        with self.pool.connection() as conn:
            figures = self.figures(conn)
        return [
            ProjectionOverview(
                name=name,
                tables=[t.name for t in self.runners[name].projection.tables],
                position=int(f.get("max_position") or 0),
                applied_events=int(f.get("applied_events") or 0),
                lag=int(f["lag"]),
                held_cases=int(f["held_cases"]),
                rebuilt_at=f.get("rebuilt_at"),
            )
            for name, f in figures.items()
        ]

    def held(self, name: str | None, limit: int) -> list[DeadLetter]:
        with self.pool.connection() as conn:
            return self.dead_letters(conn, name, limit)

    def dead_letters(
        self, on: Connection[DictRow], name: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """Events set aside and not retried yet, oldest first."""
        if name is not None:
            self.runner(name)
        rows = on.execute(
            "SELECT projection, case_id, case_version, global_position, event_type, error,"
            " recorded_at, retried_at FROM projection_dead_letters"
            " WHERE retried_at IS NULL AND projection = ANY(%s)"
            " ORDER BY recorded_at, projection, case_id LIMIT %s",
            ([name] if name else list(self.runners), limit),
        ).fetchall()
        return [DeadLetter(**{**r, "case_id": str(r["case_id"])}) for r in rows]

    def retry(self, name: str, case_id: UUID | None = None) -> RetryOutcome:
        """Apply again, from the store, the events of the cases held in ``name`` (or of one
        case): after a fix they move on; a case that fails again is held again, with the new
        error."""
        runner = self.runner(name)
        retried = moved = applied = 0
        with self.pool.connection() as conn, conn.transaction():
            held = conn.execute(
                runner.sql_held(),
                {"case_id": case_id},
            ).fetchall()
            for row in held:
                retried += 1
                conn.execute(
                    "UPDATE projection_dead_letters SET retried_at = now()"
                    " WHERE projection = %s AND case_id = %s AND retried_at IS NULL",
                    (runner.gen.key, row["case_id"]),
                )
                conn.execute(runner.sql_release(), (row["case_id"],))
                events = self.reader.case_events(conn, row["case_id"], row["version"], 2**31 - 1)
                result = runner.apply_batch(events, conn=conn)
                applied += result.applied
                moved += 1 if result.set_aside == 0 else 0
        if case_id is not None and not retried:
            raise ProjectionNotFound(
                f"case {case_id} is not held in the projection {name!r}",
                hint=f"see the held cases: caseledger projections status {name}",
            )
        return RetryOutcome(retried=retried, moved_on=moved, applied=applied)
