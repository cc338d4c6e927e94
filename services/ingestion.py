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

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from domain.case import Case
from domain.context import CommandContext, Lineage
from domain.definition import Definition
from domain.errors import DomainError, InvalidTransition
from domain.rules import RuleRun, facts, react
from services.application import CaseLedger
from services.connectors import Connector
from services.errors import RequestReplayed, SaveTooLarge
from services.expressions import MappingError
from services.idempotency import Claim, Outcome, claiming
from services.mapping import MappedRecord, content_hash

log = logging.getLogger(__name__)
ROLE = "integrator"
_SAVE_EVENTS = 900  # a batch is stored in saves of about this many events (at most 1,000)
_ATTEMPTS = 5

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


@dataclass
class _Planned:
    index: int
    record: SourceRecord
    mapped: MappedRecord
    dedup: Claim | None
    case_type: str
    system: str
    context: CommandContext | None = None  # None: built from the connector's lineage

    @property
    def group(self) -> tuple[str, str, str]:
        """The case the record is about: its external id in its case type and silo, or a
        key of its own when it names none (it opens a case)."""
        if self.mapped.external_id:
            return (self.case_type, self.system, self.mapped.external_id)
        return ("", "", f"record {self.index}")

    @property
    def scope(self) -> str:
        """The scope of its case's external-id claim."""
        return f"case:{self.case_type}:{self.system}"


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
        batch_run = _Batch(self, connector, batch, report.run_id if report else None)
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
        batch_run = _Batch(self, None, batch_id, None)
        planned = [
            _Planned(
                index, SourceRecord(None), item.record, item.dedup, item.case_type,
                item.system or "", item.context,
            )
            for index, item in enumerate(records)
        ]  # fmt: skip
        return batch_run.run(planned, len(records), set())


class _Batch:
    """The work of one :meth:`Ingestor.ingest` call."""

    def __init__(
        self, ingestor: Ingestor, connector: Connector | None, batch: str, run: str | None
    ) -> None:
        self.ledger, self.claims = ingestor.ledger, ingestor.claims
        self.quarantine = ingestor.quarantine
        self.connector, self.batch, self.run_id = connector, batch, run
        self.read_at = self.ledger.clock()
        self.outcomes: dict[int, RecordOutcome] = {}
        self.set_aside: list[tuple[int, QuarantineEntry]] = []
        self._definitions: dict[str, Definition] = {}

    def run(self, planned: list[_Planned], count: int, blocked: set[str]) -> list[RecordOutcome]:
        groups: dict[tuple[str, str, str], list[_Planned]] = {}
        for item in planned:
            groups.setdefault(item.group, []).append(item)
        known = self.claims.claimed(_pairs(list(groups.values())))  # one lookup per batch
        for chunk in _chunks(list(groups.values())):
            self._store(chunk, blocked, known)
        return [self.outcomes[i] for i in range(count)]

    # -- mapping -------------------------------------------------------------------------

    def plan(self, records: Sequence[SourceRecord], blocked: set[str]) -> list[_Planned]:
        """Map a connector's records; those that fail or wait are set aside."""
        assert self.connector is not None
        connector, planned = self.connector, []
        mapping = connector.mapping
        for index, record in enumerate(records):
            if record.data is None:
                self._aside(index, record, None, None, record.problem or "unreadable")
                continue
            try:
                key: str | None = mapping.key_of(record.data)
            except MappingError:
                key = None
            if key is not None and key in blocked:
                self._aside(index, record, None, key, _behind(key), held=True)
                continue
            try:
                mapped = mapping.apply(record.data)
            except MappingError as error:
                self._aside(index, record, None, key, str(error))
                if key is not None:
                    blocked.add(key)
                continue
            digest = content_hash(record.data)
            dedup = Claim(
                f"ingest:{connector.name}", f"{mapped.record_id}#{digest}", digest, kept=True
            )
            planned.append(
                _Planned(index, record, mapped, dedup, mapping.case_type, connector.system)
            )
        return planned

    # -- storing -------------------------------------------------------------------------

    def _store(
        self,
        groups: list[list[_Planned]],
        blocked: set[str],
        known: Mapping[tuple[str, str], Outcome],
    ) -> None:
        """Store a chunk of case groups in one save, with the claims ``known`` before the
        batch; when it loses a race (another process stored one of its records or cases
        meanwhile), each group again on its own, looking its claims up again."""
        try:
            self._attempt(groups, blocked, known)
        except SaveTooLarge as error:
            if len(groups) == 1:  # one case's records alone are too much: set them aside
                self._refuse_group(groups[0], blocked, f"{error.message} ({error.hint})")
                return
            half = len(groups) // 2  # the case type's rules make more events than guessed
            self._store(groups[:half], blocked, known)
            self._store(groups[half:], blocked, known)
        except (IntegrityError, RequestReplayed):
            for group in groups:
                for attempt in range(1, _ATTEMPTS + 1):
                    try:
                        self._attempt([group], blocked)
                        break
                    except (IntegrityError, RequestReplayed):
                        if attempt == _ATTEMPTS:
                            raise

    def _attempt(
        self,
        groups: list[list[_Planned]],
        blocked: set[str],
        known: Mapping[tuple[str, str], Outcome] | None = None,
    ) -> None:
        if known is None:
            known = self.claims.claimed(_pairs(groups))
        saved: list[Case] = []
        claims: list[Claim] = []
        outcomes: dict[int, RecordOutcome] = {}
        aside: list[tuple[int, QuarantineEntry]] = []
        for group in groups:
            found = known.get((group[0].scope, group[0].mapped.external_id))
            case_id = UUID(found.case_id) if found and found.case_id else None
            result = self._apply_group(group, case_id, known)
            outcomes |= result.outcomes
            aside += result.aside
            if result.case is not None and result.case.pending_events:
                saved += [result.case, *result.children]
                claims += result.claims
        if saved:
            with claiming(*claims):
                self.ledger.save(*saved)
        self.outcomes |= outcomes
        for index, entry in aside:
            if entry.external_id is not None:
                blocked.add(entry.external_id)
            self.set_aside.append((index, entry))

    def _apply_group(
        self, group: list[_Planned], case_id: UUID | None, known: Mapping[tuple[str, str], Outcome]
    ) -> _GroupResult:
        """Apply a case's records in order on one copy of the case. A record the case refuses
        is set aside, the records after it are held behind it, and the case is built again
        from the records before it (so none of the refused one's events remain)."""
        result = _GroupResult()
        todo = []
        seen: set[str] = set()
        for item in group:
            dedup = item.dedup
            first = known.get((dedup.scope, dedup.key)) if dedup is not None else None
            if first is not None and dedup is not None and first.request_hash != dedup.request_hash:
                result.outcomes[item.index] = RecordOutcome(
                    "quarantined", item.mapped.record_id, first.case_id, first.version,
                    f"the key {dedup.key!r} was used for another record; use a new key",
                )  # fmt: skip
                continue
            if first is not None or (dedup is not None and dedup.key in seen):
                result.outcomes[item.index] = RecordOutcome(
                    "duplicate", item.mapped.record_id, first.case_id if first else None,
                    first.version if first else None, "already case history",
                )  # fmt: skip
                continue
            if dedup is not None:
                seen.add(dedup.key)
            todo.append(item)
        failed = self._build(result, todo, case_id)
        if failed is not None:
            position, reason = failed
            refused = todo[position]
            self._refuse(result, refused, reason, held=False)
            for later in todo[position + 1 :]:
                self._refuse(result, later, _behind(later.mapped.external_id), held=True)
            result.reset()
            self._build(result, todo[:position], case_id)
        return result

    def _refuse_group(self, group: list[_Planned], blocked: set[str], reason: str) -> None:
        """Set a whole case group aside: its first record with ``reason``, the rest behind."""
        result = _GroupResult()
        self._refuse(result, group[0], reason, held=False)
        for later in group[1:]:
            self._refuse(result, later, _behind(later.mapped.external_id), held=True)
        self.outcomes |= result.outcomes
        for index, entry in result.aside:
            if entry.external_id is not None:
                blocked.add(entry.external_id)
            self.set_aside.append((index, entry))

    def _refuse(self, result: _GroupResult, item: _Planned, reason: str, *, held: bool) -> None:
        """Refuse a record of a group: set it aside (for a connector), with its outcome."""
        verdict: Verdict = "held" if held else "quarantined"
        result.outcomes[item.index] = RecordOutcome(verdict, item.mapped.record_id, reason=reason)
        if self.connector is not None:
            result.aside.append(
                (item.index, self._entry(item.record, item.mapped, reason, held=held))
            )

    def _build(
        self, result: _GroupResult, todo: list[_Planned], case_id: UUID | None
    ) -> tuple[int, str] | None:
        """Apply ``todo`` on the case; the position and reason of the first refused record."""
        case = self.ledger.get_case(case_id) if case_id is not None else None
        external_claimed = case is not None or not todo or not todo[0].mapped.external_id
        for position, item in enumerate(todo):
            before = len(case.pending_events) if case is not None else 0
            try:
                case, children = self._apply(case, item, self._context(item))
            except DomainError as error:
                return position, f"{error.message} ({error.hint})" if error.hint else error.message
            result.children += children
            if len(case.pending_events) == before:
                result.outcomes[item.index] = RecordOutcome(
                    "duplicate", item.mapped.record_id, str(case.id), case.version, "no change"
                )
                continue
            if item.dedup is not None:
                result.claims.append(_with_case(item.dedup, case))
            if not external_claimed:  # the case is opened: its external id finds it from now on
                external = Claim(item.scope, item.mapped.external_id, "", kept=True)
                result.claims.append(_with_case(external, case))
                external_claimed = True
            result.outcomes[item.index] = RecordOutcome(
                "ingested", item.mapped.record_id, str(case.id), case.version
            )
        result.case = case
        return None

    def _apply(
        self, case: Case | None, item: _Planned, context: CommandContext
    ) -> tuple[Case, list[Case]]:
        now, ctx, mapped = self.ledger.clock(), context.as_dict(), item.mapped
        if case is None:
            definition = self._current(item.case_type)
            title = mapped.title or f"{definition.name} {mapped.external_id}"
            case = Case.open(definition, title, mapped.fields, mapped.party_id, ctx, now)
            start = 0
        else:
            definition = self._pinned(case.case_type, case.case_type_version)
            start = len(case.pending_events)
            if mapped.fields:
                case.update_fields(definition, mapped.fields, ctx, None)
        if mapped.state is not None and case.status != mapped.state:
            name = _transition_to(definition, case.status, mapped.state)
            actor = {"id": context.actor_id, "role": context.actor_role}
            case.transition(definition, name, None, ctx, now, facts(case, None, actor))
        run = RuleRun(case, definition, ctx, now, self._current)
        return case, list(react(run, start).children)

    def _current(self, name: str) -> Definition:
        """The current version of a case type, looked up once per batch (each lookup asks
        the registry's store whether it changed: a round trip)."""
        if name not in self._definitions:
            self._definitions[name] = self.ledger.definitions.current(name)
        return self._definitions[name]

    def _pinned(self, name: str, version: int) -> Definition:
        key = f"{name}@{version}"
        if key not in self._definitions:
            self._definitions[key] = self.ledger.definitions.definition(name, version)
        return self._definitions[key]

    # -- context and quarantine ----------------------------------------------------------

    def _context(self, item: _Planned) -> CommandContext:
        if item.context is not None:
            return item.context
        assert self.connector is not None
        return CommandContext(
            actor_id=f"connector:{self.connector.name}",
            actor_role=ROLE,
            source_system=self.connector.system,
            source_record_id=item.mapped.record_id,
            occurred_at=item.mapped.effective_time,
            lineage=Lineage(
                connector=self.connector.name,
                connector_version=self.connector.version,
                source_position=item.record.position,
                batch_id=self.batch,
                read_at=self.read_at,
            ),
        )

    def _entry(
        self, record: SourceRecord, mapped: MappedRecord | None, reason: str, *, held: bool = False
    ) -> QuarantineEntry:
        assert self.connector is not None
        return QuarantineEntry(
            connector=self.connector.name,
            connector_version=self.connector.version,
            record_id=mapped.record_id if mapped else None,
            external_id=mapped.external_id if mapped else None,
            record=record.data,
            raw=record.raw,
            reason=reason,
            held=held,
            position=record.position,
            batch_id=self.batch,
            run_id=self.run_id,
        )

    def _aside(
        self,
        index: int,
        record: SourceRecord,
        mapped: MappedRecord | None,
        key: str | None,
        reason: str,
        *,
        held: bool = False,
    ) -> None:
        entry = self._entry(record, mapped, reason, held=held)
        if key is not None:
            entry = QuarantineEntry(**{**entry.__dict__, "external_id": key})
        self.set_aside.append((index, entry))
        self.outcomes[index] = RecordOutcome("held" if held else "quarantined", reason=reason)

    def set_aside_now(self) -> None:
        if self.set_aside:
            self.quarantine.add([entry for _, entry in self.set_aside])


@dataclass
class _GroupResult:
    case: Case | None = None
    children: list[Case] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    outcomes: dict[int, RecordOutcome] = field(default_factory=dict)
    aside: list[tuple[int, QuarantineEntry]] = field(default_factory=list)

    def reset(self) -> None:
        """Forget what was built (the group is built again, up to a refused record)."""
        self.case, self.children, self.claims = None, [], []
        keep = ("quarantined", "held")
        self.outcomes = {i: o for i, o in self.outcomes.items() if o.verdict in keep}


def _with_case(claim: Claim, case: Case) -> Claim:
    """``claim``, naming the case and its version after the record."""
    return Claim(claim.scope, claim.key, claim.request_hash, True, str(case.id), case.version)


def _transition_to(definition: Definition, status: str, state: str) -> str:
    for name, move in definition.transitions.items():
        if move.leaves(status) and move.target == state and (not move.roles or ROLE in move.roles):
            return name
    raise InvalidTransition(
        f"the record puts the case in state {state!r}, but the case type {definition.name} has "
        f"no transition from {status!r} to {state!r} that an integrator may take",
        hint="add such a transition to the case type, or map this source value to another state",
    )


def _behind(key: str) -> str:
    return (
        f"waits behind an earlier quarantined record of the same case ({key}); it is "
        "replayed after that one"
    )


def _pairs(groups: list[list[_Planned]]) -> list[tuple[str, str]]:
    """The claims that tell whether the groups' records and cases are stored already."""
    pairs = [(i.dedup.scope, i.dedup.key) for g in groups for i in g if i.dedup is not None]
    return pairs + [
        (g[0].scope, g[0].mapped.external_id) for g in groups if g[0].mapped.external_id
    ]


def _chunks(groups: list[list[_Planned]]) -> list[list[list[_Planned]]]:
    """Case groups in chunks of about :data:`_SAVE_EVENTS` events (three per record, say)."""
    chunks: list[list[list[_Planned]]] = [[]]
    size = 0
    for group in groups:
        if chunks[-1] and size + 3 * len(group) > _SAVE_EVENTS:
            chunks.append([])
            size = 0
        chunks[-1].append(group)
        size += 3 * len(group)
    return [c for c in chunks if c]
