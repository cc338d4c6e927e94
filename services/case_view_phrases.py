"""The words caseledger itself writes into case views, in English and French: role and
priority names, the reasons a transition cannot be taken yet, and the sentences of a case's
timeline. A case type's own labels (states, fields, transitions) come from the case type;
these are the words around them.

A language other than English or French gets the English words (with the case type's labels
in that language, when it has them).
"""

from __future__ import annotations

from collections.abc import Sequence

LANGUAGES = ("en", "fr")


def phrase_language(language: str) -> str:
    """The language caseledger's own words are written in for a reader of ``language``."""
    return language if language in LANGUAGES else "en"


def first_known(languages: Sequence[str]) -> str:
    """The first of ``languages`` caseledger writes in, else English."""
    return next((lang for lang in languages if lang in LANGUAGES), "en")


ROLES = {
    "en": {
        "admin": "Administrator",
        "manager": "Manager",
        "handler": "Handler",
        "integrator": "Integrator",
        "auditor": "Auditor",
    },
    "fr": {
        "admin": "Administrateur",
        "manager": "Responsable",
        "handler": "Gestionnaire",
        "integrator": "Intégrateur",
        "auditor": "Auditeur",
    },
}
PRIORITIES = {
    "en": {"low": "Low", "normal": "Normal", "high": "High", "urgent": "Urgent"},
    "fr": {"low": "Basse", "normal": "Normale", "high": "Haute", "urgent": "Urgente"},
}
CHANNELS = {
    "en": {"email": "e-mail", "webhook": "webhook", "kafka": "Kafka"},
    "fr": {"email": "e-mail", "webhook": "webhook", "kafka": "Kafka"},
}
CLOSED_STATUS = {"en": "Closed", "fr": "Clôturé"}

# Sentences of the timeline, and reasons of blocked transitions. Placeholders: {actor} (a
# person, a key or "the rule x"), {noun} (the case, named by its case type), and the
# event's own values, already labelled. The French sentences name the case "le dossier",
# whatever its type: the type's label has no gender to agree with.
SENTENCES: dict[str, dict[str, str]] = {
    "en": {
        "opened": "{actor} opened the {noun} “{title}”",
        "assigned": "{actor} assigned the {noun} to {assignee}",
        "reassigned": "{actor} reassigned the {noun} from {before} to {assignee}",
        "unassigned": "{actor} unassigned the {noun}",
        "unassigned_from": "{actor} unassigned the {noun} from {before}",
        "moved": "{actor} moved the {noun} from {before} to {after}",
        "moved_by": "{actor} moved the {noun} from {before} to {after} ({transition})",
        "fields_changed": "{actor} changed {fields}",
        "fields_hidden": "{actor} changed fields your role does not see",
        "note": "{actor} added a note",
        "closed": "{actor} closed the {noun}",
        "reopened": "{actor} reopened the {noun} in {status}",
        "priority": "{actor} changed the priority from {before} to {after}",
        "routed": "{actor} put the {noun} in the queue {queue}",
        "rerouted": "{actor} moved the {noun} from the queue {before} to the queue {queue}",
        "unrouted": "{actor} took the {noun} out of the queue {before}",
        "escalated": "{actor} escalated the {noun} (escalation {level})",
        "rule_fired": "The rule {rule} fired because {trigger}",
        "sla_acted": "{sla}: the actions for {milestone} ran",
        "sla_started": "{sla}: the clock started",
        "sla_paused": "{sla}: the clock paused",
        "sla_resumed": "{sla}: the clock resumed",
        "sla_met": "{sla}: the clock stopped, deadline met",
        "sla_missed": "{sla}: the clock stopped, deadline missed",
        "sla_warned": "{sla}: {milestone} reached",
        "sla_goal": "{sla}: goal time passed",
        "sla_breached": "{sla}: deadline breached",
        "notification_requested": "{actor} requested the {channel} notification {name}",
        "notification_requested_to": "{actor} requested the {channel} notification {name} "
        "for {recipients}",
        "notification_sent": "The notification {name} was sent",
        "notification_failed": "The notification {name} could not be sent",
        "notification_failed_because": "The notification {name} could not be sent: {error}",
        "child_opened": "{actor} opened a child case: {child}",
        "migrated": "{actor} moved the {noun} to version {version} of its case type, from "
        "{before} to {after}",
        "legal_hold_placed": "{actor} put the {noun} on legal hold",
        "legal_hold_lifted": "{actor} lifted the legal hold",
        "personal_data_erased": "{actor} erased the personal data in the {noun}",
        "rule_actor_start": "The rule {rule}",
        "sla_actor_start": "The SLA {sla}",
        "sla_rule": "SLA {sla}",
        "warning_at": "the warning at {percent}%",
        "warning_bare": "warning at {percent}%",
        "goal": "the goal",
        "deadline": "the deadline",
        "quoted": "{sentence}: “{text}”",
        "fill_in": "Fill in {fields} first",
        "not_met": "The conditions for this step are not met yet",
        "and": " and ",
    },
    "fr": {
        "opened": "{actor} a ouvert le dossier « {title} »",
        "assigned": "{actor} a attribué le dossier à {assignee}",
        "reassigned": "{actor} a réattribué le dossier de {before} à {assignee}",
        "unassigned": "{actor} a retiré l'attribution du dossier",
        "unassigned_from": "{actor} a retiré le dossier à {before}",
        "moved": "{actor} a fait passer le dossier de « {before} » à « {after} »",
        "moved_by": "{actor} a fait passer le dossier de « {before} » à « {after} » ({transition})",
        "fields_changed": "{actor} a modifié {fields}",
        "fields_hidden": "{actor} a modifié des champs que votre rôle ne voit pas",
        "note": "{actor} a ajouté une note",
        "closed": "{actor} a clôturé le dossier",
        "reopened": "{actor} a rouvert le dossier en « {status} »",
        "priority": "{actor} a changé la priorité de « {before} » à « {after} »",
        "routed": "{actor} a placé le dossier dans la file {queue}",
        "rerouted": "{actor} a déplacé le dossier de la file {before} vers la file {queue}",
        "unrouted": "{actor} a retiré le dossier de la file {before}",
        "escalated": "{actor} a escaladé le dossier (escalade n° {level})",
        "rule_fired": "La règle {rule} s'est déclenchée car {trigger}",
        "sla_acted": "{sla} : les actions prévues pour {milestone} ont été lancées",
        "sla_started": "{sla} : le décompte a démarré",
        "sla_paused": "{sla} : le décompte est suspendu",
        "sla_resumed": "{sla} : le décompte a repris",
        "sla_met": "{sla} : le décompte est arrêté, échéance respectée",
        "sla_missed": "{sla} : le décompte est arrêté, échéance manquée",
        "sla_warned": "{sla} : {milestone} atteinte",
        "sla_goal": "{sla} : objectif dépassé",
        "sla_breached": "{sla} : échéance dépassée",
        "notification_requested": "{actor} a demandé la notification {name} ({channel})",
        "notification_requested_to": "{actor} a demandé la notification {name} ({channel}) "
        "pour {recipients}",
        "notification_sent": "La notification {name} a été envoyée",
        "notification_failed": "La notification {name} n'a pas pu être envoyée",
        "notification_failed_because": "La notification {name} n'a pas pu être envoyée : {error}",
        "child_opened": "{actor} a ouvert un dossier enfant : {child}",
        "migrated": "{actor} a fait passer le dossier à la version {version} de son type, de "
        "« {before} » à « {after} »",
        "legal_hold_placed": "{actor} a placé le dossier sous conservation légale",
        "legal_hold_lifted": "{actor} a levé la conservation légale",
        "personal_data_erased": "{actor} a effacé les données personnelles du dossier",
        "rule_actor_start": "La règle {rule}",
        "sla_actor_start": "Le délai {sla}",
        "sla_rule": "Délai {sla}",
        "warning_at": "l'alerte à {percent} %",
        "warning_bare": "alerte à {percent} %",
        "goal": "l'objectif",
        "deadline": "l'échéance",
        "quoted": "{sentence} : « {text} »",
        "fill_in": "Renseignez d'abord {fields}",
        "not_met": "Les conditions de cette étape ne sont pas encore remplies",
        "and": " et ",
    },
}

# Why a rule fired: the event that triggered it, as a clause ("because ...").
TRIGGERS: dict[str, dict[str, str]] = {
    "en": {
        "CaseOpened": "the {noun} was opened",
        "CaseAssigned": "the {noun} was assigned",
        "CaseStatusChanged": "the status changed",
        "CaseFieldsUpdated": "fields changed",
        "CaseNoteAdded": "a note was added",
        "CaseClosed": "the {noun} was closed",
        "CaseReopened": "the {noun} was reopened",
        "CasePriorityChanged": "the priority changed",
        "CaseRoutedToQueue": "the queue changed",
        "CaseEscalated": "the {noun} was escalated",
        "CaseSlaWarned": "an SLA warning was reached",
        "CaseSlaBreached": "an SLA deadline passed",
        "CaseMigrated": "the {noun} moved to another version of its case type",
    },
    "fr": {
        "CaseOpened": "le dossier a été ouvert",
        "CaseAssigned": "le dossier a été attribué",
        "CaseStatusChanged": "l'état a changé",
        "CaseFieldsUpdated": "des champs ont changé",
        "CaseNoteAdded": "une note a été ajoutée",
        "CaseClosed": "le dossier a été clôturé",
        "CaseReopened": "le dossier a été rouvert",
        "CasePriorityChanged": "la priorité a changé",
        "CaseRoutedToQueue": "la file a changé",
        "CaseEscalated": "le dossier a été escaladé",
        "CaseSlaWarned": "une alerte de délai a été atteinte",
        "CaseSlaBreached": "une échéance de délai a été dépassée",
        "CaseMigrated": "le dossier est passé à une autre version de son type",
    },
}


def say(language: str, key: str, **values: object) -> str:
    """The sentence ``key`` in ``language`` (English when caseledger does not write it)."""
    return SENTENCES[phrase_language(language)][key].format(**values)


def quoted(language: str, sentence: str, text: str | None) -> str:
    """``sentence``, followed by ``text`` in quotes when there is one."""
    return say(language, "quoted", sentence=sentence, text=text) if text else sentence


def listing(language: str, items: Sequence[str]) -> str:
    """``A, B and C`` (``A, B et C``)."""
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + say(language, "and") + items[-1]


def role_label(role: str, language: str) -> str:
    return ROLES[phrase_language(language)].get(role, role)


def priority_label(priority: str, language: str) -> str:
    return PRIORITIES[phrase_language(language)].get(priority, priority)


def channel_label(channel: str, language: str) -> str:
    return CHANNELS[phrase_language(language)].get(channel, channel)


def trigger_clause(language: str, trigger: str, noun: str) -> str:
    """Why a rule fired, from the type of the event that triggered it."""
    clause = TRIGGERS[phrase_language(language)].get(trigger, trigger)
    return clause.format(noun=noun)


def milestone_phrase(language: str, milestone: str, *, bare: bool = False) -> str:
    """``warning:75`` -> "the warning at 75%" (bare: "warning at 75%")."""
    kind, _, percent = milestone.partition(":")
    if kind == "warning" and percent:
        return say(language, "warning_bare" if bare else "warning_at", percent=percent)
    if kind in ("goal", "deadline"):
        return say(language, kind)
    return milestone


def humanized(name: str) -> str:
    """``first_response`` -> ``First response``: names that have no labels (SLAs, rules)."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else name


def noun_of(case_type_label: str) -> str:
    """How an English sentence names the case: "the {noun}" is "the insurance claim", the
    type's label in lower case unless it starts with an acronym (French says "le dossier")."""
    head = case_type_label[:2]
    if len(head) == 2 and head[0].isupper() and head[1].isupper():
        return case_type_label
    return case_type_label[:1].lower() + case_type_label[1:]
