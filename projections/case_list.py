"""The case list: one row per case, for handlers' and managers' lists, search and filters.

Besides what the case is now (status, assignee, queue, priority, fields), the row says when
it closed (``closed_at``, ``final``: in a final state of its case type or closed), how often
it was reopened, where it came from (``source``: the lineage of the event that opened it),
the state of each of its SLA clocks (``slas``) and the nearest deadline of a running clock
(``sla_deadline``, for sorting by urgency), and the text that full-text search reads
(``search_text``: title and text field values, ``note_text``: the notes; PostgreSQL derives
``search`` from both). Personal fields are held sealed, as the events carry them (search
never reads them; ``services.case_views`` unseals them for readers), and set to null once
their subject is erased (``erased`` names them); ``legal_hold`` says whether the case is
on legal hold.
Documented in docs/read-models.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.case import Case
from domain.envelope import EventEnvelope
from domain.event_names import event_type
from projections.base import CaseRows, Column, FinalStates, Projection, Row, Table, only, put

OPENED = event_type(Case.Opened)
#: How much text one case gives to full-text search (PostgreSQL's tsvector holds ~1 MB).
SEARCH_TEXT_LIMIT = 100_000
#: Priorities in order, for sorting by urgency.
PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
#: A running SLA clock is at risk once a warning milestone passed, or once less than this
#: share of the time from its start to its deadline is left (docs/read-models.md).
AT_RISK_SHARE = 0.25

CASE_LIST = Table(
    name="case_list",
    columns=(
        Column("case_id", "uuid NOT NULL"),
        Column("case_type", "text NOT NULL"),
        Column("case_type_version", "integer NOT NULL"),
        Column("title", "text NOT NULL"),
        Column("status", "text NOT NULL"),
        Column("assignee", "text"),
        Column("party_id", "text"),
        Column("version", "integer NOT NULL"),
        Column("opened_at", "timestamptz NOT NULL"),
        Column("updated_at", "timestamptz NOT NULL"),
        Column("last_position", "bigint NOT NULL"),
        Column("priority", "text NOT NULL DEFAULT 'normal'"),
        Column("queue", "text"),
        Column("escalations", "integer NOT NULL DEFAULT 0"),
        Column("sla_breaches", "integer NOT NULL DEFAULT 0"),
        Column("fields", "jsonb NOT NULL DEFAULT '{}'"),
        Column("closed_at", "timestamptz"),
        Column("final", "boolean NOT NULL DEFAULT false"),
        Column("reopened", "integer NOT NULL DEFAULT 0"),
        Column("notes", "integer NOT NULL DEFAULT 0"),
        Column("source", "jsonb"),
        Column("slas", "jsonb NOT NULL DEFAULT '{}'"),
        Column("sla_deadline", "timestamptz"),
        Column("search_text", "text NOT NULL DEFAULT ''"),
        Column("note_text", "text NOT NULL DEFAULT ''"),
        Column("priority_rank", "smallint NOT NULL DEFAULT 1"),
        Column("sla_at_risk_at", "timestamptz"),
        Column("legal_hold", "boolean NOT NULL DEFAULT false"),
        Column("erased", "jsonb NOT NULL DEFAULT '[]'"),
    ),
    key=("case_id",),
    # Most events change only columns no index covers: room on the page lets PostgreSQL
    # update such a row in place of the page (a HOT update) without touching the indexes.
    storage="fillfactor=70",
    derived=(
        Column(
            "search",
            "tsvector GENERATED ALWAYS AS"
            " (to_tsvector('simple'::regconfig, search_text || ' ' || note_text)) STORED",
        ),
    ),
    indexes=(
        ("order", "opened_at DESC, case_id DESC"),
        ("status", "status, opened_at DESC"),
        ("type", "case_type, opened_at DESC"),
        ("assignee", "assignee, opened_at DESC"),
        ("queue", "queue, opened_at DESC"),
        ("type_version", "case_type, case_type_version"),
        ("party", "party_id, opened_at DESC"),
        ("deadline", "sla_deadline"),
        ("search", "USING gin (search)"),
        ("priority_rank", "priority_rank DESC, opened_at DESC, case_id DESC"),
        ("updated", "updated_at DESC, case_id DESC"),
        ("closed", "(case_type, closed_at) INCLUDE (opened_at) WHERE closed_at IS NOT NULL"),
        ("open_work", "(assignee, queue, sla_deadline, sla_at_risk_at) WHERE NOT final"),
    ),
)


@dataclass(frozen=True)
class CaseRow:
    """A row of the ``case_list`` read model, as queries answer it (docs/read-models.md)."""

    case_id: str
    case_type: str
    case_type_version: int
    title: str
    status: str
    assignee: str | None
    party_id: str | None
    version: int
    opened_at: datetime
    updated_at: datetime
    last_position: int
    priority: str = "normal"
    queue: str | None = None
    escalations: int = 0
    sla_breaches: int = 0
    fields: dict[str, Any] = field(default_factory=dict)
    closed_at: datetime | None = None
    final: bool = False
    reopened: int = 0
    notes: int = 0
    source: dict[str, Any] | None = None
    slas: dict[str, Any] = field(default_factory=dict)
    sla_deadline: datetime | None = None
    legal_hold: bool = False
    erased: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, row: Row) -> CaseRow:
        """The row as read from the table (extra columns such as ``search`` are left out)."""
        return cls(
            **{k: row[k] for k in _ROW_FIELDS if k in row} | {"case_id": str(row["case_id"])}
        )


_ROW_FIELDS = tuple(CaseRow.__dataclass_fields__)


class CaseListProjection(Projection):
    name = "case_list"
    tables = (CASE_LIST,)

    def __init__(self, final_states: FinalStates) -> None:
        self.final_states = final_states

    def apply(self, rows: CaseRows, event: EventEnvelope) -> None:
        row = only(rows, CASE_LIST)
        if row is None:
            if event.type != OPENED:
                raise ValueError(f"case {event.case_id} has no row, but got {event.type}")
            put(rows, CASE_LIST, self._opened(event))
            return
        new = dict(row)
        change = _CHANGES.get(event.type)
        if change is not None:
            change(new, event.data, event)
        new.update(
            case_type_version=event.case_type_version,
            version=event.case_version,
            updated_at=event.recorded_at,
            last_position=event.global_position,
        )
        if event.type in _MOVES:
            was_final, now_final = row["final"], self._final(new, event)
            new["final"] = now_final
            if now_final and not was_final:
                new["closed_at"] = event.recorded_at
            elif not now_final:
                new["closed_at"] = None
        if event.type in _FIELDS:
            new["search_text"] = _search_text(new)
        rows[CASE_LIST.name][(event.case_id,)] = new

    def _opened(self, event: EventEnvelope) -> Row:
        data = event.data
        row: Row = {
            "case_id": event.case_id,
            "case_type": event.case_type,
            "case_type_version": event.case_type_version,
            "title": data["title"],
            "status": data["status"],
            "assignee": None,
            "party_id": data.get("party_id"),
            "version": event.case_version,
            "opened_at": event.recorded_at,
            "updated_at": event.recorded_at,
            "last_position": event.global_position,
            "priority": "normal",
            "queue": None,
            "escalations": 0,
            "sla_breaches": 0,
            "fields": dict(data.get("fields") or {}),
            "closed_at": None,
            "final": False,
            "reopened": 0,
            "notes": 0,
            "source": _lineage(event),
            "slas": {},
            "sla_deadline": None,
            "search_text": "",
            "note_text": "",
            "priority_rank": PRIORITY_RANK["normal"],
            "sla_at_risk_at": None,
            "legal_hold": False,
            "erased": [],
        }
        row["final"] = self._final(row, event)
        row["closed_at"] = event.recorded_at if row["final"] else None
        row["search_text"] = _search_text(row)
        return row

    def _final(self, row: Row, event: EventEnvelope) -> bool:
        return self.final_states(event.case_type, event.case_type_version, row["status"])


def _lineage(event: EventEnvelope) -> dict[str, Any] | None:
    source = event.source
    if source is None:
        return None
    return {k: v for k, v in vars(source).items() if v is not None}


def _search_text(row: Row) -> str:
    """What full-text search reads of a case besides its notes: title and text values."""
    texts = [row["title"], *(v for v in row["fields"].values() if isinstance(v, str))]
    return " ".join(texts)[:SEARCH_TEXT_LIMIT]


def _sla_deadline(slas: dict[str, Any]) -> datetime | None:
    due = [
        datetime.fromisoformat(s["deadline"])
        for s in slas.values()
        if s.get("running") and s.get("deadline")
    ]
    return min(due) if due else None


def _at_risk_at(slas: dict[str, Any]) -> datetime | None:
    """When the first running clock is at risk (the warning's time once one passed)."""
    times = [
        datetime.fromisoformat(s["at_risk_at"])
        for s in slas.values()
        if s.get("running") and s.get("deadline") and s.get("at_risk_at")
    ]
    return min(times) if times else None


def _set_sla(row: Row, sla: str, **changes: Any) -> None:
    clock = {**row["slas"].get(sla, {}), **changes}
    deadline, started = clock.get("deadline"), clock.get("started")
    if deadline and started and not clock.get("warned"):
        due = datetime.fromisoformat(deadline)
        at_risk = due - (due - datetime.fromisoformat(started)) * AT_RISK_SHARE
        clock["at_risk_at"] = at_risk.isoformat()
    slas = {**row["slas"], sla: clock}
    row["slas"] = slas
    row["sla_deadline"] = _sla_deadline(slas)
    row["sla_at_risk_at"] = _at_risk_at(slas)


def _clock_runs(row: Row, data: dict[str, Any], event: EventEnvelope) -> None:
    due = data["due"]
    _set_sla(
        row,
        data["sla"],
        run=data["run"],
        running=bool(due),
        deadline=due.get("deadline"),
        warned=False,
        breached=False,
        started=event.recorded_at.isoformat(),
    )


def _clock_resumes(row: Row, data: dict[str, Any], event: EventEnvelope) -> None:
    due, clock = data["due"], row["slas"].get(data["sla"], {})
    # A run keeps its start (the SLA outcomes' "started" row); a new run starts now.
    started = clock.get("started") if clock.get("run") == data["run"] else None
    _set_sla(
        row,
        data["sla"],
        run=data["run"],
        running=True,
        deadline=due.get("deadline"),
        started=started or event.recorded_at.isoformat(),
    )


def _warned(row: Row, data: dict[str, Any], event: EventEnvelope) -> None:
    _set_sla(row, data["sla"], warned=True, at_risk_at=event.recorded_at.isoformat())


def _priority(row: Row, data: dict[str, Any], _event: EventEnvelope) -> None:
    row["priority"] = data["priority"]
    row["priority_rank"] = PRIORITY_RANK.get(data["priority"], 0)


def _breached(row: Row, data: dict[str, Any], _event: EventEnvelope) -> None:
    row["sla_breaches"] += 1
    _set_sla(row, data["sla"], breached=True)


def _note(row: Row, data: dict[str, Any], _event: EventEnvelope) -> None:
    row["notes"] += 1
    text = f"{row['note_text']}\n{data['text']}" if row["note_text"] else str(data["text"])
    row["note_text"] = text[:SEARCH_TEXT_LIMIT]


def _reopened(row: Row, data: dict[str, Any], _event: EventEnvelope) -> None:
    row["status"] = data["status"]
    row["reopened"] += 1


def _erased(row: Row, data: dict[str, Any], _event: EventEnvelope) -> None:
    """The subject's personal values go (they were sealed, and their key is destroyed)."""
    erased = data["fields"]
    row["fields"] = {k: None if k in erased else v for k, v in row["fields"].items()}
    row["erased"] = sorted({*row["erased"], *erased})


def _set(column: str, key: str) -> Callable[[Row, dict[str, Any], EventEnvelope], None]:
    def change(row: Row, data: dict[str, Any], _event: EventEnvelope) -> None:
        row[column] = data[key]

    return change


_BY_CLASS: dict[type[Case.Event], Callable[[Row, dict[str, Any], EventEnvelope], None]] = {
    Case.Assigned: _set("assignee", "assignee"),
    Case.StatusChanged: _set("status", "to_status"),
    Case.Migrated: _set("status", "to_status"),
    Case.Closed: lambda row, data, _e: row.update(status="closed"),
    Case.Reopened: _reopened,
    Case.FieldsUpdated: lambda row, data, _e: row.update(
        fields={**row["fields"], **data["changes"]}
    ),
    Case.PriorityChanged: _priority,
    Case.RoutedToQueue: _set("queue", "queue"),
    Case.Escalated: _set("escalations", "level"),
    Case.NoteAdded: _note,
    Case.SlaStarted: _clock_runs,
    Case.SlaResumed: _clock_resumes,
    Case.SlaPaused: lambda row, data, _e: _set_sla(row, data["sla"], running=False),
    Case.SlaStopped: lambda row, data, _e: _set_sla(
        row, data["sla"], running=False, met=data["met"]
    ),
    Case.SlaWarned: _warned,
    Case.SlaBreached: _breached,
    Case.LegalHoldPlaced: lambda row, data, _e: row.update(legal_hold=True),
    Case.LegalHoldLifted: lambda row, data, _e: row.update(legal_hold=False),
    Case.PersonalDataErased: _erased,
}
_CHANGES = {event_type(kind): change for kind, change in _BY_CLASS.items()}
#: The events that may move a case in or out of a final state, and those that change what
#: search reads besides notes (the title never changes).
_MOVES = frozenset(
    event_type(kind) for kind in (Case.StatusChanged, Case.Migrated, Case.Closed, Case.Reopened)
)
_FIELDS = frozenset(event_type(kind) for kind in (Case.FieldsUpdated, Case.PersonalDataErased))
