"""Rules: when an event happens on a case and a condition holds, the case type's actions run.

After every command the service calls :func:`react` with the events the command recorded.
Each rule whose ``on`` lists an event's type, and whose condition holds on the case's facts,
records a ``RuleFired`` event and then its actions, each as ordinary case events whose context
names the rule and the case-type version. Events caused by rules may fire rules in turn, up to
:data:`MAX_DEPTH` links and :data:`MAX_FIRINGS` firings per command, so a badly configured
pair of rules cannot loop forever.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from domain.case import Case
from domain.definition import Action, Definition, Recipient
from domain.envelope import event_id_for
from domain.errors import BudgetExceeded, DomainError
from domain.event_names import event_data, event_type

MAX_DEPTH = 4
MAX_FIRINGS = 100  # per command: a bound even when several rules feed each other
MAX_CHILDREN = 50  # child cases one command may open, children of children included
RULES_ACTOR = "rules"

DefinitionLookup = Callable[[str], Definition]
"""The current published version of a case type, by name (for ``open_child``)."""


@dataclass(frozen=True)
class RuleRun:
    """One command's work on one case, as rules and commands see it.

    ``definition`` is the case-type version whose rules react (for a command: the version the
    case is pinned to); ``context`` is the command's context; ``case_types`` finds the current
    version of another case type (for ``open_child``); ``children`` collects the child cases
    opened so far, which are saved with the case. ``closing``: this command moved the case's
    state, so its rules may still act on a case it put in a final state (``domain.case``).
    """

    case: Case
    definition: Definition
    context: dict[str, Any]
    now: datetime
    case_types: DefinitionLookup
    children: list[Case] = field(default_factory=list)
    closing: bool = False


#: The events that move a case's state: after one of them in a command, that command's rules
#: may still act on the case even if it is now in a final state.
STATE_MOVES = (Case.StatusChanged, Case.Closed, Case.Reopened, Case.Migrated)


@dataclass(frozen=True)
class Firing:
    """A rule (or an SLA milestone's actions) firing: its name, what triggered it (an event
    type or ``sla:<milestone>``) at which case version, and the actions to run."""

    rule: str
    trigger: str
    trigger_version: int
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Reaction:
    """What the rules did: the case changed in place; new child cases are to be saved with it."""

    children: list[Case]
    fired: int


def facts(
    case: Case, event: object | None = None, actor: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What conditions, decision tables and templates can read about a case (and about the
    event that triggered a rule: its type and data, as published)."""
    return {
        "case": {
            "id": str(case.id),
            "case_type": case.case_type,
            "case_type_version": case.case_type_version,
            "title": case.title,
            "status": case.status,
            "priority": case.priority,
            "assignee": case.assignee,
            "queue": case.queue,
            "version": case.version,
            "party_id": case.party_id,
            "escalations": case.escalations,
        },
        "fields": dict(case.fields),
        "event": {
            "type": event_type(type(event)) if event is not None else "",
            "data": event_data(event) if event is not None else {},
        },
        "actor": dict(actor or {}),
    }


def react(run: RuleRun, start: int = 0) -> Reaction:
    """Run the rules triggered by the case's pending events from index ``start`` on."""
    case = run.case
    depth = {index: 0 for index in range(start, len(case.pending_events))}
    index, fired = start, 0
    actor = {"id": run.context.get("actor_id"), "role": run.context.get("actor_role")}
    moved, scanned = False, start  # whether this command's events moved the case's state
    while index < len(case.pending_events):
        trigger = case.pending_events[index]
        level = depth.get(index, 0)
        index += 1
        if level >= MAX_DEPTH:
            continue
        known: dict[str, Any] = {}
        kind = event_type(type(trigger))
        for rule in run.definition.rules:
            if fired >= MAX_FIRINGS:
                break
            if kind not in rule.on:
                continue
            if rule.condition is not None:
                if known.get("version") != case.version:  # the facts change as rules act
                    known = {"version": case.version, "facts": facts(case, trigger, actor)}
                if not rule.condition.holds(known["facts"]):
                    continue
            before = len(case.pending_events)
            if not moved:
                moved = any(isinstance(e, STATE_MOVES) for e in case.pending_events[scanned:])
                scanned = before
            firing = Firing(rule.name, kind, trigger.originator_version, rule.actions)
            run_actions(replace(run, closing=moved) if moved else run, firing)
            fired += 1
            for new in range(before, len(case.pending_events)):
                depth[new] = level + 1
    return Reaction(run.children, fired)


def run_actions(run: RuleRun, firing: Firing) -> None:
    """Record ``RuleFired`` for the firing rule, then each action as events caused by it."""
    case = run.case
    base = {
        **run.context,
        "actor_id": RULES_ACTOR,
        "actor_role": "system",
        "rule": firing.rule,
        "occurred_at": None,
    }
    case._on_rule_fired(
        rule=firing.rule,
        trigger=firing.trigger,
        trigger_version=firing.trigger_version,
        context=case.stamp(base),
    )
    caused = {**base, "causation_id": event_id_for(case.id, case.version)}
    for action in firing.actions:
        try:
            _ACTIONS[action.kind](run, action, caused)
        except BudgetExceeded:
            raise
        except DomainError:
            # An action that does not apply now (a transition not available from this state,
            # a value the field refuses) is skipped; the RuleFired event stays as the record.
            continue


def _assign(run: RuleRun, action: Action, ctx: dict[str, Any]) -> None:
    case = run.case
    outputs: Mapping[str, Any] = action.params
    if action.decision is not None:
        outputs = action.decision.decide(facts(case))
    definition, closing = run.definition, run.closing
    if outputs.get("queue"):
        case.route(str(outputs["queue"]), ctx, definition=definition, closing=closing)
    if outputs.get("user"):
        case.assign(str(outputs["user"]), ctx, definition=definition, closing=closing)
    if outputs.get("priority"):
        case.set_priority(str(outputs["priority"]), ctx)


def _set_field(run: RuleRun, action: Action, ctx: dict[str, Any]) -> None:
    changes = {action.params["field"]: action.params["value"]}
    run.case.update_fields(run.definition, changes, ctx, view=None, closing=run.closing)


def _set_priority(run: RuleRun, action: Action, ctx: dict[str, Any]) -> None:
    run.case.set_priority(action.params["value"], ctx)


def _transition(run: RuleRun, action: Action, ctx: dict[str, Any]) -> None:
    case, name = run.case, action.params["transition"]
    reason = f"rule {ctx['rule']}"
    case.transition(run.definition, name, reason, ctx, run.now, facts(case), closing=run.closing)


def _escalate(run: RuleRun, action: Action, ctx: dict[str, Any]) -> None:
    run.case.escalate(action.params["reason"], ctx)
    if action.params.get("queue"):
        route = action.params["queue"]
        run.case.route(route, ctx, definition=run.definition, closing=run.closing)


def _notify(run: RuleRun, action: Action, ctx: dict[str, Any]) -> None:
    case = run.case
    notification = run.definition.notifications[action.params["notification"]]
    known = facts(case)
    recipients = [r for r in (recipient(case, to) for to in notification.to) if r]
    if notification.channel == "email" and not recipients:
        return  # nobody to write to (e.g. the field with the address is empty): no message
    case.request_notification(
        notification=notification.name,
        channel=notification.channel,
        recipients=recipients,
        subject=notification.subject.render(known) if notification.subject else None,
        body=notification.body.render(known),
        target=notification.target,
        context=ctx,
    )


def recipient(case: Case, to: Recipient) -> str | None:
    """A recipient as an address the channel understands (``role:manager`` for a role)."""
    if to.kind == "assignee":
        return case.assignee
    if to.kind == "field":
        value = case.fields.get(to.value)
        return value if isinstance(value, str) and value else None
    if to.kind == "role":
        return f"role:{to.value}"
    return to.value


class ActionSource(Protocol):
    """Actions computed when the rule fires (a plugin's, ``services.plugins``), already
    checked like the document's own; raises ``BudgetExceeded`` when it cannot give them."""

    def actions(self, facts: Mapping[str, Any]) -> Sequence[Action]: ...


def _plugin(run: RuleRun, action: Action, ctx: dict[str, Any]) -> None:
    """Run the actions a plugin gives for the case's facts, each as a document action would
    run (one that does not apply now is skipped); a plugin gives no ``plugin`` action."""
    source: ActionSource = action.params["call"]
    for produced in source.actions(facts(run.case)):
        try:
            if produced.kind != "plugin":
                _ACTIONS[produced.kind](run, produced, ctx)
        except BudgetExceeded:
            raise
        except DomainError:
            continue


def _open_child(run: RuleRun, action: Action, ctx: dict[str, Any]) -> None:
    generation = int(ctx.get("generation", 0)) + 1
    if generation > MAX_DEPTH:
        return  # a chain of rules opening children of children stops here
    if len(run.children) >= MAX_CHILDREN:
        raise BudgetExceeded(
            f"rule {ctx.get('rule')!r} would open more than {MAX_CHILDREN} child cases in one "
            "command",
            hint="open fewer child cases per rule, or open them from separate commands",
        )
    case, params = run.case, action.params
    child_type = run.case_types(params["case_type"])
    title = params["title"]
    rendered = title.render(facts(case)) if hasattr(title, "render") else str(title)
    child_ctx = {**ctx, "parent_case_id": str(case.id), "generation": generation}
    fields = dict(params.get("fields") or {})
    child = Case.open(child_type, rendered, fields, case.party_id, child_ctx, run.now)
    run.children.append(child)
    react(replace(run, case=child, definition=child_type, context=child_ctx))
    case.record_child(child.id, child_type.name, ctx)


_ACTIONS: dict[str, Callable[[RuleRun, Action, dict[str, Any]], None]] = {
    "assign": _assign,
    "set_field": _set_field,
    "set_priority": _set_priority,
    "transition": _transition,
    "escalate": _escalate,
    "notify": _notify,
    "open_child": _open_child,
    "plugin": _plugin,
}
