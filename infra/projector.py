"""The projection worker: consumes case-events and keeps every projection up to date.

Several workers may run in one consumer group; partitions are shared between them. Each
batch goes to every projection (``infra.projection_set``); offsets are committed only after
all of them have committed it, and each applies a case version exactly once, so a crash or a
redelivery changes nothing. When idle, the worker also
checks the event store for events the broker never delivered (a wiped broker) and applies
them, up to the store's head: while the broker is away the view still follows the store.
PostgreSQL failures end ``run`` and ``caseledger project`` starts it again (``infra.outage``);
the consumer then resumes from its committed offsets. Run it with ``caseledger project``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import orjson
from kafka import KafkaConsumer
from kafka.errors import CommitFailedError, KafkaError

from domain.envelope import EventEnvelope
from infra.kafka import ensure_topic, new_consumer
from infra.outage import Liveness, Outage
from infra.projection_rebuild import Rebuilder, RebuildRunning
from infra.projection_set import ProjectionSet
from infra.projection_tables import needs_rebuild
from infra.settings import Settings

log = logging.getLogger(__name__)


class ProjectionWorker:
    """Feeds the projections from the case-events topic, healing gaps from the store."""

    def __init__(self, settings: Settings, view: ProjectionSet) -> None:
        self.settings = settings
        self.view = view
        self.liveness = Liveness()  # see infra.outage.keep_running

    def run(self, stop: threading.Event) -> None:
        self._rebuild_outdated()
        consumer: KafkaConsumer | None = None
        broker = Outage("projector", log)
        last_message = time.monotonic()
        try:
            while not stop.is_set():
                self.liveness.beat()
                if consumer is None:
                    consumer = self._connect(broker)
                if consumer is not None and self._consume_once(consumer):
                    last_message = time.monotonic()
                    continue
                if time.monotonic() - last_message >= self.settings.projection_idle_sweep_s:
                    self._sweep()
                if consumer is None:
                    stop.wait(min(1.0, self.settings.projection_idle_sweep_s))
        finally:
            if consumer is not None:
                consumer.close(autocommit=False)

    def _rebuild_outdated(self) -> None:
        """Rebuild, beside the live tables, each projection whose tables an older version of
        caseledger built (new columns, another fold): queries go on meanwhile, and the live
        tables are swapped for the new ones when it is done. Another worker rebuilding the
        same projection is left to it."""
        for name, runner in self.view.runners.items():
            with self.view.pool.connection() as conn:
                outdated = needs_rebuild(conn, runner.gen)
            if not outdated:
                continue
            log.warning("the %s tables were built by another version: rebuilding them", name)
            rebuilder = Rebuilder(
                runner, self.view.after_swap, self.settings.projection_rebuild_chunk
            )
            try:
                report = rebuilder.rebuild(_log_progress(name))
            except RebuildRunning:
                log.info("another process is rebuilding %s", name)
                continue
            log.info("%s rebuilt: %d events applied, swapped in", name, report.applied)

    def _sweep(self) -> None:
        """While the topic is quiet (or the broker away), apply from the store what the view
        lacks: events the broker lost, never delivered, or has not been sent yet."""
        healed = self.view.catch_up_from_store(
            self.view.reader.head(), self.settings.projection_batch_size
        )
        if healed:
            log.info("applied %d events from the event store", healed)

    def _consume_once(self, consumer: KafkaConsumer) -> int:
        batches = consumer.poll(timeout_ms=500)
        events = [e for rs in batches.values() for r in rs if (e := parse(r.value))]
        if not events:
            return 0
        self.view.apply_batch(events)
        try:
            consumer.commit()
        except (CommitFailedError, KafkaError) as error:
            # The view holds the change already; a redelivery will be skipped.
            log.warning("offset commit failed (%s); events may be redelivered", error)
        return len(events)

    def _connect(self, broker: Outage) -> KafkaConsumer | None:
        """A consumer of the topic (created with the configured partitions if missing), or
        None while the broker is away: the caller sweeps the store meanwhile."""
        try:
            ensure_topic(self.settings)
            consumer = new_consumer(self.settings, self.settings.projection_group)
        except (KafkaError, OSError) as error:
            broker.failed(error)
            return None
        broker.recovered()
        return consumer


def _log_progress(name: str) -> Callable[[int, int], None]:
    """Log a rebuild's progress about every tenth of the way."""
    logged = [0]

    def show(position: int, head: int) -> None:
        if head and position * 10 // head > logged[0]:
            logged[0] = position * 10 // head
            log.info("rebuilding %s: position %d of %d", name, position, head)

    return show


def parse(raw: bytes) -> EventEnvelope | None:
    """The envelope in ``raw``; a message that is not one is logged and passed over. Read
    with orjson, about three times faster than the standard library, which still reads
    what orjson cannot (integers beyond 64 bits, which the relay writes the standard way)."""
    try:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return EventEnvelope.from_json(raw)
        return EventEnvelope.from_body(body)
    except (ValueError, KeyError, TypeError) as error:
        log.error("passing over a message that is not a case event envelope: %s", error)
        return None
