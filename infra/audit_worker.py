"""The checkpointer: signs the event logs' Merkle roots every
CASELEDGER_AUDIT_CHECKPOINT_INTERVAL_S (when a log grew) and publishes them on the audit
topic, again later for any the broker did not take. Run it with
``caseledger audit-checkpoints`` (``caseledger up`` does); several may run: a checkpoint of
a log is made by one at a time.

Signing and publishing are two loops (two threads): signing needs only PostgreSQL and the
key, so a broker outage, whose calls can each take tens of seconds to fail, never stretches
the time between checkpoints (the window in which recent events are not yet signed). What
was signed meanwhile is published, oldest first, once the broker is back."""

from __future__ import annotations

import logging
import threading

from infra.audit_ledger import CheckpointStore
from infra.outage import poll_forever

log = logging.getLogger("caseledger.audit-checkpoints")
#: How long a stop waits for a publication under way (an unacknowledged one is sent again).
_JOIN_S = 2.0


class Checkpointer:
    """Checkpoints and publishes at every turn; an outage is waited out (``infra.outage``),
    by each loop on its own. No liveness watch: its turns may be further apart than a stall,
    and every broker call it makes has a timeout."""

    def __init__(self, store: CheckpointStore, interval_s: float) -> None:
        self.store = store
        self.interval_s = interval_s

    def sign(self) -> None:
        """Sign every log that grew since its last checkpoint (PostgreSQL only)."""
        for made in self.store.checkpoint_all():
            log.info("%s: checkpoint of %d events, root %s", made.log, made.size, made.root)

    def publish(self) -> None:
        """Publish every checkpoint the broker has not acknowledged yet."""
        if sent := self.store.publish_pending():
            log.info("published %d checkpoints on %s", sent, self.store.settings.audit_topic)

    def turn(self) -> None:
        """One of each, in order (what a single-threaded caller wants)."""
        self.sign()
        self.publish()

    def run(self, stop: threading.Event) -> None:
        done = threading.Event()  # the publisher's stop: set when the signing loop ends
        publisher = threading.Thread(
            target=poll_forever,
            args=("audit-checkpoints (publishing)", self.publish, self.interval_s, done, log),
            name="audit-checkpoints-publisher",
            daemon=True,
        )
        publisher.start()
        try:
            poll_forever("audit-checkpoints", self.sign, self.interval_s, stop, log)
        finally:
            done.set()
            publisher.join(_JOIN_S)
