"""The Case aggregate: every change to a case is one of the events declared here."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.case_types import CLOSED, CaseType
from domain.errors import InvalidCommand, InvalidTransition
from domain.values import check_field_values, check_storable_text

MAX_TITLE = 500
MAX_NOTE = 20_000


class Case(Aggregate):
    """A case (a claim, a patient file, a complaint) rebuilt from its events.

    Public methods are commands: they check the rules, then record one event. The private
    ``_on_*`` methods only change state, because they also run when the case is replayed.
    """

    class Opened(Aggregate.Created):
        """A case was opened under a case type version, with its title and field values."""

        case_type: str
        case_type_version: int
        title: str
        fields: dict[str, Any]
        party_id: str | None
        status: str
        context: dict[str, Any]

    class Assigned(Aggregate.Event):
        """The case was given to a handler (``assignee`` is ``None`` when it was unassigned)."""

        assignee: str | None
        context: dict[str, Any]

    class StatusChanged(Aggregate.Event):
        """The case moved from one status to another while open."""

        from_status: str
        to_status: str
        reason: str | None
        context: dict[str, Any]

    class NoteAdded(Aggregate.Event):
        """Somebody wrote a note on the case."""

        text: str
        context: dict[str, Any]

    class Closed(Aggregate.Event):
        """The case was closed, with the reason for closing it."""

        reason: str
        context: dict[str, Any]

    class Reopened(Aggregate.Event):
        """A closed case was reopened, with the reason; it returns to its initial status."""

        reason: str
        status: str
        context: dict[str, Any]

    @event(Opened)
    def __init__(
        self,
        case_type: str,
        case_type_version: int,
        title: str,
        fields: dict[str, Any],
        party_id: str | None,
        status: str,
        context: dict[str, Any],
    ) -> None:
        self.case_type = case_type
        self.case_type_version = case_type_version
        self.title = title
        self.fields = dict(fields)
        self.party_id = party_id
        self.status = status
        self.assignee: str | None = None
        self.notes: list[dict[str, Any]] = []
        self.closed_reason: str | None = None

    @classmethod
    def open(
        cls,
        case_type: CaseType,
        title: str,
        fields: dict[str, Any],
        party_id: str | None,
        context: dict[str, Any],
    ) -> Case:
        """Open a new case of ``case_type``."""
        check_text("title", title, MAX_TITLE)
        check_field_values(fields)
        if party_id is not None:
            check_storable_text(party_id, "party_id: ")
        return cls(
            case_type=case_type.name,
            case_type_version=case_type.version,
            title=title.strip(),
            fields=fields,
            party_id=party_id,
            status=case_type.initial_status,
            context=stamp(context, case_type.name, case_type.version),
        )

    @property
    def is_closed(self) -> bool:
        return self.status == CLOSED

    def assign(self, assignee: str | None, context: dict[str, Any]) -> None:
        """Give the case to ``assignee`` (``None`` unassigns it)."""
        self.check_open("assign")
        if assignee is not None:
            check_text("assignee", assignee, 200)
        self._on_assigned(assignee=assignee, context=self.stamp(context))

    def change_status(
        self, case_type: CaseType, status: str, reason: str | None, context: dict[str, Any]
    ) -> None:
        """Move the open case to another status of its case type."""
        self.check_open("change the status of")
        case_type.check_status(status)
        if status == self.status:
            raise InvalidTransition(
                f"the case is already {status!r}", hint="send a different status"
            )
        self._on_status_changed(
            from_status=self.status, to_status=status, reason=reason, context=self.stamp(context)
        )

    def add_note(self, text: str, context: dict[str, Any]) -> None:
        """Add a note; notes may be written on open and closed cases alike."""
        check_text("text", text, MAX_NOTE)
        self._on_note_added(text=text, context=self.stamp(context))

    def close(self, reason: str, context: dict[str, Any]) -> None:
        """Close the case."""
        self.check_open("close")
        check_text("reason", reason, MAX_NOTE)
        self._on_closed(reason=reason, context=self.stamp(context))

    def reopen(self, case_type: CaseType, reason: str, context: dict[str, Any]) -> None:
        """Reopen a closed case."""
        if not self.is_closed:
            raise InvalidTransition(
                "the case is not closed, so it cannot be reopened",
                hint="only closed cases can be reopened",
            )
        check_text("reason", reason, MAX_NOTE)
        status = case_type.initial_status
        self._on_reopened(reason=reason, status=status, context=self.stamp(context))

    def stamp(self, context: dict[str, Any]) -> dict[str, Any]:
        """The context with the case type version this case runs under, for the envelope."""
        return stamp(context, self.case_type, self.case_type_version)

    def check_open(self, action: str) -> None:
        if self.is_closed:
            raise InvalidTransition(
                f"cannot {action} a closed case", hint="reopen the case first"
            )

    @event(Assigned)
    def _on_assigned(self, assignee: str | None, context: dict[str, Any]) -> None:
        self.assignee = assignee

    @event(StatusChanged)
    def _on_status_changed(
        self, from_status: str, to_status: str, reason: str | None, context: dict[str, Any]
    ) -> None:
        self.status = to_status

    @event(NoteAdded)
    def _on_note_added(self, text: str, context: dict[str, Any]) -> None:
        self.notes.append(
            {"version": self.version + 1, "text": text, "author": context.get("actor_id")}
        )

    @event(Closed)
    def _on_closed(self, reason: str, context: dict[str, Any]) -> None:
        self.status = CLOSED
        self.closed_reason = reason

    @event(Reopened)
    def _on_reopened(self, reason: str, status: str, context: dict[str, Any]) -> None:
        self.status = status
        self.closed_reason = None


def stamp(context: dict[str, Any], case_type: str, version: int) -> dict[str, Any]:
    return {**context, "case_type": case_type, "case_type_version": version}


def check_text(name: str, value: str, max_length: int) -> None:
    """Refuse blank or oversized text values with a message naming the field."""
    if not value or not value.strip():
        raise InvalidCommand(f"{name} must not be blank", hint=f"give a non-empty {name}")
    check_storable_text(value, f"{name}: ")
    if len(value) > max_length:
        raise InvalidCommand(
            f"{name} is {len(value)} characters long; the limit is {max_length}",
            hint=f"shorten the {name}",
        )
