"""Runs one connector: reads its source in batches, ingests them, then settles them and saves
its position, in that order, so that nothing is acknowledged before it is stored.

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
from collections.abc import Callable
from dataclasses import dataclass

from adapters.connectors import Access, Source, open_source
from infra.connector_store import ConnectorStore
from infra.outage import Outage
from services.connectors import Connector
from services.ingestion import Ingestor, RunReport

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


@dataclass
class IngestWorker:
    """Runs every loaded connector that caseledger reads itself (SQL, file, Kafka, AMQP),
    each in a thread of its own, and picks up connectors loaded (or changed) later, within
    :data:`RESCAN_S`. ``caseledger ingest`` runs it; ``caseledger up`` starts it."""

    connectors: ConnectorStore
    ingestor: Ingestor
    access: Access
    rescan_s: float = 5.0

    def run(self, stop: threading.Event) -> None:
        running: dict[str, tuple[int, threading.Event, threading.Thread]] = {}
        try:
            while not stop.is_set():
                for connector in self.connectors.all_current():
                    if not connector.polled and connector.kind not in ("kafka", "amqp"):
                        continue
                    known = running.get(connector.name)
                    if known is not None and known[0] == connector.version and known[2].is_alive():
                        continue
                    if known is not None:  # a new version: the old runner stops first
                        known[1].set()
                        known[2].join(30)
                    running[connector.name] = self._start(connector)
                stop.wait(self.rescan_s)
        finally:
            for _, halt, _thread in running.values():
                halt.set()
            for _, _, thread in running.values():
                thread.join(30)

    def _start(self, connector: Connector) -> tuple[int, threading.Event, threading.Thread]:
        halt = threading.Event()
        runner = ConnectorRunner(self.connectors, self.ingestor, self.access, connector.name)
        thread = threading.Thread(
            target=runner.run, args=(halt,), name=f"connector-{connector.name}", daemon=True
        )
        thread.start()
        log.info("connector %s v%s running", connector.name, connector.version)
        return connector.version, halt, thread
