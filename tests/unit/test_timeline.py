"""The timeline tells every event type of a case as a sentence, in English and in French,
from the history as the reader's role sees it: a hidden field is in no sentence. No I/O: the
history is made by the domain's own commands and rules."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest

from domain.case import Case
from domain.context import CommandContext
from domain.definition import Definition, Notification, View
from domain.rules import Firing, RuleRun, react, run_actions
from domain.sla import sla_named
from services.case_views import seen_event
from services.timeline import TELLERS, TimelineEntry, Wording, tell
from tests.case_types import from_yaml

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
REPAIR = """
name: repair
labels: {en: Repair job, fr: Réparation}
states:
  new: {initial: true, labels: {en: New, fr: Nouvelle}}
  working: {labels: {en: Working, fr: En cours}}
  on_hold: {labels: {en: On hold, fr: En pause}}
  done: {final: true, labels: {en: Done, fr: Terminée}}
transitions:
  start: {from: new, to: working, labels: {en: Start, fr: Démarrer}}
  hold: {from: working, to: on_hold, labels: {en: Hold, fr: Suspendre}}
  resume: {from: on_hold, to: working, labels: {en: Resume, fr: Reprendre}}
fields:
  cost: {type: number, labels: {en: Cost, fr: Coût}}
  contact: {type: text, labels: {en: Contact, fr: Contact}}
  secret: {type: text, labels: {en: Insider note, fr: Note interne}}
slas:
  - name: fix_time
    deadline: 2h
    warn_at: [50]
    paused_in: [on_hold]
    on_breach: [{escalate: {reason: fix time exceeded, queue: supervisors}}]
rules:
  - name: big_job
    on: [CaseFieldsUpdated]
    if: 'has(event.data.changes.cost) && fields.cost > 100'
    do:
      - set_priority: high
      - notify: tell_contact
      - open_child: {case_type: repair, title: "Check {{ case.title }}"}
notifications:
  tell_contact:
    channel: email
    to: [{field: contact}]
    subject: "Repair {{ case.title }}"
    body: "Cost {{ fields.cost }}"
views:
  handler: {see: [cost, contact], edit: [cost]}
"""
ANN = CommandContext("Ann", "handler").as_dict()
WATCHER = CommandContext("sla-watcher", "system").as_dict()
SECRETS = ("S3CRET-ONE", "S3CRET-TWO")


def collected(case: Case) -> list[Case.Event]:
    return [event for event in case.collect_events() if isinstance(event, Case.Event)]


@cache
def repair(version: int = 1) -> Definition:
    return from_yaml(REPAIR, version=version)


def command(case: Case, at: datetime, act: Callable[[RuleRun], None]) -> list[Case.Event]:
    """Run ``act`` on the case at ``at`` and let the rules react, as the ledger does."""
    run = RuleRun(case, repair(case.case_type_version), ANN, at, lambda name: repair())
    act(run)
    react(run)
    return collected(case)


def milestone(case: Case, name: str, at: datetime) -> list[Case.Event]:
    clock = case.clocks["fix_time"]
    assert case.reach_milestone("fix_time", clock.run, name, WATCHER, at)
    spec = sla_named(repair(), "fix_time")
    assert spec is not None
    if name == "deadline":
        run = RuleRun(case, repair(), WATCHER, at, lambda n: repair())
        run_actions(run, Firing("sla:fix_time", "sla:deadline", case.version, spec.on_breach))
    return collected(case)


@cache
def history() -> tuple[Case.Event, ...]:
    """A repair job through every event type a case has."""
    opened = {"cost": 50, "contact": "c@example.org", "secret": SECRETS[0]}
    case = Case.open(repair(), "Leak", opened, None, ANN, NOW)
    events = collected(case)
    hour = timedelta(hours=1)
    steps: list[tuple[datetime, Callable[[RuleRun], None]]] = [
        (NOW, lambda r: r.case.assign("Bob", ANN)),
        (NOW, lambda r: r.case.assign("Cy", ANN)),
        (NOW, lambda r: r.case.route("repairs", ANN)),
        (NOW, lambda r: r.case.transition(repair(), "start", None, ANN, r.now, {})),
        (
            NOW,
            lambda r: r.case.update_fields(
                repair(), {"cost": 150, "secret": SECRETS[1]}, ANN, None
            ),
        ),
        (NOW, lambda r: r.case.add_note("Called the customer", ANN)),
        (NOW, lambda r: r.case.transition(repair(), "hold", "waiting for parts", ANN, r.now, {})),
        (NOW, lambda r: r.case.transition(repair(), "resume", None, ANN, r.now, {})),
    ]
    for at, act in steps:
        events += command(case, at, act)
    events += milestone(case, "warning:50", NOW + hour)
    events += milestone(case, "deadline", NOW + 3 * hour)
    requested = [e for e in events if isinstance(e, Case.NotificationRequested)]
    case.record_delivery(requested[0].notification_id, "550 no such user c@example.org", "", ANN)
    events += command(case, NOW, lambda r: r.case.update_fields(repair(), {"cost": 300}, ANN, None))
    requested = [e for e in events if isinstance(e, Case.NotificationRequested)]
    case.record_delivery(requested[1].notification_id, None, "250 ok", ANN)
    events += collected(case)
    events += command(case, NOW, lambda r: r.case.assign(None, ANN))
    events += command(case, NOW, lambda r: r.case.route(None, ANN))
    events += command(case, NOW, lambda r: r.case.close(repair(), "fixed", ANN, r.now))
    events += command(case, NOW, lambda r: r.case.reopen(repair(), "leaks again", ANN, r.now))
    case.migrate(repair(1), repair(2), "working", ANN, NOW)
    case.place_legal_hold("litigation", ANN)
    case.lift_legal_hold("settled", ANN)
    case.erase_personal_data(repair(2), "the customer asked", ANN)
    events += collected(case)
    return tuple(events)


def _notification(case_type: str, version: int, name: str) -> Notification | None:
    return repair(version).notifications.get(name)


def timeline(role: str, language: str) -> list[TimelineEntry]:
    view = repair(2).view_for(role)
    seen = [seen_event(event, view, _notification) for event in history()]
    words = Wording(language, repair(2), repair, lambda name: "Repair job")
    return tell(seen, words)


def sentences(role: str, language: str) -> dict[str, list[str]]:
    told: dict[str, list[str]] = {}
    for entry in timeline(role, language):
        told.setdefault(entry.kind, []).append(entry.sentence)
    return told


# Each event type as an admin reads it, in English and French (the first of its kind, or
# the one named by its index when the history holds several).
TABLE: list[tuple[str, int, str, str]] = [
    ("CaseOpened", 0, "Ann opened the repair job “Leak”", "Ann a ouvert le dossier « Leak »"),
    ("CaseAssigned", 0, "Ann assigned the repair job to Bob", "Ann a attribué le dossier à Bob"),
    (
        "CaseAssigned",
        1,
        "Ann reassigned the repair job from Bob to Cy",
        "Ann a réattribué le dossier de Bob à Cy",
    ),
    ("CaseAssigned", 2, "Ann unassigned the repair job from Cy", "Ann a retiré le dossier à Cy"),
    (
        "CaseRoutedToQueue",
        0,
        "Ann put the repair job in the queue repairs",
        "Ann a placé le dossier dans la file repairs",
    ),
    (
        "CaseRoutedToQueue",
        1,
        "The SLA Fix time moved the repair job from the queue repairs to the queue supervisors",
        "Le délai Fix time a déplacé le dossier de la file repairs vers la file supervisors",
    ),
    (
        "CaseRoutedToQueue",
        2,
        "Ann took the repair job out of the queue supervisors",
        "Ann a retiré le dossier de la file supervisors",
    ),
    (
        "CaseStatusChanged",
        0,
        "Ann moved the repair job from New to Working (Start)",
        "Ann a fait passer le dossier de « Nouvelle » à « En cours » (Démarrer)",
    ),
    (
        "CaseStatusChanged",
        1,
        "Ann moved the repair job from Working to On hold (Hold): “waiting for parts”",
        "Ann a fait passer le dossier de « En cours » à « En pause » (Suspendre) : "
        "« waiting for parts »",
    ),
    (
        "CaseFieldsUpdated",
        0,
        "Ann changed Cost and Insider note",
        "Ann a modifié Coût et Note interne",
    ),
    (
        "CaseNoteAdded",
        0,
        "Ann added a note: “Called the customer”",
        "Ann a ajouté une note : « Called the customer »",
    ),
    ("CaseClosed", 0, "Ann closed the repair job: “fixed”", "Ann a clôturé le dossier : « fixed »"),
    (
        "CaseReopened",
        0,
        "Ann reopened the repair job in New: “leaks again”",
        "Ann a rouvert le dossier en « Nouvelle » : « leaks again »",
    ),
    (
        "CasePriorityChanged",
        0,
        "The rule big_job changed the priority from Normal to High",
        "La règle big_job a changé la priorité de « Normale » à « Haute »",
    ),
    (
        "CaseEscalated",
        0,
        "The SLA Fix time escalated the repair job (escalation 1): “fix time exceeded”",
        "Le délai Fix time a escaladé le dossier (escalade n° 1) : « fix time exceeded »",
    ),
    (
        "CaseRuleFired",
        0,
        "The rule big_job fired because fields changed",
        "La règle big_job s'est déclenchée car des champs ont changé",
    ),
    (
        "CaseRuleFired",
        1,
        "Fix time: the actions for the deadline ran",
        "Fix time : les actions prévues pour l'échéance ont été lancées",
    ),
    ("CaseSlaStarted", 0, "Fix time: the clock started", "Fix time : le décompte a démarré"),
    ("CaseSlaPaused", 0, "Fix time: the clock paused", "Fix time : le décompte est suspendu"),
    ("CaseSlaResumed", 0, "Fix time: the clock resumed", "Fix time : le décompte a repris"),
    (
        "CaseSlaStopped",
        0,
        "Fix time: the clock stopped, deadline missed",
        "Fix time : le décompte est arrêté, échéance manquée",
    ),
    (
        "CaseSlaWarned",
        0,
        "Fix time: warning at 50% reached",
        "Fix time : alerte à 50 % atteinte",
    ),
    ("CaseSlaBreached", 0, "Fix time: deadline breached", "Fix time : échéance dépassée"),
    (
        "CaseNotificationRequested",
        0,
        "The rule big_job requested the e-mail notification tell_contact for c@example.org",
        "La règle big_job a demandé la notification tell_contact (e-mail) pour c@example.org",
    ),
    (
        "CaseNotificationFailed",
        0,
        "The notification tell_contact could not be sent: 550 no such user c@example.org",
        "La notification tell_contact n'a pas pu être envoyée : 550 no such user c@example.org",
    ),
    (
        "CaseNotificationSent",
        0,
        "The notification tell_contact was sent",
        "La notification tell_contact a été envoyée",
    ),
    (
        "CaseChildOpened",
        0,
        "The rule big_job opened a child case: Repair job",
        "La règle big_job a ouvert un dossier enfant : Repair job",
    ),
    (
        "CaseMigrated",
        0,
        "Ann moved the repair job to version 2 of its case type, from New to Working",
        "Ann a fait passer le dossier à la version 2 de son type, de « Nouvelle » à « En cours »",
    ),
    (
        "CaseLegalHoldPlaced",
        0,
        "Ann put the repair job on legal hold: “litigation”",
        "Ann a placé le dossier sous conservation légale : « litigation »",
    ),
    (
        "CaseLegalHoldLifted",
        0,
        "Ann lifted the legal hold: “settled”",
        "Ann a levé la conservation légale : « settled »",
    ),
    (
        "CasePersonalDataErased",
        0,
        "Ann erased the personal data in the repair job: “the customer asked”",
        "Ann a effacé les données personnelles du dossier : « the customer asked »",
    ),
]


def test_the_table_covers_every_event_type_of_a_case() -> None:
    assert {kind for kind, *_ in TABLE} == set(Case.event_types())
    assert {kind for kind in sentences("admin", "en")} == set(Case.event_types())
    assert set(TELLERS) == set(Case.event_classes())


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize(
    ("kind", "index", "english", "french"), TABLE, ids=[f"{row[0]}-{row[1]}" for row in TABLE]
)
def test_each_event_type_reads_as_a_sentence(
    kind: str, index: int, english: str, french: str, language: str
) -> None:
    expected = english if language == "en" else french
    assert sentences("admin", language)[kind][index] == expected


def _changes(entries: list[TimelineEntry], kind: str) -> list[list[tuple[Any, ...]]]:
    return [
        [(c.field, c.label, c.before, c.after) for c in e.changes]
        for e in entries
        if e.kind == kind
    ]


def test_field_edits_show_before_and_after_folded_from_earlier_events() -> None:
    entries = timeline("admin", "fr")
    assert _changes(entries, "CaseFieldsUpdated") == [
        [("cost", "Coût", 50, 150), ("secret", "Note interne", SECRETS[0], SECRETS[1])],
        [("cost", "Coût", 150, 300)],
    ]
    assert _changes(entries, "CaseOpened")[0][0] == ("cost", "Coût", None, 50)


def test_automatic_steps_name_their_rule_and_sla_events_their_milestone() -> None:
    entries = {(e.kind, e.version): e for e in timeline("admin", "en")}
    priority = next(e for (kind, _), e in entries.items() if kind == "CasePriorityChanged")
    assert priority.rule is not None and priority.rule.name == "big_job"
    assert priority.actor.id == "rules"
    escalated = next(e for (kind, _), e in entries.items() if kind == "CaseEscalated")
    assert escalated.rule is not None
    assert (escalated.rule.name, escalated.rule.label) == ("sla:fix_time", "SLA Fix time")
    warned = next(e for (kind, _), e in entries.items() if kind == "CaseSlaWarned")
    assert warned.sla is not None and warned.rule is None
    assert (warned.sla.name, warned.sla.milestone) == ("fix_time", "warning:50")
    assert warned.sla.due_at == NOW + timedelta(hours=1)
    assert warned.sla.sentence == warned.sentence
    started = next(e for (kind, _), e in entries.items() if kind == "CaseSlaStarted")
    assert started.sla is not None and set(started.sla.due) == {"warning:50", "deadline"}
    assert all(e.at.tzinfo == UTC for e in entries.values())
    assert [e.version for e in timeline("admin", "en")] == list(range(1, len(history()) + 1))


def test_a_hidden_field_is_in_no_sentence_and_no_change() -> None:
    for language in ("en", "fr"):
        entries = timeline("handler", language)
        told = json.dumps([asdict(e) for e in entries], default=str, ensure_ascii=False)
        assert not any(value in told for value in SECRETS), language
        words = " ".join(e.sentence for e in entries) + repr([e.changes for e in entries])
        assert not any(name in words for name in ("secret", "Insider note", "Note interne"))
        updated = [e for e in entries if e.kind == "CaseFieldsUpdated"]
        assert updated[0].withheld == ["secret"]  # named as the history names it
        assert updated[0].sentence in ("Ann changed Cost", "Ann a modifié Coût")


def test_a_change_of_hidden_fields_only_says_so() -> None:
    case = Case.open(repair(), "Leak", {}, None, ANN, NOW)
    case.update_fields(repair(), {"secret": SECRETS[0]}, ANN, None)
    view = repair().view_for("handler")
    seen = [seen_event(e, view, _notification) for e in collected(case)]
    entries = tell(seen, Wording("en", repair(), repair, str))
    assert entries[-1].sentence == "Ann changed fields your role does not see"
    assert entries[-1].changes == [] and entries[-1].withheld == ["secret"]


def test_a_failed_notification_hides_its_error_when_its_recipients_are_hidden() -> None:
    no_contact = View("handler", see=frozenset({"cost"}))
    seen = [seen_event(e, no_contact, _notification) for e in history()]
    told = tell(seen, Wording("en", repair(2), repair, str))
    failed = next(e for e in told if e.kind == "CaseNotificationFailed")
    assert failed.sentence == "The notification tell_contact could not be sent"
    assert "c@example.org" not in json.dumps([asdict(e) for e in told], default=str)
