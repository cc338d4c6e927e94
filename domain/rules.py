"""Rules: when an event happens on a case and a condition holds, the case type's actions run.

After every command the service calls :func:`react` with the events the command recorded.
Each rule whose ``on`` lists an event's type, and whose condition holds on the case's facts,
records a ``RuleFired`` event and then its actions, each as ordinary case events whose context
names the rule and the case-type version. Events caused by rules may fire rules in turn, up to
:data:`MAX_DEPTH` links and :data:`MAX_FIRINGS` firings per command, so a badly configured
pair of rules cannot loop forever.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.case import Case
from domain.definition import Action, Definition, Recipient
from domain.envelope import event_id_for
from domain.errors import BudgetExceeded, DomainError

MAX_DEPTH = 4
MAX_FIRINGS = 100  # per command: a bound even when several rules feed each other
MAX_CHILDREN = 50  # child cases one command may open, children of children included
RULES_ACTOR = "rules"

DefinitionLookup = Callable[[str], Definition]
"""The current published version of a case type, by name (for ``open_child``)."""


@dataclass(frozen=True)
class Reaction:
    """What the rules did: the case changed in place; new child cases are to be saved with it."""

    children: list[Case]
    fired: int


def event_type(event: Any) -> str:
    return f"Case{type(event).__name__}"


def facts(
    case: Case, event: Any | None = None, actor: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What conditions, decision tables and templates can read about a case."""
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
            "type": event_type(event) if event is not None else "",
            "data": _event_data(event),
        },
        "actor": dict(actor or {}),
    }


def _event_data(event: Any) -> dict[str, Any]:
    if event is None:
        return {}
    hidden = {"originator_id", "originator_version", "timestamp", "context"}
    return {k: v for k, v in event.__dict__.items() if k not in hidden}


def react(
    case: Case,
    definition: Definition,
    start: int,
    context: dict[str, Any],
    now: datetime,
    lookup: DefinitionLookup,
) -> Reaction:
    """Run the rules triggered by the case's pending events from index ``start`` on."""
    children: list[Case] = []
    depth = {index: 0 for index in range(start, len(case.pending_events))}
    index, fired = start, 0
    actor = {"id": context.get("actor_id"), "role": context.get("actor_role")}
    while index < len(case.pending_events):
        trigger = case.pending_events[index]
        level = depth.get(index, 0)
        index += 1
        if level >= MAX_DEPTH:
            continue
        known: dict[str, Any] = {}
        kind = event_type(trigger)
        for rule in definition.rules:
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
            run_actions(
                case,
                definition,
                rule.name,
                kind,
                trigger.originator_version,
                rule.actions,
                context,
                now,
                lookup,
                children,
            )
            fired += 1
            for new in range(before, len(case.pending_events)):
                depth[new] = level + 1
    return Reaction(children, fired)


def run_actions(
    case: Case,
    definition: Definition,
    rule: str,
    trigger: str,
    trigger_version: int,
    actions: tuple[Action, ...],
    context: dict[str, Any],
    now: datetime,
    lookup: DefinitionLookup,
    children: list[Case],
) -> None:
    """Record ``RuleFired`` for ``rule``, then each action as events caused by it."""
    base = {
        **context,
        "actor_id": RULES_ACTOR,
        "actor_role": "system",
        "rule": rule,
        "occurred_at": None,
    }
    case._on_rule_fired(
        rule=rule, trigger=trigger, trigger_version=trigger_version, context=case.stamp(base)
    )
    caused = {**base, "causation_id": event_id_for(case.id, case.version)}
    for action in actions:
        try:
            _ACTIONS[action.kind](case, definition, action, caused, now, lookup, children)
        except BudgetExceeded:
            raise
        except DomainError:
            # An action that does not apply now (a transition not available from this state,
            # a value the field refuses) is skipped; the RuleFired event stays as the record.
            continue


def _assign(case: Case, d: Definition, a: Action, ctx: dict[str, Any], *_: Any) -> None:
    outputs: Mapping[str, Any] = a.params
    if a.decision is not None:
        outputs = a.decision.decide(facts(case))
    if outputs.get("queue"):
        case.route(str(outputs["queue"]), ctx)
    if outputs.get("user"):
        case.assign(str(outputs["user"]), ctx)
    if outputs.get("priority"):
        case.set_priority(str(outputs["priority"]), ctx)


def _set_field(case: Case, d: Definition, a: Action, ctx: dict[str, Any], *_: Any) -> None:
    case.update_fields(d, {a.params["field"]: a.params["value"]}, ctx, view=None)


def _set_priority(case: Case, d: Definition, a: Action, ctx: dict[str, Any], *_: Any) -> None:
    case.set_priority(a.params["value"], ctx)


def _transition(
    case: Case, d: Definition, a: Action, ctx: dict[str, Any], now: datetime, *_: Any
) -> None:
    name = a.params["transition"]
    case.transition(d, name, f"rule {ctx['rule']}", ctx, now, facts(case))


def _escalate(case: Case, d: Definition, a: Action, ctx: dict[str, Any], *_: Any) -> None:
    case.escalate(a.params["reason"], ctx)
    if a.params.get("queue"):
        case.route(a.params["queue"], ctx)


def _notify(case: Case, d: Definition, a: Action, ctx: dict[str, Any], *_: Any) -> None:
    notification = d.notifications[a.params["notification"]]
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


def _open_child(
    case: Case,
    d: Definition,
    a: Action,
    ctx: dict[str, Any],
    now: datetime,
    lookup: DefinitionLookup,
    children: list[Case],
) -> None:
    generation = int(ctx.get("generation", 0)) + 1
    if generation > MAX_DEPTH:
        return  # a chain of rules opening children of children stops here
    if len(children) >= MAX_CHILDREN:
        raise BudgetExceeded(
            f"rule {ctx.get('rule')!r} would open more than {MAX_CHILDREN} child cases in one "
            "command",
            hint="open fewer child cases per rule, or open them from separate commands",
        )
    child_type = lookup(a.params["case_type"])
    title = a.params["title"]
    rendered = title.render(facts(case)) if hasattr(title, "render") else str(title)
    child_ctx = {**ctx, "parent_case_id": str(case.id), "generation": generation}
    child = Case.open(
        child_type, rendered, dict(a.params.get("fields") or {}), case.party_id, child_ctx, now
    )
    children.append(child)
    children.extend(react(child, child_type, 0, child_ctx, now, lookup).children)
    case.record_child(child.id, child_type.name, ctx)


_ACTIONS: dict[str, Callable[..., None]] = {
    "assign": _assign,
    "set_field": _set_field,
    "set_priority": _set_priority,
    "transition": _transition,
    "escalate": _escalate,
    "notify": _notify,
    "open_child": _open_child,
}
