"""Administering connectors, the one place the CLI and the HTTP API share: check and load
connector documents, list them, report on their runs and quarantine, replay quarantined
records once the mapping (or the case type) is fixed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from domain.definition import Definition
from services.connectors import Connector, connector_problems
from services.errors import CaseTypeNotFound
from services.ingestion import Ingestor, RecordOutcome, RunReport, SourceRecord

_DONE = ("ingested", "duplicate")


class ConnectorNotFound(CaseTypeNotFound):
    """No connector has that name (or that version); answered 404."""

    code = "connector_not_found"


class ConnectorCatalog(Protocol):
    """Connector versions, positions and run reports (``infra.connector_store``)."""

    def load(self, document: dict[str, Any], loaded_by: str) -> tuple[Connector, bool]: ...

    def current(self, name: str) -> Connector: ...

    def listing(self) -> list[dict[str, Any]]: ...

    def runs(self, connector: str, limit: int = 20) -> list[dict[str, Any]]: ...

    def position(self, connector: str) -> Any: ...

    def save_run(
        self, report: RunReport, *, finished: bool = False, error: str | None = None
    ) -> None: ...


class QuarantineBook(Protocol):
    """Records set aside (``infra.quarantine_store``)."""

    def waiting(
        self, connector: str | None = None, ids: Sequence[int] | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]: ...

    def settle(self, entry_ids: Sequence[int]) -> None: ...

    def still_waiting(self, reasons: Sequence[tuple[int, str, bool]]) -> None: ...


@dataclass(frozen=True)
class ConnectorStatus:
    """A connector's current version, where it has read up to, its recent runs."""

    connector: Connector
    position: Any
    runs: list[dict[str, Any]]
    waiting: int


@dataclass
class ConnectorAdmin:
    """The connector use cases (see the module's docstring)."""

    catalog: ConnectorCatalog
    quarantine: QuarantineBook
    ingestor: Ingestor
    case_type: Callable[[str], Definition]

    def problems(self, document: Any) -> list[str]:
        """Every problem of ``document``, by path (``[]``: it can be loaded)."""
        return connector_problems(document, self.case_type)

    def load(self, document: dict[str, Any], loaded_by: str) -> tuple[Connector, bool]:
        """Load ``document`` as its connector's next version (unless it is current)."""
        return self.catalog.load(document, loaded_by)

    def status(self, name: str, runs: int = 5) -> ConnectorStatus:
        connector = self.catalog.current(name)
        return ConnectorStatus(
            connector,
            self.catalog.position(name),
            self.catalog.runs(name, runs),
            len(self.quarantine.waiting(name)),
        )

    def replay(
        self, name: str, entry_ids: Sequence[int] | None = None
    ) -> tuple[RunReport, list[RecordOutcome]]:
        """Ingest quarantined records of connector ``name`` again, with its current version:
        the chosen entries (all by default), each with every entry waiting for the same case,
        in the order they arrived. Those ingested (or found to be case history already) are
        settled; one that fails again keeps waiting, with its new reason. A crash before
        they are settled replays them again later, as duplicates."""
        connector = self.catalog.current(name)
        chosen = self.quarantine.waiting(name, entry_ids)
        keys = {e["external_id"] for e in chosen if e["external_id"] is not None}
        entries = {e["id"]: e for e in chosen}
        for entry in self.quarantine.waiting(name):
            if entry["external_id"] in keys:
                entries.setdefault(entry["id"], entry)
        ordered = [entries[i] for i in sorted(entries)]
        report = RunReport(connector.name, connector.version)
        if not ordered:
            return report, []
        outcomes = self.ingestor.ingest(
            connector,
            [_record(entry) for entry in ordered],
            f"replay:{report.run_id}",
            report,
            releasing=frozenset(keys),
        )
        done = [e["id"] for e, o in zip(ordered, outcomes, strict=True) if o.verdict in _DONE]
        self.quarantine.settle(done)
        self.quarantine.still_waiting([
            (e["id"], o.reason or "", o.verdict == "held")
            for e, o in zip(ordered, outcomes, strict=True)
            if o.verdict not in _DONE
        ])  # fmt: skip
        report.replayed = len(done)
        self.catalog.save_run(report, finished=True)
        return report, outcomes


def _record(entry: dict[str, Any]) -> SourceRecord:
    problem = None if entry["record"] is not None else entry["reason"]
    return SourceRecord(entry["record"], entry["position"], entry["raw"], problem)
