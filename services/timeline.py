"""A case's history told as sentences in the case type's language: "Ann moved the insurance
claim from Under review to Approved (Approve)", with field edits as before and after (a
choice value with its label beside it), the rule behind each automatic step, SLA milestones,
and where ingested facts came from.

The timeline is built from the history as :class:`~services.case_views.CaseViews` filters it
for the reader's role, and only from that: a field value the role may not see is not in the
data these sentences are made of, so it can be in none of them. "Before" values come from
folding the earlier (filtered) events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from domain.case import Case
from domain.definition import Definition, label_in
from services.case_view_phrases import (
    CLOSED_STATUS,
    channel_label,
    humanized,
    listing,
    milestone_phrase,
    noun_of,
    phrase_language,
    priority_label,
    quoted,
    say,
    trigger_clause,
)

if TYPE_CHECKING:
    from services.case_views import SeenEvent

SLA_RULE = "sla:"  # the rule name under which an SLA milestone's actions run


@dataclass(frozen=True)
class ActorRef:
    id: str
    role: str


@dataclass(frozen=True)
class FieldChange:
    """A field's value before and after the event (``before`` is ``None`` when it was empty),
    and for a choice field each value's label in the timeline's language."""

    field: str
    label: str
    before: Any
    after: Any
    before_label: str | None = None
    after_label: str | None = None


@dataclass(frozen=True)
class RuleCause:
    """The rule of the case type that made an automatic step (``sla:<name>`` for the actions
    of an SLA milestone); rules have no labels of their own, SLA ones are named after it."""

    name: str
    label: str | None


@dataclass(frozen=True)
class SlaMark:
    """An SLA event: the SLA, the milestone it concerns (``warning:75``, ``goal``,
    ``deadline``) if any, when that milestone was due, the due times of a started or resumed
    clock, whether a stopped clock met its deadline, and the milestone told as a sentence."""

    name: str
    label: str
    milestone: str | None
    due_at: datetime | None
    due: dict[str, datetime]
    met: bool | None
    sentence: str


@dataclass(frozen=True)
class SourceRef:
    """Where an ingested event came from: the silo, the record there, the connector."""

    system: str
    record_id: str | None
    connector: str | None


@dataclass(frozen=True)
class TimelineEntry:
    """One event of the case as the reader sees it, told as a sentence."""

    version: int
    at: datetime
    recorded_at: datetime
    actor: ActorRef
    kind: str
    sentence: str
    changes: list[FieldChange] = field(default_factory=list)
    rule: RuleCause | None = None
    sla: SlaMark | None = None
    source: SourceRef | None = None
    withheld: list[str] = field(default_factory=list)


@dataclass
class Wording:
    """The labels a timeline's sentences use, in one language: those of the case type version
    the case runs under now, and of the version each event was recorded under for states and
    transitions (``definition_at``), and other case types' names (``type_label``)."""

    language: str
    definition: Definition
    definition_at: Callable[[int], Definition]
    type_label: Callable[[str], str]

    @property
    def noun(self) -> str:
        return noun_of(label_in(self.definition.labels, (self.language,), self.definition.name))

    def state(self, name: str, version: int) -> str:
        if name == "closed":
            return CLOSED_STATUS[phrase_language(self.language)]
        state = self.definition_at(version).states.get(name) or self.definition.states.get(name)
        return label_in(state.labels, (self.language,), name) if state else name

    def transition(self, name: str, version: int) -> str:
        move = self.definition_at(version).transitions.get(name)
        move = move or self.definition.transitions.get(name)
        return label_in(move.labels, (self.language,), name) if move else name

    def field(self, name: str) -> str:
        spec = self.definition.fields.get(name)
        return label_in(spec.labels, (self.language,), name) if spec else name

    def value(self, name: str, value: Any) -> str | None:
        """The label of a choice field's value; ``None`` for other fields."""
        spec = self.definition.fields.get(name)
        return spec.value_label(value, (self.language,)) if spec else None


@dataclass
class Folded:
    """What the earlier events made of the case, as far as the reader sees it."""

    fields: dict[str, Any] = field(default_factory=dict)
    assignee: str | None = None
    queue: str | None = None
    priority: str = "normal"
    notifications: dict[str, tuple[str, bool]] = field(default_factory=dict)
    """notification id -> (its name, whether part of it was withheld from the reader)."""


@dataclass(frozen=True)
class Step:
    """One event to tell: the filtered event, its data, the wording, and the folded case
    before it."""

    seen: SeenEvent
    words: Wording
    before: Folded

    @property
    def data(self) -> dict[str, Any]:
        return self.seen.envelope.data

    @property
    def language(self) -> str:
        return self.words.language

    @property
    def version(self) -> int:
        return self.seen.envelope.case_type_version

    @property
    def context(self) -> dict[str, Any]:
        return dict(getattr(self.seen.event, "context", {}) or {})

    @property
    def actor(self) -> str:
        """Who did it, to start a sentence: a person or key, or the rule that did it."""
        rule = self.context.get("rule")
        if rule and self.seen.envelope.actor.role == "system":
            if str(rule).startswith(SLA_RULE):
                return say(self.language, "sla_actor_start", sla=humanized(rule[len(SLA_RULE) :]))
            return say(self.language, "rule_actor_start", rule=rule)
        return self.seen.envelope.actor.id

    def say(self, key: str, **values: object) -> str:
        return say(self.language, key, actor=self.actor, noun=self.words.noun, **values)


@dataclass(frozen=True)
class Told:
    """What a step tells: its sentence, field changes, and SLA mark."""

    sentence: str
    changes: list[FieldChange] = field(default_factory=list)
    sla: SlaMark | None = None


def tell(seen: list[SeenEvent], words: Wording) -> list[TimelineEntry]:
    """The timeline of a case from its history as the reader's role sees it, oldest first."""
    teller = Teller(words)
    return [teller.tell(event) for event in seen]


class Teller:
    """Tells a case's history one event at a time, in order, remembering only the case as
    folded so far (an audit export tells a long history a page at a time)."""

    def __init__(self, words: Wording) -> None:
        self.words = words
        self.folded = Folded()

    def tell(self, event: SeenEvent) -> TimelineEntry:
        step = Step(event, self.words, self.folded)
        entry = _entry(step, TELLERS[type(event.event)](step))
        self.folded = fold(self.folded, event)
        return entry


def _entry(step: Step, told: Told) -> TimelineEntry:
    envelope = step.seen.envelope
    source = envelope.source
    return TimelineEntry(
        version=envelope.case_version,
        at=envelope.occurred_at.astimezone(UTC),
        recorded_at=envelope.recorded_at.astimezone(UTC),
        actor=ActorRef(envelope.actor.id, envelope.actor.role),
        kind=envelope.type,
        sentence=told.sentence,
        changes=told.changes,
        rule=_rule(step),
        sla=told.sla,
        source=SourceRef(source.system, source.record_id, source.connector) if source else None,
        withheld=list(step.seen.withheld),
    )


def _rule(step: Step) -> RuleCause | None:
    name = step.data.get("rule") if isinstance(step.seen.event, Case.RuleFired) else None
    name = name or step.context.get("rule")
    if not name:
        return None
    label = None
    if str(name).startswith(SLA_RULE):
        label = say(step.language, "sla_rule", sla=humanized(name[len(SLA_RULE) :]))
    return RuleCause(str(name), label)


def fold(folded: Folded, seen: SeenEvent) -> Folded:
    """The case as the reader sees it after ``seen``."""
    event, data = seen.event, seen.envelope.data
    after = Folded(
        dict(folded.fields),
        folded.assignee,
        folded.queue,
        folded.priority,
        dict(folded.notifications),
    )
    if isinstance(event, Case.Opened):
        after.fields.update(data.get("fields", {}))
    elif isinstance(event, Case.FieldsUpdated):
        after.fields.update(data.get("changes", {}))
    elif isinstance(event, Case.Assigned):
        after.assignee = data["assignee"]
    elif isinstance(event, Case.RoutedToQueue):
        after.queue = data["queue"]
    elif isinstance(event, Case.PriorityChanged):
        after.priority = data["priority"]
    elif isinstance(event, Case.NotificationRequested):
        after.notifications[data["notification_id"]] = (data["notification"], bool(seen.withheld))
    return after


# -- one teller per event type ----------------------------------------------------------------


def _changes(step: Step, values: dict[str, Any]) -> list[FieldChange]:
    words, earlier = step.words, step.before.fields
    return [
        FieldChange(
            field=name,
            label=words.field(name),
            before=earlier.get(name),
            after=value,
            before_label=words.value(name, earlier.get(name)),
            after_label=words.value(name, value),
        )
        for name, value in values.items()
    ]


def _opened(step: Step) -> Told:
    changes = _changes(step, step.data.get("fields", {}))
    return Told(step.say("opened", title=step.data["title"]), changes)


def _assigned(step: Step) -> Told:
    assignee, before = step.data["assignee"], step.before.assignee
    if assignee is None:
        key = "unassigned_from" if before else "unassigned"
        return Told(step.say(key, before=before))
    key = "reassigned" if before and before != assignee else "assigned"
    return Told(step.say(key, assignee=assignee, before=before))


def _status_changed(step: Step) -> Told:
    data, words, version = step.data, step.words, step.version
    before = words.state(data["from_status"], version)
    after = words.state(data["to_status"], version)
    if data.get("transition"):
        move = words.transition(data["transition"], version)
        sentence = step.say("moved_by", before=before, after=after, transition=move)
    else:
        sentence = step.say("moved", before=before, after=after)
    return Told(quoted(step.language, sentence, data.get("reason")))


def _fields_updated(step: Step) -> Told:
    changes = _changes(step, step.data.get("changes", {}))
    if not changes:
        return Told(step.say("fields_hidden"))
    labels = listing(step.language, [change.label for change in changes])
    return Told(step.say("fields_changed", fields=labels), changes)


def _note_added(step: Step) -> Told:
    return Told(quoted(step.language, step.say("note"), step.data["text"]))


def _closed(step: Step) -> Told:
    return Told(quoted(step.language, step.say("closed"), step.data["reason"]))


def _reopened(step: Step) -> Told:
    status = step.words.state(step.data["status"], step.version)
    return Told(quoted(step.language, step.say("reopened", status=status), step.data["reason"]))


def _priority_changed(step: Step) -> Told:
    before = priority_label(step.before.priority, step.language)
    after = priority_label(step.data["priority"], step.language)
    return Told(step.say("priority", before=before, after=after))


def _routed(step: Step) -> Told:
    queue, before = step.data["queue"], step.before.queue
    if queue is None:
        return Told(step.say("unrouted", before=before or "-"))
    return Told(step.say("rerouted" if before else "routed", queue=queue, before=before))


def _escalated(step: Step) -> Told:
    sentence = step.say("escalated", level=step.data["level"])
    return Told(quoted(step.language, sentence, step.data["reason"]))


def _rule_fired(step: Step) -> Told:
    rule, trigger = str(step.data["rule"]), str(step.data["trigger"])
    if rule.startswith(SLA_RULE) and trigger.startswith(SLA_RULE):
        milestone = trigger[len(SLA_RULE) :]
        sla = humanized(rule[len(SLA_RULE) :])
        phrase = milestone_phrase(step.language, milestone)
        return Told(step.say("sla_acted", sla=sla, milestone=phrase))
    clause = trigger_clause(step.language, trigger, step.words.noun)
    return Told(step.say("rule_fired", rule=rule, trigger=clause))


def _sla(step: Step, key: str, **mark: Any) -> Told:
    """An SLA event's sentence, which is also its mark's."""
    name = str(step.data["sla"])
    milestone = mark.get("milestone")
    phrase = milestone_phrase(step.language, milestone, bare=True) if milestone else ""
    sentence = say(step.language, key, sla=humanized(name), milestone=phrase)
    due_at = step.data.get("due_at")
    return Told(
        sentence,
        sla=SlaMark(
            name=name,
            label=humanized(name),
            milestone=milestone,
            due_at=_utc(due_at) if due_at else None,
            due={m: _utc(at) for m, at in step.data.get("due", {}).items()},
            met=mark.get("met"),
            sentence=sentence,
        ),
    )


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _sla_warned(step: Step) -> Told:
    milestone = str(step.data["milestone"])
    return _sla(step, "sla_goal" if milestone == "goal" else "sla_warned", milestone=milestone)


def _sla_stopped(step: Step) -> Told:
    met = bool(step.data["met"])
    return _sla(step, "sla_met" if met else "sla_missed", met=met)


def _notification_requested(step: Step) -> Told:
    data = step.data
    channel = channel_label(data["channel"], step.language)
    recipients = data.get("recipients")
    if recipients:
        to = listing(step.language, [str(r) for r in recipients])
        sentence = step.say(
            "notification_requested_to",
            name=data["notification"],
            channel=channel,
            recipients=to,
        )
    else:
        sentence = step.say("notification_requested", name=data["notification"], channel=channel)
    return Told(sentence)


def _notification_outcome(step: Step) -> tuple[str, bool]:
    return step.before.notifications.get(step.data["notification_id"], ("?", True))


def _notification_sent(step: Step) -> Told:
    name, _ = _notification_outcome(step)
    return Told(say(step.language, "notification_sent", name=name))


def _notification_failed(step: Step) -> Told:
    name, withheld = _notification_outcome(step)
    if withheld:  # the error may quote a recipient or the text the reader may not see
        return Told(say(step.language, "notification_failed", name=name))
    error = step.data["error"]
    return Told(say(step.language, "notification_failed_because", name=name, error=error))


def _child_opened(step: Step) -> Told:
    child = step.words.type_label(step.data["case_type"])
    return Told(step.say("child_opened", child=child))


def _migrated(step: Step) -> Told:
    data, words = step.data, step.words
    before = words.state(data["from_status"], data["from_version"])
    after = words.state(data["to_status"], data["to_version"])
    return Told(step.say("migrated", version=data["to_version"], before=before, after=after))


def _legal_hold(key: str) -> Callable[[Step], Told]:
    """A legal hold placed or lifted, or personal data erased: who, and why."""
    return lambda step: Told(quoted(step.language, step.say(key), step.data["reason"]))


TELLERS: dict[type[Case.Event], Callable[[Step], Told]] = {
    Case.Opened: _opened,
    Case.Assigned: _assigned,
    Case.StatusChanged: _status_changed,
    Case.FieldsUpdated: _fields_updated,
    Case.NoteAdded: _note_added,
    Case.Closed: _closed,
    Case.Reopened: _reopened,
    Case.PriorityChanged: _priority_changed,
    Case.RoutedToQueue: _routed,
    Case.Escalated: _escalated,
    Case.RuleFired: _rule_fired,
    Case.SlaStarted: lambda step: _sla(step, "sla_started"),
    Case.SlaPaused: lambda step: _sla(step, "sla_paused"),
    Case.SlaResumed: lambda step: _sla(step, "sla_resumed"),
    Case.SlaStopped: _sla_stopped,
    Case.SlaWarned: _sla_warned,
    Case.SlaBreached: lambda step: _sla(step, "sla_breached", milestone="deadline"),
    Case.NotificationRequested: _notification_requested,
    Case.NotificationSent: _notification_sent,
    Case.NotificationFailed: _notification_failed,
    Case.ChildOpened: _child_opened,
    Case.Migrated: _migrated,
    Case.LegalHoldPlaced: _legal_hold("legal_hold_placed"),
    Case.LegalHoldLifted: _legal_hold("legal_hold_lifted"),
    Case.PersonalDataErased: _legal_hold("personal_data_erased"),
}
"""How each event type of the case is told: one entry per class of ``Case.event_classes()``."""
