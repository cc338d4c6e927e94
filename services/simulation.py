"""Simulation: run a sample case under a case-type version (a draft, a published version, or
an unsaved document), in memory, and tell where it ends and what it would record.

    sample = Sample(title="Flood", fields={...}, steps=(Step(at=timedelta(hours=2),
                    command="transition", transition="start_review"),))
    result = simulate(definition, sample, case_types=registry.current)

The sample is opened at ``opened_at`` by its actor, then each step runs at its offset after
the opening, as the ledger would run the command (with the actor's role view), and the rules
react as they do in the ledger. Between steps, and after the last up to the horizon, the SLA
milestones that fall due are reached at their due time, as the SLA watcher would. A step the
definition refuses is reported as refused (with the domain's reason) and the simulation goes
on without it. It reuses the shadow of the what-if replay (``services.what_if.Shadow``):
nothing is stored, published or projected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.case import Case
from domain.definition import Definition
from domain.errors import BudgetExceeded, DomainError, InvalidCommand
from domain.event_names import event_data, event_type
from domain.rules import DefinitionLookup, RuleRun, facts
from services.what_if import Shadow, reach_milestones

COMMANDS = ("transition", "fields", "assign", "note", "close", "reopen")
"""What a step does: as ``POST /cases/{id}/transitions`` (with ``fields`` set first),
``PATCH`` of fields, assignment, note, close and reopen."""
MAX_STEPS = 100
MAX_HORIZON = timedelta(days=366)
DEFAULT_HORIZON = timedelta(days=30)
DEFAULT_BUDGET_S = 10.0


@dataclass(frozen=True)
class Step:
    """One command on the sample case, ``at`` after its opening, by ``actor_id`` in
    ``actor_role`` (the sample's actor when not given)."""

    at: timedelta
    command: str
    transition: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    assignee: str | None = None
    text: str | None = None
    """The reason of a transition, close or reopen; the text of a note."""
    actor_id: str | None = None
    actor_role: str | None = None

    def describe(self) -> str:
        if self.command == "transition":
            return f"transition {self.transition}"
        if self.command == "assign":
            return f"assign {self.assignee}" if self.assignee else "unassign"
        return self.command


@dataclass(frozen=True)
class Sample:
    """A case to simulate: how it opens, and what is done to it afterwards."""

    title: str
    fields: Mapping[str, Any]
    opened_at: datetime
    party_id: str | None = None
    actor_id: str = "sample"
    actor_role: str = "handler"
    steps: tuple[Step, ...] = ()
    horizon: timedelta = DEFAULT_HORIZON
    """How long after the opening (or the last step, if later) SLA milestones are reached."""


@dataclass(frozen=True)
class StepOutcome:
    index: int
    at: datetime
    step: str
    applied: bool
    reason: str | None = None
    hint: str | None = None


@dataclass(frozen=True)
class SlaDue:
    """An SLA clock of the case at the end: its milestones still due (while it runs), those
    reached, and whether its deadline was breached within the horizon."""

    sla: str
    running: bool
    due: Mapping[str, datetime]
    reached: tuple[str, ...]
    breached: bool


@dataclass(frozen=True)
class Recorded:
    """An event the simulated case would record."""

    type: str
    case_version: int
    at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class Simulation:
    """Where the sample case ends, and what it would record."""

    case_type: str
    version: int
    opened_at: datetime
    until: datetime
    """The end of the horizon: milestones due later are not reached."""
    case: Case
    steps: tuple[StepOutcome, ...]
    slas: tuple[SlaDue, ...]
    events: tuple[Recorded, ...]

    @property
    def breaches(self) -> list[Recorded]:
        return [e for e in self.events if e.type == event_type(Case.SlaBreached)]

    @property
    def notifications(self) -> list[Recorded]:
        return [e for e in self.events if e.type == event_type(Case.NotificationRequested)]


def simulate(
    definition: Definition,
    sample: Sample,
    case_types: DefinitionLookup,
    budget_s: float = DEFAULT_BUDGET_S,
) -> Simulation:
    """Run ``sample`` under ``definition`` (see the module's docstring). Raises the domain's
    refusal when the case could not even be opened (an unknown field, a wrong type), and
    :class:`BudgetExceeded` when it runs past ``budget_s`` (checked between steps)."""
    started = time.monotonic()
    if len(sample.steps) > MAX_STEPS:
        raise InvalidCommand(
            f"{len(sample.steps)} steps is over the limit of {MAX_STEPS}",
            hint="simulate fewer steps",
        )
    if sample.horizon > MAX_HORIZON:
        raise InvalidCommand(
            f"a horizon of {sample.horizon.days} days is over the limit of {MAX_HORIZON.days}",
            hint="simulate a shorter time",
        )
    own = definition.name

    def lookup(name: str) -> Definition:
        return definition if name == own else case_types(name)

    shadow = Shadow(definition, lookup)
    opener = {"actor_id": sample.actor_id, "actor_role": sample.actor_role}
    shadow.open(sample, _context(opener, "open"), sample.opened_at)
    outcomes = []
    for index, step in sorted(enumerate(sample.steps), key=lambda pair: pair[1].at):
        now = sample.opened_at + step.at
        _within(started, budget_s)
        reach_milestones(shadow, until=now)
        actor = {
            "actor_id": step.actor_id or sample.actor_id,
            "actor_role": step.actor_role or sample.actor_role,
        }
        try:
            shadow.attempt(_command(step), _context(actor, f"step-{index}"), now)
        except DomainError as error:
            outcomes.append(
                StepOutcome(index, now, step.describe(), False, error.message, error.hint)
            )
            continue
        outcomes.append(StepOutcome(index, now, step.describe(), True))
    last = max((step.at for step in sample.steps), default=timedelta(0))
    until = sample.opened_at + max(sample.horizon, last)
    _within(started, budget_s)
    reach_milestones(shadow, until=until)
    assert shadow.case is not None
    return Simulation(
        case_type=definition.name,
        version=definition.version,
        opened_at=sample.opened_at,
        until=until,
        case=shadow.case,
        steps=tuple(sorted(outcomes, key=lambda outcome: outcome.index)),
        slas=_slas(shadow.case, shadow.events),
        events=tuple(
            Recorded(event_type(type(e)), e.originator_version, at, event_data(e))
            for e, at in zip(shadow.events, shadow.at, strict=True)
        ),
    )


def _within(started: float, budget_s: float) -> None:
    if time.monotonic() - started > budget_s:
        raise BudgetExceeded(
            f"the simulation ran past its budget of {budget_s:g} s",
            hint="simulate fewer steps or a shorter horizon (rules that restart short SLA "
            "clocks make many milestones)",
        )


def _context(actor: dict[str, str], correlation: str) -> dict[str, Any]:
    return {**actor, "correlation_id": f"simulation-{correlation}"}


def _command(step: Step) -> Callable[[RuleRun], None]:
    """The ledger's command for ``step`` (``services.application.CaseLedger``)."""

    def command(run: RuleRun) -> None:
        case, definition, ctx = run.case, run.definition, run.context
        view = definition.view_for(str(ctx["actor_role"]))
        if step.command in ("fields", "transition") and step.fields:
            case.update_fields(definition, dict(step.fields), ctx, view)
        if step.command == "transition":
            actor = {"id": ctx["actor_id"], "role": ctx["actor_role"]}
            name = str(step.transition)
            case.transition(definition, name, step.text, ctx, run.now, facts(case, None, actor))
        elif step.command == "assign":
            case.assign(step.assignee, ctx, definition=definition)
        elif step.command == "note":
            case.add_note(step.text or "", ctx)
        elif step.command == "close":
            case.close(definition, step.text or "", ctx, run.now)
        elif step.command == "reopen":
            case.reopen(definition, step.text or "", ctx, run.now)

    return command


def _slas(case: Case, events: list[Case.Event]) -> tuple[SlaDue, ...]:
    breached = {e.sla for e in events if isinstance(e, Case.SlaBreached)}
    return tuple(
        SlaDue(
            sla=name,
            running=clock.running_since is not None,
            due={m: datetime.fromisoformat(at) for m, at in sorted(clock.due.items())},
            reached=tuple(clock.fired),
            breached=name in breached,
        )
        for name, clock in sorted(case.clocks.items())
    )
