"""Read rights in one place: what a role may see of a case, of a case-list row, and of each
event in a case's history, and the ready views every read path shows.

Every read path asks this service: ``GET /cases/{id}``, the case list, the history and the
timeline, the CSV export, and so the dashboard, which reads through those. A role's view of
the case type (``views:`` in docs/case-types.md) decides which fields it sees; event data
that carries field values (``fields`` of CaseOpened, ``changes`` of CaseFieldsUpdated, the
text and recipients of a notification drawn from fields) is filtered the same way, and the
entry says what was withheld. The views come with labels in the reader's language and with
what the reader may do already decided (``services.case_view_actions``). The Kafka envelope
is not filtered (docs/read-models.md, "Who sees what").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.case import Case
from domain.definition import CLOSED, Definition, FieldSpec, Notification, View, label_in
from domain.envelope import EventEnvelope, envelope_for
from domain.errors import DomainError
from projections.case_list import CaseRow
from services.application import CaseLedger
from services.case_view_actions import (
    CaseActions,
    Reader,
    TransitionOption,
    decide_actions,
    decide_transitions,
    editable_fields,
)
from services.case_view_phrases import CLOSED_STATUS, phrase_language, priority_label
from services.personal_data import unseal_fields
from services.queries import CaseFilter, CaseListQueries, PageCursor
from services.time_travel import EffectiveTimes, Moment, effective_order, effective_times
from services.timeline import Teller, TimelineEntry, Wording, tell

__all__ = ["NOW", "CaseViews", "Moment", "Reader", "SeenCase", "SeenEvent", "visible"]

_FIELD_READ = re.compile(r"\bfields\.([A-Za-z_][A-Za-z0-9_]*)")
_FIELDS = re.compile(r"\bfields\b")
#: A read of the case as it is now (every read path takes a :class:`Moment`).
NOW = Moment()


def visible(fields: Mapping[str, Any], view: View) -> dict[str, Any]:
    """The field values ``view`` shows."""
    if view.see is None:
        return dict(fields)
    return {name: value for name, value in fields.items() if name in view.see}


def view_language(definition: Definition, languages: tuple[str, ...]) -> str:
    """The language of a view of a case of this type: the reader's first language the case
    type has labels in, else English."""
    offered = set(definition.labels) or {"en"}
    return next((lang for lang in languages if lang in offered), "en")


def choice_labels(
    specs: Mapping[str, FieldSpec], values: Mapping[str, Any], language: str
) -> dict[str, str]:
    """The label in ``language`` of each choice field's value among ``values``."""
    labels = {}
    for name, value in values.items():
        spec = specs.get(name)
        label = spec.value_label(value, (language,)) if spec else None
        if label is not None:
            labels[name] = label
    return labels


def choice_options(specs: Mapping[str, FieldSpec], language: str) -> dict[str, dict[str, str]]:
    """Every value of each choice field among ``specs``, with its label in ``language``."""
    return {
        name: {value: label_in(spec.choice_labels.get(value, {}), (language,), value)
               for value in spec.choices}
        for name, spec in specs.items()
        if spec.kind == "choice"
    }  # fmt: skip


def status_label(definition: Definition, status: str, language: str) -> str:
    if status == CLOSED:
        return CLOSED_STATUS[phrase_language(language)]
    state = definition.states.get(status)
    return label_in(state.labels, (language,), status) if state else status


@dataclass(frozen=True)
class SeenCase:
    """A case as one role sees it: the view that applies and the field values it shows."""

    case: Case
    definition: Definition
    view: View
    fields: dict[str, Any]

    @property
    def field_specs(self) -> dict[str, FieldSpec]:
        """The case type's fields this role sees (for their labels)."""
        see = self.view.see
        return {n: f for n, f in self.definition.fields.items() if see is None or n in see}

    #: Personal fields whose values can no longer be read although the case as read does not
    #: record their erasure (a past version, read after its subject was erased).
    unreadable: tuple[str, ...] = ()

    @property
    def erased(self) -> list[str]:
        """The personal fields this role sees whose values were erased with the subject."""
        see = self.view.see
        names = sorted({*self.case.erased, *self.unreadable})
        return [name for name in names if see is None or name in see]


@dataclass(frozen=True)
class SeenEvent:
    """One event of a case's history as a role sees it. ``withheld`` names what was taken
    out of its data: hidden fields, or ``subject``, ``body``, ``recipients`` of a
    notification whose template or recipients read a hidden field."""

    event: Case.Event
    envelope: EventEnvelope
    withheld: list[str]
    #: When it took effect in the world (``services.time_travel``): its ``occurred_at``, or
    #: for a derived event its cause's.
    effective_at: datetime | None = None


@dataclass(frozen=True)
class ViewLabels:
    """The labels of a case view, in ``language``: its case type, its status, the fields the
    role sees, and every value of the choice fields among them (field -> value -> label);
    ``field_help``: the help text of each seen field that has one."""

    language: str
    case_type: str
    status: str
    fields: dict[str, str]
    choices: dict[str, dict[str, str]]
    field_help: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseView:
    """A case ready to show to one reader: the fields its role sees, labels in its language,
    the fields it may edit (``None``: all), and what it may do now."""

    seen: SeenCase
    labels: ViewLabels
    editable_fields: list[str] | None
    transitions: list[TransitionOption]
    actions: CaseActions

    @property
    def case(self) -> Case:
        return self.seen.case


@dataclass(frozen=True)
class ListedClock:
    """The latest run of one SLA clock of a listed case (the ``slas`` of its row)."""

    running: bool
    deadline: datetime | None
    warned: bool
    breached: bool
    met: bool | None

    @classmethod
    def of(cls, clock: Mapping[str, Any]) -> ListedClock:
        deadline = clock.get("deadline")
        return cls(
            running=bool(clock.get("running")),
            deadline=datetime.fromisoformat(deadline) if deadline else None,
            warned=bool(clock.get("warned")),
            breached=bool(clock.get("breached")),
            met=clock.get("met"),
        )


@dataclass(frozen=True)
class RowView:
    """A case-list row as one reader sees it, with labels beside the keys (``choice_labels``:
    the label of each choice field's value among ``fields``), and its SLA clocks."""

    row: CaseRow
    fields: dict[str, Any]
    status_label: str
    case_type_label: str
    priority_label: str
    choice_labels: dict[str, str]
    slas: dict[str, ListedClock]
    #: The personal fields among ``fields`` whose values were erased (shown as ``None``).
    erased: list[str] = field(default_factory=list)

    @property
    def sla_deadline(self) -> datetime | None:
        """The nearest deadline of a running clock (the list's urgency order)."""
        return self.row.sla_deadline


@dataclass(frozen=True)
class PageView:
    """A page of the case list, as one reader sees it; ``columns`` are those of the role's
    view when the list is of one case type."""

    rows: list[RowView]
    columns: list[str] | None
    next_cursor: PageCursor | None


@dataclass(frozen=True)
class Timeline:
    language: str
    entries: list[TimelineEntry]


@dataclass(frozen=True)
class ToldEvent:
    """One event of a case's history as a role sees it, and its timeline sentence."""

    seen: SeenEvent
    entry: TimelineEntry
    #: The fields whose values this event set can no longer be read (their subject was
    #: erased): shown as erased, not as empty.
    erased: tuple[str, ...] = ()
    #: The fields this event changed whose values before it can no longer be read.
    erased_before: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToldHistory:
    """A case and its history for an audit export: the case as the role sees it now, its
    status label, and its history a page at a time (read once, as it is iterated)."""

    seen: SeenCase
    language: str
    status_label: str
    pages: Iterator[list[ToldEvent]]


class CaseViews:
    """Decides what each role may read of cases; the one place read rights are applied."""

    def __init__(self, ledger: CaseLedger) -> None:
        self.ledger = ledger

    def view(self, case_type: str, version: int, role: str) -> View:
        return self.ledger.definitions.definition(case_type, version).view_for(role)

    def case(self, case_id: UUID, role: str, at: Moment = NOW) -> SeenCase:
        """The case as ``role`` sees it, now or at the moment ``at`` names."""
        case = self.ledger.case_at(case_id, at)
        definition = self.ledger.definition_of(case)
        view = definition.view_for(role)
        return SeenCase(
            case,
            definition,
            view,
            visible(case.fields, view),
            () if at.is_now else self._unreadable(case, definition),
        )

    def _unreadable(self, case: Case, definition: Definition) -> tuple[str, ...]:
        """The personal fields of a case read before its erasure event (a past version)
        whose values its subject's erasure made unreadable: set, yet ``None``."""
        if case.erased_subject is not None or not definition.personal_fields:
            return ()
        vault = self.ledger.vault
        if vault is None or not vault.is_erased(case.subject):
            return ()
        return tuple(
            sorted(
                name
                for name in definition.personal_fields
                if name in case.fields and case.fields[name] is None
            )
        )

    def case_view(self, case_id: UUID, reader: Reader, at: Moment = NOW) -> CaseView:
        """The case ready to show to ``reader``: what its role sees, in its language, with
        the transitions and commands it may use now (on a past case: those it could have
        used then); at the moment ``at`` names, if any."""
        seen = self.case(case_id, reader.role.value, at)
        case, definition, view = seen.case, seen.definition, seen.view
        language = view_language(definition, reader.languages)
        labels = ViewLabels(
            language=language,
            case_type=label_in(definition.labels, (language,), definition.name),
            status=status_label(definition, case.status, language),
            fields={n: label_in(f.labels, (language,), n) for n, f in seen.field_specs.items()},
            choices=choice_options(seen.field_specs, language),
            field_help={
                n: label_in(f.help, (language,), "") for n, f in seen.field_specs.items() if f.help
            },
        )
        return CaseView(
            seen=seen,
            labels=labels,
            editable_fields=editable_fields(case, definition, view),
            transitions=decide_transitions(case, definition, reader, language),
            actions=decide_actions(case, definition, view, reader.role),
        )

    def row(self, row: CaseRow, reader: Reader) -> RowView:
        """A case-list row as ``reader`` sees it: the fields its role's view of the row's case
        type version shows, and labels in the reader's language."""
        definition = self.ledger.definitions.definition(row.case_type, row.case_type_version)
        language = view_language(definition, reader.languages)
        view = definition.view_for(reader.role.value)
        fields, erased = unseal_fields(self.ledger.vault, row.case_id, visible(row.fields, view))
        erased = sorted({*erased, *(name for name in row.erased if name in fields)})
        return RowView(
            row=row,
            fields=fields,
            status_label=status_label(definition, row.status, language),
            case_type_label=label_in(definition.labels, (language,), definition.name),
            priority_label=priority_label(row.priority, language),
            choice_labels=choice_labels(definition.fields, fields, language),
            slas={name: ListedClock.of(clock) for name, clock in row.slas.items()},
            erased=erased,
        )

    def page(
        self,
        cases: CaseListQueries,
        where: CaseFilter,
        limit: int,
        cursor: PageCursor | None,
        reader: Reader,
    ) -> PageView:
        """One page of the case list from ``cases``, as ``reader`` sees it."""
        page = cases.list_cases(where, limit, cursor)
        columns = self.columns(where.case_type, reader.role.value) if where.case_type else None
        return PageView([self.row(r, reader) for r in page.cases], columns, page.next_cursor)

    def pages(
        self, cases: CaseListQueries, where: CaseFilter, reader: Reader, page_size: int
    ) -> Iterator[list[RowView]]:
        """Every page of the case list as ``reader`` sees it, read one at a time by its
        cursor (newest first), so that a long listing never sits in memory whole."""
        cursor: PageCursor | None = None
        while True:
            page = self.page(cases, where, page_size, cursor, reader)
            yield page.rows
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def columns(self, case_type: str, role: str) -> list[str]:
        """The case-list columns ``role``'s view of the current ``case_type`` shows."""
        return list(self.ledger.definitions.current(case_type).view_for(role).columns)

    def choice_fields(self, case_type: str) -> frozenset[str]:
        """The choice fields of the current ``case_type`` (their values have labels)."""
        fields = self.ledger.definitions.current(case_type).fields
        return frozenset(name for name, spec in fields.items() if spec.kind == "choice")

    def visible_fields(self, case_type: str, role: str) -> frozenset[str] | None:
        """The fields ``role``'s view of the current ``case_type`` shows (``None``: all)."""
        return self.ledger.definitions.current(case_type).view_for(role).see

    def timeline(self, case_id: UUID, reader: Reader, at: Moment = NOW) -> Timeline:
        """The case's history as sentences in the case type's language for ``reader``, made
        of the history its role sees (:meth:`history`) and nothing else; up to the moment
        ``at`` names (in effective-time order for an ``effective_at``)."""
        events = self._events(case_id, at)
        definition = self.ledger.definitions.definition(*_pinned(events))
        words = self._wording(definition, reader)
        view = definition.view_for(reader.role.value)
        return Timeline(words.language, tell(self._seen(events, view, at), words))

    def _wording(self, definition: Definition, reader: Reader) -> Wording:
        language = view_language(definition, reader.languages)
        return Wording(
            language=language,
            definition=definition,
            definition_at=lambda at: self._definition_or(definition.name, at, definition),
            type_label=lambda name: self._type_label(name, language),
        )

    def audit_trail(self, case_id: UUID, reader: Reader, page_size: int) -> ToldHistory:
        """The case as ``reader``'s role sees it now, and its whole history as that role
        sees it, each event with its sentence, read a page at a time (an audit export)."""
        seen = self.case(case_id, reader.role.value)
        words = self._wording(seen.definition, reader)
        status = status_label(seen.definition, seen.case.status, words.language)
        erased = {*seen.case.erased, *self._unreadable(seen.case, seen.definition)}

        def pages() -> Iterator[list[ToldEvent]]:
            teller, unreadable = Teller(words), _UnreadableValues(erased)
            for page in self.history_pages(case_id, reader.role.value, page_size):
                yield [unreadable.told(event, teller.tell(event)) for event in page]

        return ToldHistory(seen, words.language, status, pages())

    def _definition_or(self, case_type: str, version: int, fallback: Definition) -> Definition:
        try:
            return self.ledger.definitions.definition(case_type, version)
        except DomainError:
            return fallback

    def _type_label(self, case_type: str, language: str) -> str:
        try:
            labels = self.ledger.definitions.current(case_type).labels
        except DomainError:
            return case_type
        return label_in(labels, (language,), case_type)

    def history(self, case_id: UUID, role: str, at: Moment = NOW) -> list[SeenEvent]:
        """Every event of the case, oldest first, filtered by the role's view of the case
        type version the case runs under now (as ``GET /cases/{id}`` shows it); up to the
        moment ``at`` names, and for an ``effective_at`` in effective-time order."""
        events = self._events(case_id, at)
        view = self.view(*_pinned(events), role)
        return self._seen(events, view, at)

    def history_pages(self, case_id: UUID, role: str, page_size: int) -> Iterator[list[SeenEvent]]:
        """The case's whole history as :meth:`history` filters it, a page of events at a
        time (an export of a long history never holds it whole), under the role's view of
        the case type version the case runs under now."""
        view = self._current_view(case_id, role)
        after, dating = 0, EffectiveTimes()
        while page := self.ledger.history_page(case_id, after, page_size):
            yield [self._event(event, view, dating.of(event)) for event in page]
            after = page[-1].originator_version

    def _current_view(self, case_id: UUID, role: str) -> View:
        case = self.ledger.get_case(case_id)
        return self.view(case.case_type, case.case_type_version, role)

    def _events(self, case_id: UUID, at: Moment) -> list[Case.Event]:
        upto = None if at.is_now else self.ledger.known_version(case_id, at)
        return self.ledger.history(case_id, upto)

    def _seen(self, events: list[Case.Event], view: View, at: Moment) -> list[SeenEvent]:
        """``events`` as ``view`` shows them, each with its effective time: all in version
        order, or for an ``effective_at`` those in effect by then, in effective-time order."""
        if at.effective_at is None:
            times = effective_times(events)
            return [self._event(e, view, times[e.originator_version]) for e in events]
        return [self._event(e, view, t) for e, t in effective_order(events, at.effective_at)]

    def _event(self, event: Case.Event, view: View, effective: datetime | None = None) -> SeenEvent:
        return replace(seen_event(event, view, self._notification), effective_at=effective)

    def _notification(self, case_type: str, version: int, name: str) -> Notification | None:
        return self.ledger.definitions.definition(case_type, version).notifications.get(name)


class _UnreadableValues:
    """Follows, through a case's history in version order, which of its field values were
    erased with its subject: the personal fields ``erased`` names, where an event set them
    (read back as ``None``, their key being gone)."""

    def __init__(self, erased: set[str]) -> None:
        self.erased = erased
        self.held: set[str] = set()  # fields whose value at this point is an erased one

    def told(self, seen: SeenEvent, entry: TimelineEntry) -> ToldEvent:
        if not self.erased or not isinstance(seen.event, Case.Opened | Case.FieldsUpdated):
            return ToldEvent(seen, entry)
        data = seen.envelope.data
        values: Mapping[str, Any] = data.get("fields") or data.get("changes") or {}
        after = tuple(sorted(n for n, v in values.items() if v is None and n in self.erased))
        before = tuple(sorted(n for n in values if n in self.held))
        self.held = (self.held - values.keys()) | set(after)
        return ToldEvent(seen, entry, after, before)


NotificationLookup = Callable[[str, int, str], Notification | None]
"""A notification of a case type version, by case type, version and name."""


def seen_event(event: Case.Event, view: View, notification: NotificationLookup) -> SeenEvent:
    """``event`` as ``view`` lets its role see it: hidden fields taken out of its data, and
    the parts of a notification that may quote them (``notification`` finds the case type's
    notification the event was made from)."""
    envelope = envelope_for(event, global_position=0)
    if view.see is None:
        return SeenEvent(event, envelope, [])
    data, withheld = dict(envelope.data), []
    for key in ("fields", "changes"):
        if isinstance(event, Case.Opened | Case.FieldsUpdated) and key in data:
            withheld += sorted(set(data[key]) - view.see)
            data[key] = visible(data[key], view)
    if isinstance(event, Case.NotificationRequested):
        version = int(event.context.get("case_type_version", 0))
        case_type = str(event.context.get("case_type", ""))
        made_from = notification(case_type, version, event.notification)
        withheld = (
            ["subject", "body", "recipients"]
            if made_from is None
            else _quoting_parts(made_from, view.see)
        )
        data = {k: v for k, v in data.items() if k not in withheld}
    return SeenEvent(event, replace(envelope, data=data), withheld)


def _quoting_parts(notification: Notification, see: frozenset[str]) -> list[str]:
    parts = []
    if notification.subject is not None and _reads_hidden(notification.subject.source, see):
        parts.append("subject")
    if _reads_hidden(notification.body.source, see):
        parts.append("body")
    if any(to.kind == "field" and to.value not in see for to in notification.to):
        parts.append("recipients")
    return parts


def _reads_hidden(source: str, see: frozenset[str]) -> bool:
    """Whether a template may read a field outside ``see``: any use of ``fields`` other
    than ``fields.<a field it sees>`` counts (``fields['x']``, ``fields | tojson``, ...)."""
    rest = _FIELD_READ.sub(lambda read: "" if read[1] in see else read[0], source)
    return _FIELDS.search(rest) is not None


def _pinned(events: list[Case.Event]) -> tuple[str, int]:
    """The case type and the version the case runs under after ``events``."""
    opened = events[0]
    assert isinstance(opened, Case.Opened)
    version = opened.case_type_version
    for event in events:
        if isinstance(event, Case.Migrated):
            version = event.to_version
    return opened.case_type, version
