"""The read models managers and analysts ask for, beside the case list: counts, the SLA
status of open cases, cycle times, throughput and workload (docs/read-models.md).

:class:`ReadModelQueries` is the port the store answers (keys and figures, no labels);
:class:`ReadModels` is the use case the API calls: it puts labels in the reader's language
beside the keys, from the case types' definitions, and reads time from the ledger's clock.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Protocol
from uuid import UUID

from domain.definition import CLOSED, Definition, label_in
from domain.errors import InvalidCommand
from services.case_view_phrases import first_known, priority_label
from services.case_views import status_label, view_language
from services.queries import SlaState

CountBy = Literal["status", "case_type", "assignee", "queue", "priority"]
CycleBy = Literal["case_type", "state", "month"]
WorkloadBy = Literal["assignee", "queue"]
#: How far back throughput goes at most (a day per row).
MAX_DAYS = 366
#: caseledger's own words for "no value" in a count or workload row.
NOBODY = {
    "assignee": {"en": "Unassigned", "fr": "Non attribué"},
    "queue": {"en": "No queue", "fr": "Sans file"},
}


@dataclass(frozen=True)
class KeyCount:
    """Cases with one value of a column."""

    key: str | None
    count: int


@dataclass(frozen=True)
class Count:
    key: str | None
    label: str
    count: int


@dataclass(frozen=True)
class SlaClock:
    """An open case with running SLA clocks, in the state of its worst clock (``sla``,
    due at ``due_at``): breached, else at risk, else on time (``AT_RISK_SHARE`` in
    ``services.queries``); between clocks in the same state, the nearest due."""

    case_id: str
    title: str
    case_type: str
    sla: str
    state: SlaState
    due_at: datetime
    time_left_s: float
    assignee: str | None
    queue: str | None
    #: The case's nearest deadline (the list's order).
    deadline: datetime


#: What an SLA cursor says when the list was of every state.
ANY_STATE = "any"


@dataclass(frozen=True)
class SlaCursor:
    """Where a page of the SLA status ended: cases are listed by their nearest deadline."""

    state: str
    deadline: datetime
    case_id: str

    def encode(self) -> str:
        raw = json.dumps([self.state, self.deadline.isoformat(), self.case_id])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, state: str) -> SlaCursor:
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            kind, deadline, case_id = raw
            if not all(isinstance(v, str) for v in raw):
                raise TypeError("an SLA cursor holds three strings")
            cursor = cls(kind, datetime.fromisoformat(deadline), str(UUID(case_id)))
            if cursor.deadline.tzinfo is None:
                raise ValueError("a cursor's time has its offset")
        except (ValueError, TypeError) as error:
            raise InvalidCommand(
                f"the cursor {token[:40]!r} is not one this API gave out",
                hint="pass the next_cursor of the previous page unchanged, or omit it",
            ) from error
        if cursor.state != state:
            raise InvalidCommand(
                f"this cursor continues the list of {cursor.state} cases, not of {state}",
                hint="pass the same state as the request that gave the cursor, or omit it",
            )
        return cursor


@dataclass(frozen=True)
class SlaPage:
    items: list[SlaClock]
    next_cursor: SlaCursor | None


@dataclass(frozen=True)
class CycleTime:
    """Percentiles of how long cases took: from opening to closing (``state`` None), or in
    one state (from entering it to leaving it); per case type, and per ``month`` (of the
    closing, or of leaving the state) when asked."""

    case_type: str
    state: str | None
    month: str | None
    p50_s: float
    p90_s: float
    p99_s: float
    count: int


@dataclass(frozen=True)
class ThroughputDay:
    """Cases opened, closed (entered a final state from an open one) and reopened on one
    day (UTC)."""

    day: date
    opened: int
    closed: int
    reopened: int


@dataclass(frozen=True)
class Workload:
    """Open cases of one handler or queue, and how many of them are at risk or breached
    (a case counts once, by its worst running SLA clock)."""

    key: str | None
    open: int
    at_risk: int
    breached: int


@dataclass(frozen=True)
class LabelledWorkload:
    key: str | None
    label: str
    open: int
    at_risk: int
    breached: int


class ReadModelQueries(Protocol):
    """What the read-model store answers: keys and figures, without labels."""

    def counts(self, by: CountBy, case_type: str | None) -> list[KeyCount]: ...

    def sla_status(
        self,
        state: SlaState | None,
        where: SlaWhere,
        limit: int,
        cursor: SlaCursor | None,
        now: datetime,
    ) -> SlaPage: ...

    def cycle_times(self, by: CycleBy, case_type: str | None) -> list[CycleTime]: ...

    def throughput(self, first: date, last: date, case_type: str | None) -> list[ThroughputDay]: ...

    def workload(self, by: WorkloadBy, now: datetime) -> list[Workload]: ...


@dataclass(frozen=True)
class SlaWhere:
    """Filters of the SLA status list; ``None`` means any."""

    case_type: str | None = None
    queue: str | None = None
    assignee: str | None = None


class CaseTypeListing(Protocol):
    """A case type and its current published version (None: none yet)."""

    @property
    def name(self) -> str: ...

    @property
    def current(self) -> int | None: ...


class CaseTypeLabels(Protocol):
    """Where labels come from: the case types in the order they were created, with their
    current version, and the definition of a version (compiled once, kept)."""

    def summaries(self) -> Sequence[CaseTypeListing]: ...

    def definition(self, name: str, version: int) -> Definition: ...


class ReadModels:
    """The read models as the API serves them: figures with labels in the reader's
    language, at the ledger's time."""

    def __init__(
        self,
        store: ReadModelQueries,
        definitions: CaseTypeLabels,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        before_read: Callable[[], object] = lambda: None,
    ) -> None:
        self.store = store
        self.definitions = definitions
        self.clock = clock
        #: Called before each read (the composition root keeps the analysts' labels fresh).
        self.before_read = before_read

    def counts(self, by: CountBy, case_type: str | None, languages: tuple[str, ...]) -> list[Count]:
        """Cases per value of ``by``, most first, each value with its label (a status
        without ``case_type`` takes the label of the first case type that declares it)."""
        self.before_read()
        rows = sorted(self.store.counts(by, case_type), key=lambda r: (-r.count, r.key or ""))
        labels = Labels(self._current(), languages)
        return [Count(r.key, labels.of(by, r.key, case_type), r.count) for r in rows]

    def sla_status(
        self, state: SlaState | None, where: SlaWhere, limit: int, cursor: str | None
    ) -> SlaPage:
        """Open cases whose worst running SLA clock is in ``state`` (``None``: any), the
        nearest deadline first."""
        self.before_read()
        after = SlaCursor.decode(cursor, state or ANY_STATE) if cursor else None
        return self.store.sla_status(state, where, limit, after, self.clock())

    def cycle_times(self, by: CycleBy, case_type: str | None) -> list[CycleTime]:
        self.before_read()
        return self.store.cycle_times(by, case_type)

    def throughput(self, days: int, case_type: str | None) -> list[ThroughputDay]:
        """Every day of the last ``days`` (today included, UTC), oldest first."""
        if not 1 <= days <= MAX_DAYS:
            raise InvalidCommand(
                f"days={days} is out of range", hint=f"ask for 1 to {MAX_DAYS} days"
            )
        self.before_read()
        last = self.clock().astimezone(UTC).date()
        return self.store.throughput(last - timedelta(days=days - 1), last, case_type)

    def workload(self, by: WorkloadBy, languages: tuple[str, ...]) -> list[LabelledWorkload]:
        self.before_read()
        rows = self.store.workload(by, self.clock())
        labels = Labels({}, languages)
        return [
            LabelledWorkload(r.key, labels.of(by, r.key, None), r.open, r.at_risk, r.breached)
            for r in rows
        ]

    def _current(self) -> dict[str, Definition]:
        """The current definition of every published case type, in the order they were
        created (one look at the case-type store, then compiled definitions kept)."""
        return {
            s.name: self.definitions.definition(s.name, s.current)
            for s in self.definitions.summaries()
            if s.current
        }


@dataclass(frozen=True)
class Labels:
    """The labels of one answer, in the reader's language."""

    current: dict[str, Definition]
    languages: tuple[str, ...]

    def of(self, by: str, key: str | None, case_type: str | None) -> str:
        words = first_known(self.languages)
        if key is None:
            return NOBODY.get(by, NOBODY["queue"])[words]
        if by == "priority":
            return priority_label(key, words)
        if by == "status" and case_type is None:
            case_type = next((n for n, d in self.current.items() if _declares(d, key)), None)
        definition = self.current.get(case_type or key) if by in ("status", "case_type") else None
        if definition is None:
            return key  # a handler, a queue, or a case type no longer published
        language = view_language(definition, self.languages)
        if by == "case_type":
            return label_in(definition.labels, (language,), key)
        return status_label(definition, key, language)


def _declares(definition: Definition, status: str) -> bool:
    return status == CLOSED or status in definition.states
