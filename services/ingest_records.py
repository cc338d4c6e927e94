"""The records and outcomes of the ingestion (``services.ingestion``), and the ports it
writes through: what a connector reads, what becomes of each record, the quarantine, the
claims, and the reconciliation of a run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from uuid import uuid4

from domain.context import CommandContext
from services.idempotency import Claim, Outcome
from services.mapping import MappedRecord

Verdict = Literal["ingested", "duplicate", "quarantined", "held"]


@dataclass(frozen=True)
class SourceRecord:
    """One record as a connector read it: its content (``None`` when it could not be read,
    then ``raw`` and ``problem`` say what and why) and where it was read."""

    data: Mapping[str, Any] | None
    position: str | None = None
    raw: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class RecordOutcome:
    """What became of one record."""

    verdict: Verdict
    record_id: str | None = None
    case_id: str | None = None
    version: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class QuarantineEntry:
    """A record set aside, with everything needed to replay it."""

    connector: str
    connector_version: int
    record_id: str | None
    external_id: str | None
    record: Mapping[str, Any] | None
    raw: str | None
    reason: str
    held: bool  # waits behind an earlier quarantined record of the same case
    position: str | None
    batch_id: str
    run_id: str | None


class QuarantinePort(Protocol):
    """Where set-aside records are kept (``infra.quarantine_store``)."""

    def add(self, entries: Sequence[QuarantineEntry]) -> list[int]: ...

    def blocked(self, connector: str) -> set[str]: ...


class ClaimsPort(Protocol):
    """Which claims are stored (``infra.idempotency``)."""

    def claimed(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Outcome]: ...


@dataclass
class RunReport:
    """The reconciliation of one run of a connector: every record seen is accounted for."""

    connector: str
    connector_version: int
    run_id: str = field(default_factory=lambda: str(uuid4()))
    seen: int = 0
    ingested: int = 0
    duplicates: int = 0
    quarantined: int = 0
    replayed: int = 0

    def count(self, outcomes: Sequence[RecordOutcome]) -> None:
        self.seen += len(outcomes)
        for outcome in outcomes:
            if outcome.verdict == "ingested":
                self.ingested += 1
            elif outcome.verdict == "duplicate":
                self.duplicates += 1
            else:
                self.quarantined += 1

    @property
    def adds_up(self) -> bool:
        return self.seen == self.ingested + self.duplicates + self.quarantined


@dataclass(frozen=True)
class PushedRecord:
    """A record pushed over HTTP, in case terms already (no mapping): the bulk endpoint's."""

    case_type: str
    external_id: str | None
    system: str | None
    record: MappedRecord
    context: CommandContext
    dedup: Claim | None
