"""Benchmark 1: durable commands/s through ``CaseLedger``, vs plain single-row INSERTs.

Each writer thread opens a case and adds NOTES_PER_CASE notes to it, then opens the next,
for a fixed time; every command is one durable save. The baseline inserts one row per
transaction (autocommit) into a table shaped like the event store's, with the bytes of a
real stored event, over its own psycopg connection per thread. Both run with 1 and with 16
threads on the same database.

A third figure compares the event store's writer (``infra.recorder``: no pipeline mode, write
budgets) with the eventsourcing library's own pipeline-mode recorder, one event per save, on
tables of their own in the same database.

Run on its own: ``.venv/bin/python -m bench.writes [--quick]`` (from the project root).
"""

from __future__ import annotations

import time
from uuid import UUID, uuid4

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from bench.common import (
    CONSOLE,
    CTX,
    NOTES_PER_CASE,
    BenchEnv,
    Figure,
    Scale,
    ThreadRun,
    Worker,
    bench_environment,
    print_figure,
    run_alone,
    run_for,
)
from infra.recorder import BoundedApplicationRecorder
from services.application import CaseLedger

NAME = "writes"
THREAD_COUNTS = (1, 16)
WARM_UP_SECONDS = 0.5

RAW_TABLE = """
CREATE TABLE bench_raw_events (
    notification_id    bigserial,
    originator_id      uuid NOT NULL,
    originator_version integer NOT NULL,
    topic              text NOT NULL,
    state              bytea NOT NULL,
    PRIMARY KEY (originator_id, originator_version)
);
CREATE UNIQUE INDEX bench_raw_events_notification ON bench_raw_events (notification_id);
"""
RAW_INSERT = (
    "INSERT INTO bench_raw_events (originator_id, originator_version, topic, state)"
    " VALUES (%s, 1, %s, %s) RETURNING notification_id"
)


def service_worker(ledger: CaseLedger) -> Worker:
    """Open a case, add notes to it, open the next; one durable save per command."""

    def work(index: int, deadline: float, counts: list[int]) -> None:
        case_id: UUID | None = None
        notes = 0
        while time.perf_counter() < deadline:
            if case_id is None or notes >= NOTES_PER_CASE:
                case = ledger.open_case("generic", f"bench {index}", {"w": index}, None, CTX)
                case_id, notes = case.id, 0
            else:
                ledger.add_note(case_id, f"note {notes}", CTX, None)
                notes += 1
            counts[index] += 1

    return work


def raw_worker(dsn: str, topic: str, state: bytes) -> Worker:
    """One autocommitted single-row INSERT per transaction, on the thread's own connection."""

    def work(index: int, deadline: float, counts: list[int]) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while time.perf_counter() < deadline:
                conn.execute(RAW_INSERT, (uuid4(), topic, state)).fetchone()
                counts[index] += 1

    return work


def recorder_worker(recorder: PostgresApplicationRecorder, topic: str, state: bytes) -> Worker:
    """One save of one event per iteration, through ``recorder``."""

    def work(index: int, deadline: float, counts: list[int]) -> None:
        while time.perf_counter() < deadline:
            recorder.insert_events([StoredEvent(uuid4(), 1, topic, state)])
            counts[index] += 1

    return work


def recorder_figure(env: BenchEnv, seconds: float, topic: str, state: bytes) -> Figure:
    datastore = env.container.ledger.recorder.datastore  # type: ignore[attr-defined]
    ours = BoundedApplicationRecorder(datastore, events_table_name="bench_bounded_events")
    library = PostgresApplicationRecorder(datastore, events_table_name="bench_library_events")
    for recorder in (ours, library):
        recorder.create_table()
    raw = measure("library pipeline recorder", 1, seconds, recorder_worker(library, topic, state))
    bounded = measure("caseledger recorder", 1, seconds, recorder_worker(ours, topic, state))
    return Figure(
        benchmark=NAME,
        label="event-store saves/s, caseledger recorder",
        value=bounded.rate,
        unit="/s",
        baseline_label="saves/s, the library's pipeline recorder",
        baseline=raw.rate,
    )


def sample_event(env: BenchEnv) -> tuple[str, bytes]:
    """The topic and state of a real stored NoteAdded event, for the raw rows."""
    case = env.container.ledger.open_case("generic", "sample", {"n": 0}, None, CTX)
    env.container.ledger.add_note(case.id, "note 0", CTX, None)
    with env.container.pool.connection() as conn:
        conn.execute(RAW_TABLE)
        row = conn.execute(
            env.container.reader.sql(
                "SELECT topic, state FROM {events} WHERE originator_id = %s"
                " ORDER BY originator_version DESC LIMIT 1"
            ),
            (case.id,),
        ).fetchone()
    assert row is not None
    return str(row["topic"]), bytes(row["state"])


def measure(description: str, threads: int, seconds: float, worker: Worker) -> ThreadRun:
    """Warm up briefly with the same threads, then measure for ``seconds``."""
    run_for(f"{description} (warm-up)", threads, WARM_UP_SECONDS, worker)
    return run_for(description, threads, seconds, worker)


def figure(threads: int, service: ThreadRun, raw: ThreadRun) -> Figure:
    return Figure(
        benchmark=NAME,
        label=f"commands/s, {threads} thread{'s' if threads > 1 else ''}",
        value=service.rate,
        unit="/s",
        baseline_label=f"plain INSERT txns/s, {threads} thread{'s' if threads > 1 else ''}",
        baseline=raw.rate,
    )


def run(scale: Scale) -> list[Figure]:
    CONSOLE.rule("[bold]1. durable commands/s: CaseLedger vs plain INSERT")
    figures = []
    with bench_environment(NAME) as env:
        topic, state = sample_event(env)
        CONSOLE.print(f"  raw rows carry a real stored event: {len(state)} bytes of state")
        for threads in THREAD_COUNTS:
            raw = measure(
                f"plain INSERT, {threads} threads",
                threads,
                scale.write_seconds,
                raw_worker(env.settings.dsn, topic, state),
            )
            service = measure(
                f"CaseLedger, {threads} threads",
                threads,
                scale.write_seconds,
                service_worker(env.container.ledger),
            )
            figures.append(figure(threads, service, raw))
            print_figure(figures[-1])
        figures.append(recorder_figure(env, scale.write_seconds, topic, state))
        print_figure(figures[-1])
    return figures


if __name__ == "__main__":
    run_alone(run)
