"""Read rights in one place: what a role may see of a case, of a case-list row, and of each
event in a case's history.

Every read path asks this service: ``GET /cases/{id}``, the case list, the history, and so
the dashboard, which reads through those. A role's view of the case type (``views:`` in
docs/case-types.md) decides which fields it sees; event data that carries field values
(``fields`` of CaseOpened, ``changes`` of CaseFieldsUpdated, the text and recipients of a
notification drawn from fields) is filtered the same way, and the entry says what was
withheld. The Kafka envelope is not filtered (docs/read-models.md, "Who sees what").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from domain.case import Case
from domain.definition import Definition, FieldSpec, Notification, View
from domain.envelope import EventEnvelope, envelope_for
from projections.case_list import CaseRow
from services.application import CaseLedger

_FIELD_READ = re.compile(r"\bfields\.([A-Za-z_][A-Za-z0-9_]*)")
_FIELDS = re.compile(r"\bfields\b")


def visible(fields: Mapping[str, Any], view: View) -> dict[str, Any]:
    """The field values ``view`` shows."""
    if view.see is None:
        return dict(fields)
    return {name: value for name, value in fields.items() if name in view.see}


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


@dataclass(frozen=True)
class SeenEvent:
    """One event of a case's history as a role sees it. ``withheld`` names what was taken
    out of its data: hidden fields, or ``subject``, ``body``, ``recipients`` of a
    notification whose template or recipients read a hidden field."""

    event: Case.Event
    envelope: EventEnvelope
    withheld: list[str]


class CaseViews:
    """Decides what each role may read of cases; the one place read rights are applied."""

    def __init__(self, ledger: CaseLedger) -> None:
        self.ledger = ledger

    def view(self, case_type: str, version: int, role: str) -> View:
        return self.ledger.definitions.definition(case_type, version).view_for(role)

    def case(self, case_id: UUID, role: str) -> SeenCase:
        case = self.ledger.get_case(case_id)
        definition = self.ledger.definition_of(case)
        view = definition.view_for(role)
        return SeenCase(case, definition, view, visible(case.fields, view))

    def row_fields(self, row: CaseRow, role: str) -> dict[str, Any]:
        """The fields of a case-list row that ``role`` sees."""
        return visible(row.fields, self.view(row.case_type, row.case_type_version, role))

    def columns(self, case_type: str, role: str) -> list[str]:
        """The case-list columns ``role``'s view of the current ``case_type`` shows."""
        return list(self.ledger.definitions.current(case_type).view_for(role).columns)

    def history(self, case_id: UUID, role: str) -> list[SeenEvent]:
        """Every event of the case, oldest first, filtered by the role's view of the case
        type version the case runs under now (as ``GET /cases/{id}`` shows it)."""
        events = self.ledger.history(case_id)
        view = self.view(*_pinned(events), role)
        return [self._event(event, view) for event in events]

    def _event(self, event: Case.Event, view: View) -> SeenEvent:
        envelope = envelope_for(event, global_position=0)
        if view.see is None:
            return SeenEvent(event, envelope, [])
        data, withheld = dict(envelope.data), []
        for key in ("fields", "changes"):
            if isinstance(event, Case.Opened | Case.FieldsUpdated) and key in data:
                withheld += sorted(set(data[key]) - view.see)
                data[key] = visible(data[key], view)
        if isinstance(event, Case.NotificationRequested):
            withheld = self._notification_parts(event, view.see)
            data = {k: v for k, v in data.items() if k not in withheld}
        return SeenEvent(event, replace(envelope, data=data), withheld)

    def _notification_parts(
        self, event: Case.NotificationRequested, see: frozenset[str]
    ) -> list[str]:
        """The parts of a notification that may quote a field ``see`` does not hold."""
        version = int(event.context.get("case_type_version", 0))
        case_type = str(event.context.get("case_type", ""))
        notification = self.ledger.definitions.definition(case_type, version).notifications.get(
            event.notification
        )
        if notification is None:
            return ["subject", "body", "recipients"]
        return _quoting_parts(notification, see)


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
