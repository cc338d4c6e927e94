"""The relay (transactional outbox): publishes every stored case event to Kafka, in order.

It reads the event store's gap-free log after its saved position and sends each event keyed
by case id, with headers naming its type and schema version (``services.contract``). While
the broker acknowledges one batch, the relay already reads and sends the next ones (at most
``IN_FLIGHT_BATCHES`` at a time); it saves a position only once the broker has acknowledged
every message up to it. A crash re-sends what was not saved: delivery is at-least-once, and
consumers skip what they already applied. Run it with ``caseledger relay``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from operator import itemgetter
from typing import Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError
from psycopg import Connection
from psycopg.rows import DictRow
from psycopg.sql import SQL
from psycopg_pool import ConnectionPool

from infra.event_store import EventStoreReader, Message
from infra.kafka import SEND_TIMEOUT_S, ensure_topic, new_producer, partition_for
from infra.outage import Liveness
from infra.settings import Settings

log = logging.getLogger(__name__)
RELAY = "kafka"
_LEADER_LOCK = 7_110_002
#: Batches sent but not yet acknowledged while the next one is read: two overlap the store's
#: read with the broker's answer; three or four measured no faster (they only queue in the
#: producer).
IN_FLIGHT_BATCHES = 2


class Acknowledgement(Protocol):
    """What the producer answers for each message sent (kafka-python's future of a send)."""

    def get(self, timeout: float | None = None) -> object: ...


class InFlight:
    """The batches sent to the broker and not yet settled, oldest first.

    A batch's position is saved only once the broker has acknowledged every message of that
    batch and of every batch before it, so a crash can re-send but never skip an event.
    """

    def __init__(
        self, saved: int, save: Callable[[int], None], timeout_s: float = SEND_TIMEOUT_S
    ) -> None:
        #: The position saved last: everything up to it was acknowledged.
        self.saved = saved
        self._save = save
        self._timeout_s = timeout_s
        self._batches: deque[tuple[int, list[Acknowledgement]]] = deque()

    def __len__(self) -> int:
        return len(self._batches)

    def add(self, last: int, sent: list[Acknowledgement]) -> None:
        """Track a batch whose newest event is at position ``last``."""
        self._batches.append((last, sent))

    def settle(self, keep: int = 0) -> None:
        """Wait, oldest first, until at most ``keep`` batches are unacknowledged, and save
        the position of the newest batch acknowledged whole. Raises the broker's error (a
        refusal, or no answer within the timeout) once it saved the batches before it."""
        acknowledged = self.saved
        try:
            while len(self._batches) > keep:
                last, sent = self._batches[0]
                deadline = time.monotonic() + self._timeout_s
                for answer in sent:
                    answer.get(timeout=max(deadline - time.monotonic(), 0.001))
                self._batches.popleft()
                acknowledged = last
        finally:
            if acknowledged != self.saved:
                self._save(acknowledged)
                self.saved = acknowledged


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
        """Publish the next batch of stored events and wait for its acknowledgement; returns
        how far the position moved (0 when caught up), which counts non-case events that
        were read and passed over."""
        return self.publish_available(max_batches=1)

    def publish_available(
        self, stop: threading.Event | None = None, max_batches: int | None = None
    ) -> int:
        """Publish what is stored, batch after batch, until caught up (or ``stop`` is set, or
        ``max_batches`` were read); returns how far the saved position moved.

        While the broker acknowledges a batch, the relay reads and sends the next one (at
        most ``IN_FLIGHT_BATCHES`` unacknowledged); see :class:`InFlight` for when it saves
        a position. Every batch sent is settled before it returns."""
        start = read_up_to = self.position()
        in_flight = InFlight(start, self._save_position)
        batches = 0
        while not (stop is not None and stop.is_set()) and batches != max_batches:
            self.liveness.beat()
            messages, last = self.reader.read_messages(read_up_to, self.settings.relay_batch_size)
            if last == read_up_to:
                break
            in_flight.add(last, self._send(messages))
            read_up_to, batches = last, batches + 1
            in_flight.settle(keep=IN_FLIGHT_BATCHES - 1)
        if len(in_flight) and self._producer is not None:
            self._producer.flush(timeout=SEND_TIMEOUT_S)  # the last need not wait out linger_ms
        in_flight.settle()
        return in_flight.saved - start

    def _send(self, messages: list[Message]) -> list[Acknowledgement]:
        """Send a batch partition by partition, each partition's messages in their order:
        the topic gets what sending in store order gives (per-partition order is all Kafka
        keeps), in partition batches about three times fuller (31 KB against 9 KB, measured
        with batches of 500), so the producer wakes its sender and makes requests less often."""
        producer = self._ensure_producer()
        topic = self.settings.kafka_topic
        count = len(producer.partitions_for(topic))
        placed = sorted(
            ((partition_for(key, count), key, value, headers) for key, value, headers in messages),
            key=itemgetter(0),  # a stable sort: each partition keeps the store's order
        )
        return [
            producer.send(topic, key=k, value=v, headers=h, partition=p) for p, k, v, h in placed
        ]

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
                        if self.publish_available(stop):
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
