"""Helpers for tests that run the relay and the projection worker for real."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord

from domain.context import CommandContext
from domain.envelope import EventEnvelope
from infra.bootstrap import Container
from infra.settings import Settings
from tests.conftest import settings_env

CTX = CommandContext("tester", "handler")


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@contextmanager
def running(target: Callable[[threading.Event], None]) -> Iterator[threading.Event]:
    """Run ``target(stop)`` in a thread for the duration of the block."""
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(30)


def spawn(verb: str, settings: Settings) -> subprocess.Popen[bytes]:
    """Start ``caseledger VERB`` as a real process for ``settings``."""
    return subprocess.Popen(
        [sys.executable, "-m", "infra.cli", verb],
        env=settings_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def read_topic(settings: Settings, expected: int, timeout: float = 30) -> list[EventEnvelope]:
    """Every message on the topic, as envelopes, once ``expected`` distinct events arrived."""
    consumer = KafkaConsumer(
        settings.kafka_topic,
        bootstrap_servers=settings.kafka_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1_000,
    )
    seen: list[EventEnvelope] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if len({(e.case_id, e.case_version) for e in seen}) >= expected:
                break
            for batch in consumer.poll(timeout_ms=500).values():
                seen.extend(EventEnvelope.from_json(r.value) for r in batch)
    finally:
        consumer.close()
    return seen


def raw_records(settings: Settings, count: int) -> list[ConsumerRecord]:
    """The first ``count`` records on the topic, as any Kafka client reads them."""
    consumer = KafkaConsumer(
        settings.kafka_topic,
        bootstrap_servers=settings.kafka_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5_000,
    )
    try:
        return [record for _, record in zip(range(count), consumer, strict=False)]
    finally:
        consumer.close()


def open_cases(container: Container, count: int, notes: int = 0) -> list[str]:
    """Open ``count`` cases, each with ``notes`` notes; returns their ids."""
    ids = []
    for i in range(count):
        case = container.ledger.open_case("generic", f"case {i}", {"n": i}, None, CTX)
        for j in range(notes):
            container.ledger.add_note(case.id, f"note {j}", CTX, None)
        ids.append(str(case.id))
    return ids


def view_rows(container: Container) -> dict[str, tuple[int, str, str | None]]:
    """case id -> (version, status, assignee) as the case_list view holds it."""
    with container.pool.connection() as conn:
        rows = conn.execute("SELECT case_id, version, status, assignee FROM case_list").fetchall()
    return {str(r["case_id"]): (r["version"], r["status"], r["assignee"]) for r in rows}


def store_versions(container: Container) -> dict[str, int]:
    """case id -> its latest version in the event store."""
    with container.pool.connection() as conn:
        rows = conn.execute(
            container.reader.sql(
                "SELECT originator_id, max(originator_version) AS v FROM {events}"
                " GROUP BY originator_id"
            )
        ).fetchall()
    return {str(r["originator_id"]): r["v"] for r in rows}
