"""The live-metrics faust app: an agent on the ``case-events`` topic keeps windowed tables of
cases opened, closed and SLA-breached per hour (tumbling one-hour windows on each event's
recorded time), per case type and queue, and the backlog of open cases, and writes the
figures that changed to PostgreSQL about once a second (``infra.live_metrics_store``),
where every API process reads them. Run it with ``caseledger live-metrics``
(``infra.live_metrics_worker``); several workers in one consumer group share the partitions.

Every table key starts with the topic partition of the events it counts: a faust table
writes each change to the changelog partition of the event that caused it, so a key
counted from two partitions would hold two unrelated values under one name. Keyed by
partition, each figure has one owner, moves with its partition, and readers add them up.

Counting is idempotent: the ``case-state`` table keeps, per case, the last case version
counted, and a redelivered event (a version already counted) changes nothing
(``infra.live_metrics_rules``). Faust's exactly-once mode needs Kafka transactions, which
the embedded broker lacks; tables are RocksDB (rocksdict) backed, as the memory store could
recover stale values after a restart on it (KAFKA_NOTES.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import faust
from faust.exceptions import PartitionsMismatch
from faust.tables.wrappers import WindowWrapper
from faust.types import TP, EventT, StreamT

from domain.definition import Definition
from domain.envelope import EventEnvelope
from domain.errors import DomainError
from infra.live_metrics_rules import (
    HOUR_S,
    METRICS,
    CaseState,
    Counted,
    count,
)
from infra.live_metrics_store import (
    KEEP_HOURS,
    BacklogKey,
    HourKey,
    LiveMetricsStore,
    WorkerReport,
)
from infra.outage import TRANSIENT, Outage

log = logging.getLogger(__name__)
PRUNE_EVERY_S = 600.0
_MOVED = ("CaseStatusChanged", "CaseMigrated")
CASE_STATE, BACKLOG = "case-state", "backlog"


def per_hour(metric: str) -> str:
    return f"{metric}-per-hour"


def changelog_topics(app_id: str) -> list[str]:
    """The changelog topic of every table of the app."""
    tables = [CASE_STATE, BACKLOG, *(per_hour(metric) for metric in METRICS)]
    return [f"{app_id}-{table}-changelog" for table in tables]


@dataclass(frozen=True)
class AppConfig:
    """What a live-metrics app needs to know of its surroundings."""

    app_id: str
    bootstrap_servers: list[str]
    topic: str
    partitions: int
    datadir: Path
    session_timeout_s: float
    worker: str
    flush_s: float = 1.0


@dataclass
class Figures:
    """The figures changed since the last write, and this worker's counters."""

    hourly: dict[HourKey, int] = field(default_factory=dict)
    backlog: dict[BacklogKey, int] = field(default_factory=dict)
    counted: int = 0
    skipped: int = 0

    def take(self) -> tuple[dict[HourKey, int], dict[BacklogKey, int]]:
        taken = self.hourly, self.backlog
        self.hourly, self.backlog = {}, {}
        return taken

    def put_back(self, hourly: dict[HourKey, int], backlog: dict[BacklogKey, int]) -> None:
        """Return figures whose write failed; those changed since are newer and stay."""
        self.hourly = {**hourly, **self.hourly}
        self.backlog = {**backlog, **self.backlog}

    def drop(self, partitions: set[int]) -> None:
        """Forget figures of partitions this worker no longer owns."""
        self.hourly = {k: v for k, v in self.hourly.items() if k[0] not in partitions}
        self.backlog = {k: v for k, v in self.backlog.items() if k[0] not in partitions}


class FinalStates:
    """Whether a status is final for a case type version, from its definition (published
    versions never change: each is looked up once)."""

    def __init__(self, definition: Callable[[str, int], Definition]) -> None:
        self._definition = definition
        self._known: dict[tuple[str, int], Definition | None] = {}

    async def learn(self, case_type: str, version: int) -> None:
        """Look the definition up (in a thread: it may read the database) unless known."""
        if (case_type, version) in self._known:
            return
        loop = asyncio.get_running_loop()
        try:
            found = await loop.run_in_executor(None, self._definition, case_type, version)
        except DomainError as error:  # not a published case type: only `closed` ends its cases
            log.warning("%s v%d: %s; only 'closed' is final", case_type, version, error.message)
            found = None
        self._known[(case_type, version)] = found

    def __call__(self, case_type: str, version: int, status: str) -> bool:
        definition = self._known.get((case_type, version))
        return definition.is_final(status) if definition else status == "closed"


def table_key(partition: int, case_type: str, queue: str) -> str:
    """A table key: JSON, so that no case type or queue name can be mistaken for another."""
    return json.dumps([partition, case_type, queue], separators=(",", ":"))


def read_key(key: str) -> tuple[int, str, str]:
    partition, case_type, queue = json.loads(key)
    return int(partition), str(case_type), str(queue)


class LiveMetricsApp:
    """One faust app: its topic, tables, agent and timers, and the figures it writes."""

    def __init__(self, config: AppConfig, store: LiveMetricsStore, finals: FinalStates) -> None:
        self.config = config
        self.store = store
        self.finals = finals
        self.figures = Figures()
        self.outage = Outage(f"live-metrics {config.worker}", log)
        self.last_pruned = 0.0
        self.app = _faust_app(config)
        self.topic = self.app.topic(
            config.topic, key_type=bytes, value_type=bytes, value_serializer="raw"
        )
        self.case_states = self.app.Table(CASE_STATE, partitions=config.partitions)
        self.backlog = self.app.Table(BACKLOG, default=int, partitions=config.partitions)
        self.hourly = {
            metric: self.app.Table(
                per_hour(metric), default=int, partitions=config.partitions
            ).tumbling(timedelta(seconds=HOUR_S), expires=timedelta(hours=KEEP_HOURS))
            for metric in METRICS
        }
        self.app.agent(self.topic, name="live-metrics-count")(self._count_stream)
        self.app.timer(config.flush_s, name="live-metrics-write")(self.write)
        # mode types its handlers with mypy_extensions arguments no method matches: Any.
        self.app.on_rebalance_complete.connect(cast(Any, self._on_rebalanced))
        self.app.on_partitions_revoked.connect(cast(Any, self._on_revoked))

    async def _count_stream(self, stream: StreamT[bytes]) -> None:
        try:
            async for event in stream.events():
                await self.count_event(event)
        except PartitionsMismatch as error:
            # A changelog the broker made itself, with its default partition count (after it
            # came back empty): the whole app stops, so that its worker repairs it.
            await self.app.crash(error)
            raise

    async def count_event(self, event: EventT[bytes]) -> None:
        """Apply one message of the topic to the tables."""
        envelope = _parse(event.value)
        if envelope is None:
            return
        if envelope.type in _MOVED:
            await self.finals.learn(envelope.case_type, envelope.case_type_version)
        raw = self.case_states.get(envelope.case_id)
        state = CaseState.from_json(raw) if raw else None
        counted = count(state, envelope, self.finals)
        if counted is None:
            self.figures.skipped += 1
            return
        self.case_states[envelope.case_id] = counted.state.as_json()
        self._add(event.message.partition, counted)
        self.figures.counted += 1

    def _add(self, partition: int, counted: Counted) -> None:
        for metric, case_type, queue in counted.hourly:
            windows = cast(WindowWrapper, self.hourly[metric]).relative_to(counted.hour)
            key = table_key(partition, case_type, queue)
            windows[key] += 1
            value = windows[key].value()
            self.figures.hourly[(partition, metric, counted.hour, case_type, queue)] = value
        for case_type, queue, delta in counted.backlog:
            key = table_key(partition, case_type, queue)
            self.backlog[key] += delta
            self.figures.backlog[(partition, case_type, queue)] = self.backlog[key]

    def owned_partitions(self) -> tuple[int, ...]:
        """The partitions of the topic this worker counts now."""
        actives = self.app.assignor.assigned_actives()
        return tuple(sorted(tp.partition for tp in actives if tp.topic == self.config.topic))

    async def write(self) -> None:
        """Write the figures that changed (and this worker's report) to PostgreSQL; in an
        outage keep them, and try again at the next tick."""
        hourly, backlog = self.figures.take()
        report = WorkerReport(
            self.config.worker,
            self.owned_partitions(),
            self.figures.counted,
            self.figures.skipped,
        )
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.store.write, hourly, backlog, report)
            if time.monotonic() - self.last_pruned > PRUNE_EVERY_S:
                await loop.run_in_executor(None, self.store.prune)
                self.last_pruned = time.monotonic()
        except TRANSIENT as error:
            self.figures.put_back(hourly, backlog)
            self.outage.failed(error)
            return
        self.outage.recovered()

    async def _on_rebalanced(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """After a rebalance (and the tables' recovery): rewrite every figure of the
        partitions this worker now owns, so that PostgreSQL holds what the changelog holds
        even for figures its previous owner had not written yet."""
        owned = set(self.owned_partitions())
        log.info(
            "%s counts partitions %s of %s", self.config.worker, sorted(owned), self.config.topic
        )
        oldest = time.time() - KEEP_HOURS * HOUR_S
        for metric, windows in self.hourly.items():
            for key, value in windows.table.data.items():
                (name, (start, _end)) = key
                partition, case_type, queue = read_key(name)
                if partition in owned and start >= oldest:
                    figure = (partition, metric, float(start), case_type, queue)
                    self.figures.hourly.setdefault(figure, int(value))
        for name, value in self.backlog.data.items():
            partition, case_type, queue = read_key(name)
            if partition in owned:
                self.figures.backlog.setdefault((partition, case_type, queue), int(value))

    async def _on_revoked(self, sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        lost = {tp.partition for tp in revoked if tp.topic == self.config.topic}
        if lost:
            self.figures.drop(lost)


def _faust_app(config: AppConfig) -> faust.App:
    """The faust app, set for a Kafka cluster and for the embedded broker's limits."""
    return faust.App(
        config.app_id,
        broker=";".join(f"kafka://{server}" for server in config.bootstrap_servers),
        store="rocksdb://",
        datadir=str(config.datadir),
        autodiscover=False,
        web_enabled=False,  # figures leave through PostgreSQL (see the module docstring)
        # No Kafka transactions on the embedded broker: idempotent counting instead.
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        # Joining a group takes about half the session timeout (45 s by default).
        broker_session_timeout=config.session_timeout_s,
        broker_heartbeat_interval=max(1.0, config.session_timeout_s / 3),
        table_standby_replicas=0,
        topic_replication_factor=1,
        topic_partitions=config.partitions,
        producer_acks=-1,
        worker_redirect_stdouts=False,
    )


def _parse(raw: bytes | None) -> EventEnvelope | None:
    """The envelope in ``raw``; a message that is not one is logged and passed over."""
    try:
        return EventEnvelope.from_json(raw or b"")
    except (ValueError, KeyError, TypeError) as error:
        log.error("passing over a message that is not a case event envelope: %s", error)
        return None
