"""The checkpointer: signs the event logs' Merkle roots every
CASELEDGER_AUDIT_CHECKPOINT_INTERVAL_S (when a log grew) and publishes them on the audit
topic, again later for any the broker did not take. Run it with
``caseledger audit-checkpoints`` (``caseledger up`` does); several may run: a checkpoint of
a log is made by one at a time."""

from __future__ import annotations

import logging
import threading

from infra.audit_ledger import CheckpointStore
from infra.outage import poll_forever

log = logging.getLogger("caseledger.audit-checkpoints")


class Checkpointer:
    """Checkpoints and publishes at every turn; an outage is waited out (``infra.outage``).
    No liveness watch: its turns may be further apart than a stall, and every broker call it
    makes has a timeout."""

    def __init__(self, store: CheckpointStore, interval_s: float) -> None:
        self.store = store
        self.interval_s = interval_s

    def turn(self) -> None:
        for made in self.store.checkpoint_and_publish():
            log.info("%s: checkpoint of %d events, root %s", made.log, made.size, made.root)

    def run(self, stop: threading.Event) -> None:
        poll_forever("audit-checkpoints", self.turn, self.interval_s, stop, log)
