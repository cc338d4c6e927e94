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
import contextlib
import fcntl
import gc
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import faust
import rocksdict
from aiokafka.errors import KafkaError as AIOKafkaError
from faust.exceptions import ConsistencyError, PartitionsMismatch
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from infra.bootstrap import Container
from infra.kafka import ensure_topic, topic_partitions
from infra.live_metrics import AppConfig, FinalStates, LiveMetricsApp, changelog_topics
from infra.live_metrics_store import LiveMetricsStore
from infra.outage import TRANSIENT, Liveness, Outage
from infra.settings import Settings

log = logging.getLogger(__name__)
#: An app that ran this long before it stopped had recovered: the backoff starts over.
STABLE_AFTER_S = 30.0
TICK_S = 0.2
#: Where faust's RocksDB store keeps the changelog offset a table partition has read.
OFFSET_KEY = b"__faust\0offset__"
_TABLE_FILE = re.compile(r"^(?P<table>.+)-(?P<partition>[0-9]+)\.db$")
#: A recovery of the tables that read nothing for this long is stuck (see RecoveryWatch).
RECOVERY_STALL_S = 30.0
_COMPACT = {"cleanup.policy": "compact"}


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
                    self._run_app(datadir, stop)
                    continue
                except (*TRANSIENT, AIOKafkaError, AppStopped) as error:
                    if stop.is_set():
                        return
                    if time.monotonic() - started > STABLE_AFTER_S:
                        outage.recovered()
                    lost = isinstance(error, AppStopped) and isinstance(error.reason, _LOST)
                    if not isinstance(error, TRANSIENT):  # said as the broker's outage
                        error = KafkaError(f"{type(error).__name__}: {error}")
                    pause = outage.failed(error)
                if lost:  # here, once the failed app and its open tables are let go
                    gc.collect()
                    adopt_local_tables(datadir, app_id(self.settings), self.settings)
                stop.wait(pause)

    def _run_app(self, datadir: Path, stop: threading.Event) -> None:
        partitions = ensure_topic(self.settings)
        if prepare_changelogs(self.settings, partitions):
            adopt_local_tables(datadir, app_id(self.settings), self.settings)
        live = LiveMetricsApp(self._config(partitions, datadir), self.store, self.finals)
        asyncio.run(self._serve(live, stop))

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
        recovery = RecoveryWatch()
        try:
            while not stop.is_set():
                self.liveness.beat()
                if worker.should_stop or live.app.should_stop:
                    raise AppStopped(worker.crash_reason or live.app.crash_reason)
                if recovery.stalled(live.app):
                    raise AppStopped(RecoveryStalled(f"no changelog read for {RECOVERY_STALL_S} s"))
                await asyncio.sleep(TICK_S)
        finally:
            await worker.stop()


def quiet_libraries() -> None:
    """Faust logs every step of every rebalance and recovery at INFO, and aiokafka each
    failed reconnection at ERROR: keep their warnings (faust's crashes among them); the
    worker itself says when it starts counting partitions and when the broker fails it."""
    logging.getLogger("faust").setLevel(logging.WARNING)
    logging.getLogger("mode").setLevel(logging.WARNING)
    # "producer buffer full" at every hundred changelog records a burst queues: back-pressure
    # on the agent while the broker takes them, not a fault.
    logging.getLogger("faust.transport.producer").setLevel(logging.ERROR)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


class RecoveryStalled(Exception):
    """Faust's recovery of the tables read nothing for ``RECOVERY_STALL_S``."""


#: What says that the broker lost the tables' changelogs.
_LOST = (ConsistencyError, RecoveryStalled, PartitionsMismatch)


class RecoveryWatch:
    """Notices a recovery of the tables that reads nothing: faust waits, without end, for
    changelog records up to the end offsets the broker reported, and the embedded broker
    can report offsets it then does not serve (after it came back empty)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.progress: int | None = None
        self.since = clock()

    def stalled(self, app: faust.App) -> bool:
        if not app.in_recovery:
            self.progress = None
            return False
        recovery = getattr(app.tables, "recovery", None)
        progress = sum(getattr(recovery, "active_offsets", {}).values())
        if progress != self.progress:
            self.progress, self.since = progress, self.clock()
            return False
        return self.clock() - self.since > RECOVERY_STALL_S


def adopt_local_tables(datadir: Path, group: str, settings: Settings) -> None:
    """Take the local tables as they are, and have them start reading their changelogs at
    the changelogs' current ends.

    Faust refuses tables that recorded a changelog offset beyond the changelog's end, and
    waits for ever for records up to an end offset the broker reported but does not serve.
    Both happen when the broker lost the changelogs (the embedded broker keeps nothing
    across a restart; a Kafka cluster whose topics were deleted). The local tables are then
    the only copy of the counts: they are kept, and the counts go on from where they were."""
    tables = _table_files(datadir, group)
    ends = _end_offsets(settings, set(tables.values()))
    for path, partition in tables.items():
        try:
            table = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))
        except Exception as error:  # noqa: BLE001 - rocksdict raises only Exception
            log.warning("could not open %s (%s); faust will say what it finds there", path, error)
            continue
        try:
            end = ends.get(partition)
            if end:
                table.put(OFFSET_KEY, str(end - 1).encode())  # read through to the end
            else:
                table.delete(OFFSET_KEY)
        finally:
            table.close()
    log.warning(
        "the broker lost the live metrics' changelogs (it came back empty?): the counts go "
        "on from the local tables in %s",
        datadir,
    )


def prepare_changelogs(settings: Settings, partitions: int) -> list[str]:
    """Create the tables' changelog topics with the partitions of the case-events topic, as
    faust needs them, and make again those that have another count: a broker that came back
    empty creates a topic on the first write to it, with its own default count. Answers
    the topics made again (their records are lost)."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_servers, request_timeout_ms=10_000)
    remade = []
    try:
        for topic in changelog_topics(app_id(settings)):
            found = topic_partitions(admin, topic)
            if found not in (None, partitions):
                admin.delete_topics([topic])
                _wait_gone(admin, topic)
                remade.append(topic)
            if found != partitions:
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=_COMPACT)])
    finally:
        admin.close()
    if remade:
        log.warning(
            "made again changelogs the broker had made with another partition count: %s",
            ", ".join(remade),
        )
    return remade


def _wait_gone(admin: KafkaAdminClient, topic: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while topic_partitions(admin, topic) is not None and time.monotonic() < deadline:
        time.sleep(0.2)


def _table_files(datadir: Path, group: str) -> dict[Path, TopicPartition]:
    """Each table partition's RocksDB folder (``<table>-<partition>.db``), with the
    changelog partition it records."""
    found = {}
    for path in datadir.rglob("*.db"):
        named = _TABLE_FILE.match(path.name)
        if path.is_dir() and named:
            topic = f"{group}-{named['table']}-changelog"
            found[path] = TopicPartition(topic, int(named["partition"]))
    return found


def _end_offsets(settings: Settings, partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
    """The changelogs' end offsets; none when the broker cannot say."""
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_servers, request_timeout_ms=10_000
        )
    except (KafkaError, OSError):
        return {}
    try:
        ends: dict[TopicPartition, int] = consumer.end_offsets(sorted(partitions))
        return ends
    except (KafkaError, OSError):
        return {}
    finally:
        consumer.close()


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
