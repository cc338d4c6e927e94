"""Ingesting source records into case history: exactly once, with lineage, bad records set aside.

Every inbound way (SQL polling, file drops, webhooks, Kafka topics, AMQP queues, the HTTP bulk
endpoint) hands batches of :class:`SourceRecord` to :meth:`Ingestor.ingest`, which for each:

1. maps it with its connector's mapping (``services.mapping``); a record that fails goes to the
   quarantine with its reason, its raw content and its lineage;
2. skips it if it is case history already: its dedup claim (connector, record id, content hash)
   is stored; a changed record hashes differently and is a new fact;
3. finds its case by external id (a claim per case type and silo) or opens one, sets fields,
   takes the transition to the state the record names, and lets the case type's rules react;
4. stores the events of the whole batch in one save, with every dedup and external-id claim in
   the same transaction (``infra.recorder``): a record redelivered after a crash finds its claim.

A poison record blocks only its own case: later records with the same external id are held in
the quarantine behind it, in order, and are replayed after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import uuid4

from services.application import CaseLedger
from services.connectors import Connector
from services.ingest_batch import ROLE, BatchIngestion, pushed_items
from services.ingest_records import (
    ClaimsPort,
    PushedRecord,
    QuarantineEntry,
    QuarantinePort,
    RecordOutcome,
    RunReport,
    SourceRecord,
    Verdict,
)

__all__ = [
    "ROLE", "ClaimsPort", "Ingestor", "PushedRecord", "QuarantineEntry", "QuarantinePort",
    "RecordOutcome", "RunReport", "SourceRecord", "Verdict",
]  # fmt: skip


class Ingestor:
    """Turns batches of source records into case history (see the module's docstring)."""

    def __init__(self, ledger: CaseLedger, claims: ClaimsPort, quarantine: QuarantinePort) -> None:
        self.ledger = ledger
        self.claims = claims
        self.quarantine = quarantine

    def ingest(
        self,
        connector: Connector,
        records: Sequence[SourceRecord],
        batch_id: str | None = None,
        report: RunReport | None = None,
        releasing: frozenset[str] = frozenset(),
    ) -> list[RecordOutcome]:
        """Ingest ``records`` in order; one outcome per record. Raises only when the store
        cannot be reached (then nothing of the unsaved part is stored: read it again).
        ``releasing``: cases whose quarantined records are being replayed (in order, in
        ``records``), which are then not held."""
        batch = batch_id or str(uuid4())
        batch_run = BatchIngestion(
            self.ledger, self.claims, self.quarantine, connector, batch,
            report.run_id if report else None,
        )  # fmt: skip
        blocked = self.quarantine.blocked(connector.name) - releasing
        outcomes = batch_run.run(batch_run.plan(records, blocked), len(records), blocked)
        batch_run.set_aside_now()
        if report is not None:
            report.count(outcomes)
        return outcomes

    def push(self, records: Sequence[PushedRecord], batch_id: str) -> list[RecordOutcome]:
        """Store records pushed over HTTP, each finding its case by external id (in its case
        type and silo) or opening one; a refused record gets its outcome "quarantined" with
        the reason, nothing is kept aside (the client has it), and the later records of its
        case in the batch are "held" (not stored: send them again after fixing it)."""
        batch_run = BatchIngestion(self.ledger, self.claims, self.quarantine, None, batch_id, None)
        return batch_run.run(pushed_items(records), len(records), set())
