"""The projection worker: consumes case-events and keeps the ``case_list`` view up to date.

Several workers may run in one consumer group; partitions are shared between them. Offsets
are committed only after the view change has been committed, and the view applies each case
version exactly once, so a crash or a redelivery changes nothing. When idle, the worker also
checks the event store for events the broker never delivered (a wiped broker) and applies
them. Run it with ``caseledger project``.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import KafkaConsumer
from kafka.errors import CommitFailedError, KafkaError

from domain.envelope import EventEnvelope
from infra.case_list_store import CaseListStore
from infra.kafka import new_consumer
from infra.relay import Relay
from infra.settings import Settings

log = logging.getLogger(__name__)


class ProjectionWorker:
    """Feeds the case-list view from the case-events topic, healing gaps from the store."""

    def __init__(self, settings: Settings, view: CaseListStore, relay: Relay) -> None:
        self.settings = settings
        self.view = view
        self.relay = relay

    def run(self, stop: threading.Event) -> None:
        consumer = self._connect(stop)
        if consumer is None:
            return
        last_message = time.monotonic()
        try:
            while not stop.is_set():
                if self._consume_once(consumer):
                    last_message = time.monotonic()
                elif time.monotonic() - last_message >= self.settings.projection_idle_sweep_s:
                    self._sweep()
        finally:
            consumer.close(autocommit=False)

    def _sweep(self) -> None:
        """While the topic is quiet, apply what the broker should have delivered but did not."""
        healed = self.view.catch_up_from_store(
            self.relay.position(), self.settings.projection_batch_size
        )
        if healed:
            log.info("applied %d events the broker did not deliver", healed)

    def _consume_once(self, consumer: KafkaConsumer) -> int:
        batches = consumer.poll(timeout_ms=500)
        events = [e for rs in batches.values() for r in rs if (e := _parse(r.value))]
        if not events:
            return 0
        self.view.apply_batch(events)
        try:
            consumer.commit()
        except (CommitFailedError, KafkaError) as error:
            # The view holds the change already; a redelivery will be skipped.
            log.warning("offset commit failed (%s); events may be redelivered", error)
        return len(events)

    def _connect(self, stop: threading.Event) -> KafkaConsumer | None:
        while not stop.is_set():
            try:
                return new_consumer(self.settings, self.settings.projection_group)
            except KafkaError as error:
                log.warning("broker unavailable (%s); retrying", error)
                stop.wait(1.0)
        return None


def _parse(raw: bytes) -> EventEnvelope | None:
    """The envelope in ``raw``; a message that is not one is logged and passed over."""
    try:
        return EventEnvelope.from_json(raw)
    except (ValueError, KeyError, TypeError) as error:
        log.error("passing over a message that is not a case event envelope: %s", error)
        return None
