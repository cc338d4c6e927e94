"""One batch of the ingestion (``services.ingestion``): map, look up, apply on each case in
order, store in a few saves with their claims, and set aside what fails."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

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
from services.ingest_records import (
    ClaimsPort,
    PushedRecord,
    QuarantineEntry,
    QuarantinePort,
    RecordOutcome,
    SourceRecord,
    Verdict,
)
from services.mapping import MappedRecord, content_hash

log = logging.getLogger(__name__)
ROLE = "integrator"
_SAVE_EVENTS = 900  # a batch is stored in saves of about this many events (at most 1,000)
_ATTEMPTS = 5


@dataclass
class Planned:
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


class BatchIngestion:
    """The work of one :meth:`~services.ingestion.Ingestor.ingest` (or ``push``) call."""

    def __init__(
        self,
        ledger: CaseLedger,
        claims: ClaimsPort,
        quarantine: QuarantinePort,
        connector: Connector | None,
        batch: str,
        run: str | None,
    ) -> None:
        self.ledger, self.claims, self.quarantine = ledger, claims, quarantine
        self.connector, self.batch, self.run_id = connector, batch, run
        self.read_at = self.ledger.clock()
        self.outcomes: dict[int, RecordOutcome] = {}
        self.set_aside: list[tuple[int, QuarantineEntry]] = []
        self._definitions: dict[str, Definition] = {}

    def run(self, planned: list[Planned], count: int, blocked: set[str]) -> list[RecordOutcome]:
        groups: dict[tuple[str, str, str], list[Planned]] = {}
        for item in planned:
            groups.setdefault(item.group, []).append(item)
        known = self.claims.claimed(_pairs(list(groups.values())))  # one lookup per batch
        for chunk in _chunks(list(groups.values())):
            self._store(chunk, blocked, known)
        return [self.outcomes[i] for i in range(count)]

    # -- mapping -------------------------------------------------------------------------

    def plan(self, records: Sequence[SourceRecord], blocked: set[str]) -> list[Planned]:
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
                Planned(index, record, mapped, dedup, mapping.case_type, connector.system)
            )
        return planned

    # -- storing -------------------------------------------------------------------------

    def _store(
        self,
        groups: list[list[Planned]],
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
        groups: list[list[Planned]],
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
        self, group: list[Planned], case_id: UUID | None, known: Mapping[tuple[str, str], Outcome]
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

    def _refuse_group(self, group: list[Planned], blocked: set[str], reason: str) -> None:
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

    def _refuse(self, result: _GroupResult, item: Planned, reason: str, *, held: bool) -> None:
        """Refuse a record of a group: set it aside (for a connector), with its outcome."""
        verdict: Verdict = "held" if held else "quarantined"
        result.outcomes[item.index] = RecordOutcome(verdict, item.mapped.record_id, reason=reason)
        if self.connector is not None:
            result.aside.append(
                (item.index, self._entry(item.record, item.mapped, reason, held=held))
            )

    def _build(
        self, result: _GroupResult, todo: list[Planned], case_id: UUID | None
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
        self, case: Case | None, item: Planned, context: CommandContext
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

    def _context(self, item: Planned) -> CommandContext:
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


def _pairs(groups: list[list[Planned]]) -> list[tuple[str, str]]:
    """The claims that tell whether the groups' records and cases are stored already."""
    pairs = [(i.dedup.scope, i.dedup.key) for g in groups for i in g if i.dedup is not None]
    return pairs + [
        (g[0].scope, g[0].mapped.external_id) for g in groups if g[0].mapped.external_id
    ]


def _chunks(groups: list[list[Planned]]) -> list[list[list[Planned]]]:
    """Case groups in chunks of about :data:`_SAVE_EVENTS` events (three per record, say)."""
    chunks: list[list[list[Planned]]] = [[]]
    size = 0
    for group in groups:
        if chunks[-1] and size + 3 * len(group) > _SAVE_EVENTS:
            chunks.append([])
            size = 0
        chunks[-1].append(group)
        size += 3 * len(group)
    return [c for c in chunks if c]


def pushed_items(records: Sequence[PushedRecord]) -> list[Planned]:
    """Records pushed over HTTP, planned as they are (they need no mapping)."""
    return [
        Planned(
            index, SourceRecord(None), item.record, item.dedup, item.case_type,
            item.system or "", item.context,
        )
        for index, item in enumerate(records)
    ]  # fmt: skip
