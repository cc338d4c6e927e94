"""The relay (transactional outbox): publishes every stored case event to Kafka, in order.

It reads the event store's gap-free log after its saved position, sends each event keyed by
case id, waits until the broker has acknowledged the whole batch, and only then saves the
new position. A crash between the two re-sends the batch: delivery is at-least-once, and
consumers skip what they already applied. Run it with ``caseledger relay``.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from kafka import KafkaProducer
from kafka.errors import KafkaError
from psycopg import Connection
from psycopg.rows import DictRow
from psycopg.sql import SQL
from psycopg_pool import ConnectionPool

from infra.event_store import EventStoreReader
from infra.kafka import SEND_TIMEOUT_S, ensure_topic, new_producer
from infra.outage import Liveness
from infra.settings import Settings

log = logging.getLogger(__name__)
RELAY = "kafka"
_LEADER_LOCK = 7_110_002


class Relay:
    """Copies the event store's log to the case-events topic."""

    def __init__(
        self,
        settings: Settings,
        pool: ConnectionPool[Connection[DictRow]],
        reader: EventStoreReader,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.reader = reader
        self._producer: KafkaProducer | None = None
        #: Beats at every turn of ``run``: a relay stuck in a call that never returns is
        #: ended by ``infra.outage.keep_running`` so that its supervisor starts it again.
        self.liveness = Liveness()

    def position(self) -> int:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT position FROM relay_position WHERE relay = %s", (RELAY,)
            ).fetchone()
        return int(row["position"]) if row else 0

    def publish_next_batch(self) -> int:
        """Publish the next batch of stored events; returns how far the position moved
        (0 when caught up), which counts non-case events that were read and passed over."""
        after = self.position()
        envelopes, last = self.reader.read_log(after, self.settings.relay_batch_size)
        if last == after:
            return 0
        producer = self._ensure_producer()
        futures = [
            producer.send(self.settings.kafka_topic, key=e.case_id.encode(), value=e.to_json())
            for e in envelopes
        ]
        producer.flush(timeout=SEND_TIMEOUT_S)
        for future in futures:
            future.get(timeout=SEND_TIMEOUT_S)  # raises if the broker refused any of them
        self._save_position(last)
        return last - after

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set; wakes on the store's NOTIFY or every idle wait."""
        backoff = 0.5
        with self.pool.connection() as listener:
            listener.autocommit = True
            if not self._become_leader(listener, stop):
                return
            listener.execute(SQL("LISTEN {0}").format(self.reader.channel))
            try:
                while not stop.is_set():
                    self.liveness.beat()
                    try:
                        if self.publish_next_batch():
                            backoff = 0.5
                            continue
                    except KafkaError as error:
                        log.warning("broker error, recreating the producer: %s", error)
                        self._drop_producer()
                        stop.wait(backoff)
                        backoff = min(backoff * 2, 10.0)
                        continue
                    for _ in listener.notifies(
                        timeout=self.settings.relay_idle_wait_s, stop_after=1
                    ):
                        pass
            finally:  # the connection goes back to the pool: leave it holding nothing
                with contextlib.suppress(Exception):
                    listener.execute("UNLISTEN *")
                    listener.execute("SELECT pg_advisory_unlock(%s)", (_LEADER_LOCK,))
        self._drop_producer()

    def _become_leader(self, conn: Connection[DictRow], stop: threading.Event) -> bool:
        """Wait until no other relay runs: one publishes, the others stand by."""
        waited = False
        while not stop.is_set():
            self.liveness.beat()  # standing by is progress too
            row = conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (_LEADER_LOCK,)).fetchone()
            if row and row["ok"]:
                return True
            if not waited:
                log.info("another relay is publishing; standing by until it stops")
                waited = True
            stop.wait(1.0)
        return False

    def _ensure_producer(self) -> KafkaProducer:
        if self._producer is None:
            ensure_topic(self.settings)
            self._producer = new_producer(self.settings)
        return self._producer

    def close(self) -> None:
        self._drop_producer()

    def _drop_producer(self) -> None:
        # After a broker restart an idempotent producer fails every send until recreated.
        if self._producer is not None:
            with contextlib.suppress(KafkaError):
                self._producer.close(timeout=2)
            self._producer = None

    def _save_position(self, position: int) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO relay_position (relay, position) VALUES (%s, %s)"
                " ON CONFLICT (relay) DO UPDATE SET position = EXCLUDED.position,"
                " updated_at = now()",
                (RELAY, position),
            )
