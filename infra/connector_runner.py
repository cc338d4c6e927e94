"""Runs one connector: reads its source in batches, ingests them, then settles them and saves
its position, in that order, so that nothing is acknowledged before it is stored; replays its
quarantined records.

    caseledger connectors run claims_db            # until SIGINT / SIGTERM
    caseledger connectors run claims_db --once     # until the source has nothing new

A failure of the source, PostgreSQL or the broker is logged once and waited out with backoff;
the source is opened again where its saved position says. Each run keeps its reconciliation
report in ``connector_runs`` (``caseledger connectors status NAME``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.connectors import Access, Source, open_source
from infra.connector_store import ConnectorStore
from infra.outage import Outage
from infra.quarantine_store import QuarantineStore
from services.connectors import Connector
from services.ingestion import Ingestor, RecordOutcome, RunReport, SourceRecord

log = logging.getLogger("caseledger.connectors")
BATCH = 1000
Progress = Callable[[RunReport], None]


@dataclass
class ConnectorRunner:
    """One connector's loop (see the module's docstring)."""

    connectors: ConnectorStore
    ingestor: Ingestor
    access: Access
    name: str
    batch_size: int = BATCH
    progress: Progress | None = None

    def run(self, stop: threading.Event, *, once: bool = False) -> RunReport:
        """Ingest until ``stop`` is set (or, with ``once``, until nothing is new); answers the
        run's report."""
        connector = self.connectors.current(self.name)
        report = RunReport(connector.name, connector.version)
        self.connectors.save_run(report)
        outage = Outage(f"connector {self.name}", log)
        source: Source | None = None
        error: str | None = None
        try:
            while not stop.is_set():
                try:
                    if source is None:
                        source = open_source(
                            connector, self.connectors.position(self.name), self.access
                        )
                    if not self._one_batch(connector, source, report):
                        if once:
                            break
                        stop.wait(connector.every.total_seconds())
                    outage.recovered()
                    error = None
                except Exception as failure:  # the source, PostgreSQL or the broker is away
                    error = f"{type(failure).__name__}: {failure}"
                    if source is not None:
                        with contextlib.suppress(Exception):
                            source.close()
                    source = None
                    with contextlib.suppress(Exception):
                        self.connectors.save_run(report, error=error)
                    if once and outage.attempts >= 3:
                        raise
                    stop.wait(outage.failed(failure))
        finally:
            if source is not None:
                with contextlib.suppress(Exception):
                    source.close()
            with contextlib.suppress(Exception):
                self.connectors.save_run(report, finished=True, error=error)
        return report

    def _one_batch(self, connector: Connector, source: Source, report: RunReport) -> bool:
        """Read, store, settle and advance one batch; False when there was nothing new."""
        batch = source.next_batch(self.batch_size)
        if batch is None or not batch.records:
            return False
        outcomes = self.ingestor.ingest(connector, batch.records, batch.batch_id, report)
        batch.settle(outcomes)
        if batch.position is not None:
            self.connectors.save_position(connector.name, batch.position)
        self.connectors.save_run(report)
        if self.progress is not None:
            self.progress(report)
        return True


def replay(
    connectors: ConnectorStore,
    quarantine: QuarantineStore,
    ingestor: Ingestor,
    name: str,
    entry_ids: Sequence[int] | None = None,
) -> tuple[RunReport, list[RecordOutcome]]:
    """Ingest quarantined records of connector ``name`` again, with its current version
    (after the mapping or the case type was fixed): the chosen entries, each with every
    entry waiting for the same case, in the order they arrived. An entry that fails again is
    quarantined again (a new entry); the replayed ones are settled."""
    connector = connectors.current(name)
    chosen = quarantine.waiting(name, entry_ids)
    keys = {e["external_id"] for e in chosen if e["external_id"] is not None}
    entries = {e["id"]: e for e in chosen}
    for entry in quarantine.waiting(name):
        if entry["external_id"] in keys:
            entries.setdefault(entry["id"], entry)
    ordered = [entries[i] for i in sorted(entries)]
    report = RunReport(connector.name, connector.version)
    if not ordered:
        return report, []
    records = [_record(entry) for entry in ordered]
    outcomes = ingestor.ingest(
        connector, records, f"replay:{report.run_id}", report, releasing=frozenset(keys)
    )
    quarantine.settle([entry["id"] for entry in ordered])
    report.replayed = sum(1 for o in outcomes if o.verdict in ("ingested", "duplicate"))
    connectors.save_run(report, finished=True)
    return report, outcomes


def _record(entry: dict[str, Any]) -> SourceRecord:
    problem = None if entry["record"] is not None else entry["reason"]
    return SourceRecord(entry["record"], entry["position"], entry["raw"], problem)
