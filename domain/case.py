"""The Case aggregate: every change to a case is one of the events declared here.

Commands take the case type :class:`~domain.definition.Definition` the case is pinned to and,
where time matters (SLA clocks), ``now``; the domain never reads a clock itself.

A case in a final state (one its case type marks ``final``, or the administratively closed
state) is locked: its fields (but those marked ``editable_when_final``), its assignee and
queue and its state no longer change, except by reopening it (:class:`CaseIsFinal`, 409).
Notes, SLA and notification bookkeeping, legal holds, erasure and migrations still apply.
The command that puts a case in a final state is not locked by it: its rules may still
act (``closing=True``), e.g. fill in a settlement date at the moment of settling.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from copy import deepcopy
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.definition import CLOSED, PRIORITIES, Definition, View
from domain.envelope import event_id_for
from domain.errors import InvalidCommand, InvalidTransition, NotAllowed
from domain.event_names import event_type
from domain.personal_data import check_not_sealed, data_subject
from domain.sla import Clock, clock_changes, due_times, sla_named, worked_until
from domain.values import check_field_values, check_storable_text

MAX_TITLE = 500
#: Attributes whose entries are never changed once added: a copy shares the entries.
_APPEND_ONLY = frozenset({"notes", "children"})
_IMMUTABLE = (str, int, float, bool, type(None), datetime, timedelta, UUID)
MAX_NOTE = 20_000


class Case(Aggregate):
    """A case (a claim, a patient file, a complaint) rebuilt from its events.

    Public methods are commands: they check the rules, then record events. The private
    ``_on_*`` methods only change state, because they also run when the case is replayed.
    """

    #: The legal hold the case is on (reason, by, at), if any. Class-level defaults, so that
    #: snapshots taken before these attributes existed still load.
    legal_hold: dict[str, Any] | None = None
    #: The personal fields erased with the case's data subject (their values are ``None``).
    erased: tuple[str, ...] = ()
    #: The subject whose personal data was erased from the case (``None``: not erased).
    erased_subject: str | None = None

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
        """The case took a transition (named by ``transition``) from one status to another."""

        class_version = 2

        from_status: str
        to_status: str
        reason: str | None
        transition: str | None
        context: dict[str, Any]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["transition"] = None  # version 1 moved by status, not by named transition

    class FieldsUpdated(Aggregate.Event):
        """Field values changed; ``changes`` holds the new value of each changed field."""

        changes: dict[str, Any]
        context: dict[str, Any]

    class NoteAdded(Aggregate.Event):
        """Somebody wrote a note on the case."""

        text: str
        context: dict[str, Any]

    class Closed(Aggregate.Event):
        """The case was closed administratively, with the reason for closing it."""

        reason: str
        context: dict[str, Any]

    class Reopened(Aggregate.Event):
        """A closed case was reopened, with the reason; it returns to its initial status."""

        reason: str
        status: str
        context: dict[str, Any]

    class PriorityChanged(Aggregate.Event):
        """The case's priority changed (low, normal, high, urgent)."""

        priority: str
        context: dict[str, Any]

    class RoutedToQueue(Aggregate.Event):
        """The case was put in a work queue (``None`` takes it out of its queue)."""

        queue: str | None
        context: dict[str, Any]

    class Escalated(Aggregate.Event):
        """The case was escalated; ``level`` counts the escalations of this case."""

        reason: str
        level: int
        context: dict[str, Any]

    class RuleFired(Aggregate.Event):
        """A rule of the case type fired: the events that follow with this event as their
        cause are its actions. ``trigger`` is the event type (or SLA milestone) that fired it."""

        rule: str
        trigger: str
        trigger_version: int
        context: dict[str, Any]

    class SlaStarted(Aggregate.Event):
        """An SLA clock started (``due`` is empty when it starts paused)."""

        sla: str
        run: int
        started_at: str
        due: dict[str, str]
        context: dict[str, Any]

    class SlaPaused(Aggregate.Event):
        """An SLA clock paused, having counted ``worked_seconds`` of working time."""

        sla: str
        worked_seconds: float
        context: dict[str, Any]

    class SlaResumed(Aggregate.Event):
        """A paused SLA clock counts again; ``due`` holds the milestones' new due times."""

        sla: str
        run: int
        resumed_at: str
        due: dict[str, str]
        context: dict[str, Any]

    class SlaStopped(Aggregate.Event):
        """An SLA clock stopped; ``met`` tells whether its deadline was kept."""

        sla: str
        met: bool
        context: dict[str, Any]

    class SlaWarned(Aggregate.Event):
        """An SLA warning milestone passed (``warning:75`` or ``goal``)."""

        sla: str
        run: int
        milestone: str
        due_at: str
        context: dict[str, Any]

    class SlaBreached(Aggregate.Event):
        """An SLA deadline passed while its clock was running."""

        sla: str
        run: int
        due_at: str
        context: dict[str, Any]

    class NotificationRequested(Aggregate.Event):
        """A notification of the case type is due to be sent, with its rendered text."""

        notification_id: str
        notification: str
        channel: str
        recipients: list[str]
        subject: str | None
        body: str
        target: str | None
        context: dict[str, Any]

    class NotificationSent(Aggregate.Event):
        """A requested notification was delivered to its channel."""

        notification_id: str
        detail: str
        context: dict[str, Any]

    class NotificationFailed(Aggregate.Event):
        """A requested notification could not be delivered; ``error`` says why."""

        notification_id: str
        error: str
        context: dict[str, Any]

    class ChildOpened(Aggregate.Event):
        """A child case was opened from this case (by a rule)."""

        child_id: str
        case_type: str
        context: dict[str, Any]

    class Migrated(Aggregate.Event):
        """The case moved to another version of its case type, with a state mapping."""

        from_version: int
        to_version: int
        from_status: str
        to_status: str
        context: dict[str, Any]

    class LegalHoldPlaced(Aggregate.Event):
        """The case was put on legal hold: its personal data may not be erased until the
        hold is lifted."""

        reason: str
        context: dict[str, Any]

    class LegalHoldLifted(Aggregate.Event):
        """The case's legal hold was lifted."""

        reason: str
        context: dict[str, Any]

    class PersonalDataErased(Aggregate.Event):
        """The personal data of the case's data subject was erased: ``fields`` are the
        personal fields that become unreadable, everywhere, once the subject's key is
        destroyed (right after this event)."""

        subject: str
        fields: list[str]
        reason: str
        context: dict[str, Any]

    @classmethod
    def event_classes(cls) -> tuple[type[Case.Event], ...]:
        """The event classes declared above, in declared order (without the library's bases)."""
        return tuple(
            kind
            for kind in vars(cls).values()
            if isinstance(kind, type)
            and issubclass(kind, cls.Event)
            and kind not in (cls.Event, cls.Created)
        )

    @classmethod
    def event_types(cls) -> tuple[str, ...]:
        """The public names of the case's events (``CaseOpened``, ...), as published."""
        return tuple(event_type(kind) for kind in cls.event_classes())

    def __deepcopy__(self, memo: dict[int, Any]) -> Case:
        """A copy to run one command on (the ledger copies cached cases): its cost does not
        grow with the case's history, because notes and child ids, which are never changed
        once added, are shared with the original, in lists of the copy's own."""
        copied = object.__new__(type(self))
        memo[id(self)] = copied
        for name, value in self.__dict__.items():
            if name in _APPEND_ONLY:
                copied.__dict__[name] = list(value)
            elif isinstance(value, _IMMUTABLE):
                copied.__dict__[name] = value
            else:
                copied.__dict__[name] = deepcopy(value, memo)
        return copied

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
        self.queue: str | None = None
        self.priority = "normal"
        self.escalations = 0
        self.notes: list[dict[str, Any]] = []
        self.closed_reason: str | None = None
        self.clocks: dict[str, Clock] = {}
        self.notifications: dict[str, str] = {}
        self.children: list[str] = []
        self.parent_id: str | None = context.get("parent_case_id")

    @classmethod
    def open(
        cls,
        definition: Definition,
        title: str,
        fields: dict[str, Any],
        party_id: str | None,
        context: dict[str, Any],
        now: datetime,
        view: View | None = None,
    ) -> Case:
        """Open a new case of the case type ``definition``, starting its SLA clocks. With the
        opener's ``view``, only the fields it edits, and those the case type requires at
        opening, may be given (``None``: any field, e.g. for a rule's child case)."""
        check_text("title", title, MAX_TITLE)
        check_field_values(fields)
        check_not_sealed(fields)
        if view is not None and view.edit is not None:
            settable = view.edit | {n for n, spec in definition.fields.items() if spec.required}
            refused = sorted(set(fields) - settable)
            if refused:
                raise InvalidCommand(
                    f"your role may not set {', '.join(refused)} when opening a case",
                    hint=f"fields your role may set when opening a {definition.name} case: "
                    f"{', '.join(sorted(settable)) or 'none'}; leave the others out",
                )
        definition.check_fields(fields, opening=True)
        if party_id is not None:
            check_storable_text(party_id, "party_id: ")
        case = cls(
            case_type=definition.name,
            case_type_version=definition.version,
            title=title.strip(),
            fields=fields,
            party_id=party_id,
            status=definition.initial,
            context=stamp(context, definition.name, definition.version),
        )
        case.update_clocks(definition, None, context, now)
        return case

    @property
    def subject(self) -> str:
        """The data subject whose personal data the case holds (its party, else itself)."""
        return data_subject(self.party_id, self.id)

    @property
    def is_closed(self) -> bool:
        return self.status == CLOSED

    def is_done(self, definition: Definition) -> bool:
        """Closed, or in a final state of its case type: the case is then locked."""
        return definition.is_final(self.status)

    def locked_fields(self, definition: Definition, names: Iterable[str]) -> list[str]:
        """Which of ``names`` may not be changed now: none while the case is not done;
        once it is, all but those the case type marks ``editable_when_final``."""
        if not self.is_done(definition):
            return []
        return sorted(set(names) - definition.editable_when_final)

    # -- work on the case ------------------------------------------------------------------

    def assign(
        self,
        assignee: str | None,
        context: dict[str, Any],
        *,
        definition: Definition | None = None,
        closing: bool = False,
    ) -> None:
        """Give the case to ``assignee`` (``None`` unassigns it). ``definition`` tells which
        states are final (without it, only the closed state is known to be)."""
        self.check_not_final(definition, "assigned" if assignee else "unassigned", closing)
        if assignee is not None:
            check_text("assignee", assignee, 200)
        self._on_assigned(assignee=assignee, context=self.stamp(context))

    def route(
        self,
        queue: str | None,
        context: dict[str, Any],
        *,
        definition: Definition | None = None,
        closing: bool = False,
    ) -> None:
        """Put the case in work queue ``queue`` (``definition`` as for :meth:`assign`)."""
        self.check_not_final(definition, "routed to a queue", closing)
        if queue is not None:
            check_text("queue", queue, 200)
        if queue != self.queue:
            self._on_routed(queue=queue, context=self.stamp(context))

    def set_priority(self, priority: str, context: dict[str, Any]) -> None:
        if priority not in PRIORITIES:
            raise InvalidCommand(
                f"unknown priority {priority!r}", hint=f"use one of: {', '.join(PRIORITIES)}"
            )
        if priority != self.priority:
            self._on_priority_changed(priority=priority, context=self.stamp(context))

    def escalate(self, reason: str, context: dict[str, Any]) -> None:
        check_text("reason", reason, MAX_NOTE)
        self._on_escalated(reason=reason, level=self.escalations + 1, context=self.stamp(context))

    def transition(
        self,
        definition: Definition,
        name: str,
        reason: str | None,
        context: dict[str, Any],
        now: datetime,
        facts: Mapping[str, Any],
        *,
        closing: bool = False,
    ) -> None:
        """Take the transition ``name``: the role, the guard and the required fields must allow
        it. ``facts`` are what the guard reads (see ``domain.rules.facts``)."""
        self.check_not_final(definition, f"moved (transition {name!r})", closing)
        role = context.get("actor_role")
        move = definition.transition(name, self.status, role)
        missing = [f for f in move.requires if self.fields.get(f) is None]
        if missing:
            raise InvalidTransition(
                f"transition {name!r} needs the fields {', '.join(missing)}",
                hint="give them values (in this request's fields, or with PATCH /fields) first",
            )
        if move.guard is not None and not move.guard.holds(facts):
            raise InvalidTransition(
                f"transition {name!r} is not allowed now: its condition "
                f"{move.guard.source!r} does not hold",
                hint="change the case so the condition holds, or take another transition",
            )
        if reason is not None:
            check_text("reason", reason, MAX_NOTE)
        old = self.status
        self._on_status_changed(
            from_status=old,
            to_status=move.target,
            reason=reason,
            transition=name,
            context=self.stamp(context),
        )
        self.update_clocks(definition, old, context, now)

    def update_fields(
        self,
        definition: Definition,
        changes: dict[str, Any],
        context: dict[str, Any],
        view: View | None,
        *,
        closing: bool = False,
    ) -> None:
        """Change field values, as far as the role's ``view`` lets it (``None``: any field).
        A value equal to the field's own is no change, and is never refused as one."""
        check_field_values(changes)
        check_not_sealed(changes)
        if view is not None and view.edit is not None:
            refused = sorted(set(changes) - view.edit)
            if refused:
                editable = ", ".join(sorted(view.edit)) or "none"
                raise NotAllowed(
                    f"your role may not edit {', '.join(refused)}",
                    hint=f"fields your role may edit: {editable}",
                )
        definition.check_fields(changes, opening=False)
        changed = {k: v for k, v in changes.items() if self.fields.get(k) != v}
        locked = [] if closing else self.locked_fields(definition, changed)
        if locked:
            raise self._final(
                f"its fields may not be changed ({', '.join(locked)})",
                f"; a field that must stay editable on a case in a final state is marked "
                f"editable_when_final: true in the case type {definition.name!r}",
            )
        if changed:
            self._on_fields_updated(changes=changed, context=self.stamp(context))

    def add_note(self, text: str, context: dict[str, Any]) -> None:
        """Add a note; notes may be written on open and closed cases alike."""
        check_text("text", text, MAX_NOTE)
        self._on_note_added(text=text, context=self.stamp(context))

    def close(
        self, definition: Definition, reason: str, context: dict[str, Any], now: datetime
    ) -> None:
        """Close the case administratively, from any state that is not final."""
        self.check_not_final(definition, "closed", closing=False)
        check_text("reason", reason, MAX_NOTE)
        old = self.status
        self._on_closed(reason=reason, context=self.stamp(context))
        self.update_clocks(definition, old, context, now)

    def reopen(
        self, definition: Definition, reason: str, context: dict[str, Any], now: datetime
    ) -> None:
        """Reopen a closed case, or one in a final state; it returns to the initial state."""
        if not self.is_done(definition):
            raise InvalidTransition(
                "the case is not closed, so it cannot be reopened",
                hint="only closed cases (or cases in a final state) can be reopened",
            )
        check_text("reason", reason, MAX_NOTE)
        old = self.status
        self._on_reopened(reason=reason, status=definition.initial, context=self.stamp(context))
        self.update_clocks(definition, old, context, now)

    # -- legal hold and erasure ------------------------------------------------------------

    def place_legal_hold(self, reason: str, context: dict[str, Any]) -> None:
        """Put the case on legal hold (open or closed): erasure is refused until it is lifted."""
        check_text("reason", reason, MAX_NOTE)
        if self.legal_hold is not None:
            raise InvalidTransition(
                "the case is already on legal hold",
                hint=f"it was placed by {self.legal_hold.get('by')}: "
                f"{self.legal_hold.get('reason')}; lift it first to place another",
            )
        self._on_legal_hold_placed(reason=reason, context=self.stamp(context))

    def lift_legal_hold(self, reason: str, context: dict[str, Any]) -> None:
        check_text("reason", reason, MAX_NOTE)
        if self.legal_hold is None:
            raise InvalidTransition(
                "the case is not on legal hold", hint="there is no hold to lift"
            )
        self._on_legal_hold_lifted(reason=reason, context=self.stamp(context))

    def erase_personal_data(
        self, definition: Definition, reason: str, context: dict[str, Any]
    ) -> bool:
        """Record that the personal data of the case's subject is erased (its personal
        fields become ``None``); refused while the case is on legal hold. ``False``, and
        nothing recorded, when it was recorded already."""
        check_text("reason", reason, MAX_NOTE)
        if self.legal_hold is not None:
            raise LegalHoldBlocks(
                f"case {self.id} is on legal hold ({self.legal_hold.get('reason')}): its "
                "personal data may not be erased",
                hint="lift the hold first (DELETE /cases/{id}/legal-hold) when the law allows",
            )
        if self.erased_subject == self.subject:
            return False
        fields = sorted(definition.personal_fields | set(self.erased))
        self._on_personal_data_erased(
            subject=self.subject, fields=fields, reason=reason, context=self.stamp(context)
        )
        return True

    # -- SLA clocks ------------------------------------------------------------------------

    def update_clocks(
        self, definition: Definition, old: str | None, context: dict[str, Any], now: datetime
    ) -> None:
        """Start, pause, resume or stop SLA clocks after the status moved from ``old``."""
        calendar = definition.calendar
        for change in clock_changes(definition, self.clocks, old, self.status):
            sla = sla_named(definition, change.sla)
            assert sla is not None
            ctx = self.stamp(context)
            if change.action in ("start", "start_paused"):
                run = self.version + 1
                running = change.action == "start"
                due = due_times(sla, calendar, now, timedelta(0), [])
                self._on_sla_started(
                    sla=sla.name,
                    run=run,
                    started_at=now.isoformat(),
                    due=due if running else {},
                    context=ctx,
                )
                if not running:
                    self._on_sla_paused(sla=sla.name, worked_seconds=0.0, context=ctx)
            elif change.action == "pause":
                worked = worked_until(calendar, self.clocks[sla.name], now)
                self._on_sla_paused(
                    sla=sla.name, worked_seconds=worked.total_seconds(), context=ctx
                )
            elif change.action == "resume":
                clock = self.clocks[sla.name]
                due = due_times(sla, calendar, now, clock.worked, clock.fired)
                self._on_sla_resumed(
                    sla=sla.name, run=clock.run, resumed_at=now.isoformat(), due=due, context=ctx
                )
            else:
                met = "deadline" not in self.clocks[sla.name].fired
                self._on_sla_stopped(sla=sla.name, met=met, context=ctx)

    def reach_milestone(
        self,
        sla: str,
        run: int,
        milestone: str,
        context: dict[str, Any],
        now: datetime,
    ) -> bool:
        """Record that an SLA milestone passed, once: ``False`` (and nothing recorded) when the
        clock has moved on (stopped, paused, restarted), the milestone already fired, or it is
        not yet due."""
        clock = self.clocks.get(sla)
        if clock is None or clock.run != run or clock.running_since is None:
            return False
        due = clock.due.get(milestone)
        if due is None or datetime.fromisoformat(due) > now:
            return False
        ctx = self.stamp(context)
        if milestone == "deadline":
            self._on_sla_breached(sla=sla, run=run, due_at=due, context=ctx)
        else:
            self._on_sla_warned(sla=sla, run=run, milestone=milestone, due_at=due, context=ctx)
        return True

    # -- notifications, children, migration ------------------------------------------------

    def request_notification(
        self,
        notification: str,
        channel: str,
        recipients: list[str],
        subject: str | None,
        body: str,
        target: str | None,
        context: dict[str, Any],
    ) -> str:
        notification_id = event_id_for(self.id, self.version + 1)
        self._on_notification_requested(
            notification_id=notification_id,
            notification=notification,
            channel=channel,
            recipients=recipients,
            subject=subject,
            body=body,
            target=target,
            context=self.stamp(context),
        )
        return notification_id

    def record_delivery(
        self, notification_id: str, error: str | None, detail: str, context: dict[str, Any]
    ) -> bool:
        """Record the outcome of sending a notification, once; ``False`` if already recorded."""
        if self.notifications.get(notification_id) != "requested":
            return False
        if error is None:
            self._on_notification_sent(
                notification_id=notification_id, detail=detail, context=self.stamp(context)
            )
        else:
            self._on_notification_failed(
                notification_id=notification_id, error=error, context=self.stamp(context)
            )
        return True

    def record_child(self, child_id: UUID, case_type: str, context: dict[str, Any]) -> None:
        self._on_child_opened(
            child_id=str(child_id), case_type=case_type, context=self.stamp(context)
        )

    def migrate(
        self,
        old: Definition,
        new: Definition,
        to_status: str,
        context: dict[str, Any],
        now: datetime,
    ) -> None:
        """Move the case to version ``new.version`` of its type, in status ``to_status``.
        Clocks of the old version stop; the new version's clocks start from the new state."""
        for name in list(self.clocks):
            met = "deadline" not in self.clocks[name].fired
            self._on_sla_stopped(sla=name, met=met, context=self.stamp(context))
        self._on_migrated(
            from_version=self.case_type_version,
            to_version=new.version,
            from_status=self.status,
            to_status=to_status,
            context=stamp(context, self.case_type, new.version),
        )
        self.update_clocks(new, None, context, now)

    # -- helpers ---------------------------------------------------------------------------

    def stamp(self, context: dict[str, Any]) -> dict[str, Any]:
        """The context with the case type version this case runs under, for the envelope."""
        return stamp(context, self.case_type, self.case_type_version)

    def check_not_final(self, definition: Definition | None, refused: str, closing: bool) -> None:
        """Refuse a command that would change a locked case (see the module's docstring):
        ``refused`` says what it would have done ("assigned"). ``closing``: the command
        that put the case in its final state is still running (its rules act)."""
        done = self.is_closed if definition is None else self.is_done(definition)
        if done and not closing:
            raise self._final(f"it may not be {refused}")

    def _final(self, refused: str, more: str = "") -> CaseIsFinal:
        where = "is closed" if self.is_closed else f"is in the final state {self.status!r}"
        return CaseIsFinal(
            f"case {self.id} {where}, so it is locked: {refused}",
            hint=f"reopen it first (POST /cases/{self.id}/reopen with a reason; managers and "
            f"admins may), then retry{more}",
        )

    # -- state changes (also run on replay) ------------------------------------------------

    @event(Assigned)
    def _on_assigned(self, assignee: str | None, context: dict[str, Any]) -> None:
        self.assignee = assignee

    @event(RoutedToQueue)
    def _on_routed(self, queue: str | None, context: dict[str, Any]) -> None:
        self.queue = queue

    @event(PriorityChanged)
    def _on_priority_changed(self, priority: str, context: dict[str, Any]) -> None:
        self.priority = priority

    @event(Escalated)
    def _on_escalated(self, reason: str, level: int, context: dict[str, Any]) -> None:
        self.escalations = level

    @event(StatusChanged)
    def _on_status_changed(
        self,
        from_status: str,
        to_status: str,
        reason: str | None,
        transition: str | None,
        context: dict[str, Any],
    ) -> None:
        self.status = to_status

    @event(FieldsUpdated)
    def _on_fields_updated(self, changes: dict[str, Any], context: dict[str, Any]) -> None:
        self.fields.update(changes)

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

    @event(RuleFired)
    def _on_rule_fired(
        self, rule: str, trigger: str, trigger_version: int, context: dict[str, Any]
    ) -> None:
        pass

    @event(SlaStarted)
    def _on_sla_started(
        self, sla: str, run: int, started_at: str, due: dict[str, str], context: dict[str, Any]
    ) -> None:
        self.clocks[sla] = Clock(
            run=run, running_since=datetime.fromisoformat(started_at), due=dict(due)
        )

    @event(SlaPaused)
    def _on_sla_paused(self, sla: str, worked_seconds: float, context: dict[str, Any]) -> None:
        clock = self.clocks[sla]
        clock.worked = timedelta(seconds=worked_seconds)
        clock.running_since = None
        clock.due = {}

    @event(SlaResumed)
    def _on_sla_resumed(
        self, sla: str, run: int, resumed_at: str, due: dict[str, str], context: dict[str, Any]
    ) -> None:
        clock = self.clocks[sla]
        clock.running_since = datetime.fromisoformat(resumed_at)
        clock.due = dict(due)

    @event(SlaStopped)
    def _on_sla_stopped(self, sla: str, met: bool, context: dict[str, Any]) -> None:
        del self.clocks[sla]

    @event(SlaWarned)
    def _on_sla_warned(
        self, sla: str, run: int, milestone: str, due_at: str, context: dict[str, Any]
    ) -> None:
        self.clocks[sla].fired.append(milestone)
        self.clocks[sla].due.pop(milestone, None)

    @event(SlaBreached)
    def _on_sla_breached(self, sla: str, run: int, due_at: str, context: dict[str, Any]) -> None:
        self.clocks[sla].fired.append("deadline")
        self.clocks[sla].due.pop("deadline", None)

    @event(NotificationRequested)
    def _on_notification_requested(
        self,
        notification_id: str,
        notification: str,
        channel: str,
        recipients: list[str],
        subject: str | None,
        body: str,
        target: str | None,
        context: dict[str, Any],
    ) -> None:
        self.notifications[notification_id] = "requested"

    @event(NotificationSent)
    def _on_notification_sent(
        self, notification_id: str, detail: str, context: dict[str, Any]
    ) -> None:
        self.notifications[notification_id] = "sent"

    @event(NotificationFailed)
    def _on_notification_failed(
        self, notification_id: str, error: str, context: dict[str, Any]
    ) -> None:
        self.notifications[notification_id] = "failed"

    @event(ChildOpened)
    def _on_child_opened(self, child_id: str, case_type: str, context: dict[str, Any]) -> None:
        self.children.append(child_id)

    @event(LegalHoldPlaced)
    def _on_legal_hold_placed(self, reason: str, context: dict[str, Any]) -> None:
        self.legal_hold = {
            "reason": reason,
            "by": context.get("actor_id"),
            "version": self.version + 1,
        }

    @event(LegalHoldLifted)
    def _on_legal_hold_lifted(self, reason: str, context: dict[str, Any]) -> None:
        self.legal_hold = None

    @event(PersonalDataErased)
    def _on_personal_data_erased(
        self, subject: str, fields: list[str], reason: str, context: dict[str, Any]
    ) -> None:
        self.fields = {
            name: None if name in fields else value for name, value in self.fields.items()
        }
        self.erased = tuple(sorted(set(self.erased) | set(fields)))
        self.erased_subject = subject

    @event(Migrated)
    def _on_migrated(
        self,
        from_version: int,
        to_version: int,
        from_status: str,
        to_status: str,
        context: dict[str, Any],
    ) -> None:
        self.case_type_version = to_version
        self.status = to_status


RULE_TRIGGERS: tuple[type[Case.Event], ...] = (
    Case.Opened,
    Case.Assigned,
    Case.StatusChanged,
    Case.FieldsUpdated,
    Case.NoteAdded,
    Case.Closed,
    Case.Reopened,
    Case.PriorityChanged,
    Case.RoutedToQueue,
    Case.Escalated,
    Case.SlaWarned,
    Case.SlaBreached,
    Case.Migrated,
)
"""The events a case type's rules may react to (``on:``). The others are the bookkeeping of
rules, SLA clocks, notifications and child cases, which follow from these."""


def rule_trigger_types() -> tuple[str, ...]:
    """The names of :data:`RULE_TRIGGERS`, as a case-type document writes them."""
    return tuple(event_type(kind) for kind in RULE_TRIGGERS)


class CaseIsFinal(InvalidTransition):
    """The case is in a final state (or closed), so it is locked: it may not be changed,
    assigned or moved until it is reopened."""

    code = "case_final"


class LegalHoldBlocks(InvalidTransition):
    """The case is on legal hold, so its personal data may not be erased."""

    code = "legal_hold"


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
