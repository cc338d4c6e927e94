"""``caseledger live-metrics``: runs the live-metrics faust app (``infra.live_metrics``) until
SIGINT or SIGTERM, through any outage of the broker or PostgreSQL.

Faust's own clients retry a broker that went away; when the app crashes all the same (a
broker back empty, a changelog topic gone), this worker logs it once, waits with backoff
and starts a fresh app in the same process, which recovers its tables from the changelog
(or its local RocksDB files) and resumes from the committed offsets. A PostgreSQL outage
only delays the writes: the figures wait in memory.

Each worker keeps its tables' RocksDB files in a folder of its own under
``CASELEDGER_DATA_DIR/live-metrics/`` (the first one no other running worker holds), so
several workers may run from one folder, and a restarted worker finds its files again.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import faust
import rocksdict
from aiokafka.errors import KafkaError as AIOKafkaError
from faust.exceptions import ConsistencyError
from kafka.errors import KafkaError

from infra.bootstrap import Container
from infra.kafka import ensure_topic
from infra.live_metrics import AppConfig, FinalStates, LiveMetricsApp
from infra.live_metrics_store import LiveMetricsStore
from infra.outage import TRANSIENT, Liveness, Outage
from infra.settings import Settings

log = logging.getLogger(__name__)
#: An app that ran this long before it stopped had recovered: the backoff starts over.
STABLE_AFTER_S = 30.0
TICK_S = 0.2
#: Where faust's RocksDB store keeps the changelog offset a table partition has read.
OFFSET_KEY = b"__faust\0offset__"


class AppStopped(Exception):
    """The faust app stopped or crashed without being asked to."""

    def __init__(self, reason: BaseException | None) -> None:
        super().__init__(f"the faust app stopped ({reason!r})" if reason else "the app stopped")
        self.reason = reason


class _Worker(faust.Worker):
    """A faust worker that leaves signals to the caller (which sets ``stop``) and logging
    to the CLI's configuration."""

    def install_signal_handlers(self) -> None:
        return None


def app_id(settings: Settings) -> str:
    """The consumer group and changelog prefix: one per topic."""
    return f"{settings.kafka_topic}-live-metrics"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class LiveMetricsWorker:
    """Runs fresh live-metrics apps one after the other until ``stop`` is set."""

    def __init__(self, container: Container) -> None:
        self.settings = container.settings
        self.store = LiveMetricsStore(container.pool)
        self.finals = FinalStates(container.case_types.definition)
        self.liveness = Liveness()  # see infra.outage.keep_running

    def run(self, stop: threading.Event) -> None:
        quiet_libraries()
        outage = Outage("live-metrics", log)
        with claimed_folder(self.settings.data_dir / "live-metrics") as datadir:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    partitions = ensure_topic(self.settings)
                    self._run_app(self._config(partitions, datadir), stop)
                except (*TRANSIENT, AIOKafkaError, AppStopped) as error:
                    if stop.is_set():
                        return
                    if isinstance(error, AppStopped) and isinstance(error.reason, ConsistencyError):
                        forget_changelog_offsets(datadir)
                    if time.monotonic() - started > STABLE_AFTER_S:
                        outage.recovered()
                    if not isinstance(error, TRANSIENT):  # said as the broker's outage
                        error = KafkaError(f"{type(error).__name__}: {error}")
                    stop.wait(outage.failed(error))

    def _config(self, partitions: int, datadir: Path) -> AppConfig:
        return AppConfig(
            app_id=app_id(self.settings),
            bootstrap_servers=self.settings.kafka_servers,
            topic=self.settings.kafka_topic,
            partitions=partitions,
            datadir=datadir,
            session_timeout_s=self.settings.kafka_session_timeout_ms / 1000,
            worker=worker_name(),
        )

    def _run_app(self, config: AppConfig, stop: threading.Event) -> None:
        live = LiveMetricsApp(config, self.store, self.finals)
        asyncio.run(self._serve(live, stop))

    async def _serve(self, live: LiveMetricsApp, stop: threading.Event) -> None:
        worker = _Worker(
            live.app,
            loop=asyncio.get_running_loop(),
            override_logging=False,
            redirect_stdouts=False,
            daemon=False,
            quiet=True,
        )
        await worker.start()
        try:
            while not stop.is_set():
                self.liveness.beat()
                if worker.should_stop or live.app.should_stop:
                    raise AppStopped(worker.crash_reason or live.app.crash_reason)
                await asyncio.sleep(TICK_S)
        finally:
            await worker.stop()


def quiet_libraries() -> None:
    """Faust logs every step of every rebalance and recovery at INFO, and aiokafka each
    failed reconnection at ERROR: keep their warnings (faust's crashes among them); the
    worker itself says when it starts counting partitions and when the broker fails it."""
    logging.getLogger("faust").setLevel(logging.WARNING)
    logging.getLogger("mode").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def forget_changelog_offsets(datadir: Path) -> None:
    """Make the local tables forget how far they read their changelogs.

    Faust refuses to start when a table recorded a changelog offset beyond the changelog's
    end: the broker lost the changelog (the embedded broker keeps nothing across a restart;
    a Kafka cluster whose topic was deleted). The local tables are then the only copy of
    the counts, so they are kept, and only the offsets they recorded are dropped: faust
    reads the new changelog from its start, and the counts go on from where they were."""
    for path in sorted(datadir.rglob("*.db")):
        if path.is_dir():
            table = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))
            try:
                table.delete(OFFSET_KEY)
            finally:
                table.close()
    log.warning(
        "the broker lost the live metrics' changelogs (it came back empty?): the counts go "
        "on from the local tables in %s, whose changelog offsets are reset",
        datadir,
    )


@contextmanager
def claimed_folder(base: Path) -> Iterator[Path]:
    """The first folder ``base/N`` that no other running worker holds, held (by an
    ``flock`` on its lock file) until the block ends."""
    base.mkdir(parents=True, exist_ok=True)
    for slot in range(1024):
        folder = base / str(slot)
        folder.mkdir(exist_ok=True)
        lock: IO[bytes] = open(folder / "worker.lock", "wb")  # noqa: SIM115 - held below
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        try:
            yield folder
        finally:
            lock.close()
        return
    raise RuntimeError(f"every folder under {base} is held by a running worker")
