"""Simulation of a sample case: ``POST /case-types/{name}/versions/{version}/simulate`` runs
a sample case under a version (a draft or a published one), and ``POST /case-types/simulate``
under an unsaved document (the studio's live preview), in memory: where the case ends, its
SLAs, the notifications it would send with their rendered text, and the events it would
record (``services.simulation``). Nothing is stored, published or projected."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Self

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from domain.calendar import parse_duration
from domain.case import MAX_NOTE, MAX_TITLE
from domain.definition import Definition
from domain.errors import InvalidCommand
from services.api.case_types import Name, Version
from services.api.deps import (
    ApiDependencies,
    Caller,
    Deps,
    authenticated,
    known_query_only,
    require_configured,
)
from services.api.schemas import ErrorBody, Fields, Text, _Request
from services.case_type_document import compile_definition, problems_in
from services.case_type_reading import InvalidDocument, read_document
from services.deadline import remaining
from services.expressions import plain
from services.simulation import (
    DEFAULT_HORIZON,
    MAX_STEPS,
    Recorded,
    Sample,
    Simulation,
    Step,
    simulate,
)

_errors: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 422)
}
router = APIRouter(
    prefix="/case-types",
    tags=["case types"],
    responses=_errors,
    dependencies=[Depends(authenticated), Depends(known_query_only)],
)
Author = Annotated[
    Caller,
    Depends(require_configured(lambda deps: deps.case_type_roles.authors, "simulate case types")),
]
_DAY = timedelta(hours=24)
#: The longest a simulation may run within one request, and what it leaves to answer.
MAX_BUDGET_S = 10.0
ANSWER_MARGIN_S = 0.5
_ACTIONS = ("transition", "fields", "assign", "note", "close", "reopen")
_TEXTS: dict[str, Any] = {
    "note": lambda step: step.note, "close": lambda step: step.close,
    "reopen": lambda step: step.reopen,
}  # fmt: skip


def _offset(text: str, what: str) -> timedelta:
    if "w" in text:
        raise ValueError(f"{what}: write weeks as days ({text!r}: 7d, not 1w)")
    try:
        return parse_duration(text, _DAY)
    except ValueError as error:
        raise ValueError(f"{what}: {error}") from None


Duration = Annotated[str, Field(max_length=40, examples=["2h", "1d 4h", "30m"])]


class ActorIn(_Request):
    id: Text = Field(min_length=1, max_length=200)
    role: str = Field(pattern="^(admin|manager|handler|integrator|auditor)$")


class StepIn(_Request):
    """One command on the sample: exactly one of transition (with optional fields and
    reason), fields (an edit), assign, note, close or reopen (each with its text)."""

    at: Duration = Field(description="when, after the opening (d = 24 hours): 2h, 1d 4h")
    transition: Text | None = Field(default=None, max_length=100)
    fields: Fields | None = None
    reason: Text | None = Field(default=None, max_length=500, description="a transition's")
    assign: Text | None = Field(default=None, max_length=200, description="to this user")
    note: Text | None = Field(default=None, max_length=MAX_NOTE)
    close: Text | None = Field(default=None, max_length=500, description="the reason")
    reopen: Text | None = Field(default=None, max_length=500, description="the reason")
    actor: ActorIn | None = Field(default=None, description="default: the sample's actor")

    @model_validator(mode="after")
    def _one_command(self) -> Self:
        given = [a for a in _ACTIONS if getattr(self, a) is not None]
        if given == ["transition", "fields"]:
            given = ["transition"]
        if len(given) != 1:
            raise ValueError(
                f"a step does one thing: give exactly one of {', '.join(_ACTIONS)} "
                f"(fields may go with a transition); this one gives {', '.join(given) or 'none'}"
            )
        if self.reason is not None and self.transition is None:
            raise ValueError("reason goes with a transition (close and reopen take their own)")
        _offset(self.at, "at")
        return self

    def step(self) -> Step:
        command = next(a for a in _ACTIONS if getattr(self, a) is not None)
        return Step(
            at=_offset(self.at, "at"),
            command=command,
            transition=self.transition,
            fields=self.fields or {},
            assignee=self.assign,
            text=self.reason
            if command == "transition"
            else _TEXTS.get(command, lambda s: None)(self),
            actor_id=self.actor.id if self.actor else None,
            actor_role=self.actor.role if self.actor else None,
        )


class SampleIn(_Request):
    """A sample case: how it opens, and what is done to it afterwards."""

    title: Text = Field(min_length=1, max_length=MAX_TITLE)
    fields: Fields = Field(default_factory=dict)
    party_id: Text | None = Field(default=None, max_length=200)
    actor: ActorIn = Field(
        default_factory=lambda: ActorIn(id="sample", role="handler"),
        description="who opens it (and takes the steps without their own actor)",
    )
    opened_at: AwareDatetime | None = Field(
        default=None, strict=False, description="when it opens (default: now)"
    )
    steps: list[StepIn] = Field(default_factory=list, max_length=MAX_STEPS)
    horizon: Duration = Field(
        default=f"{DEFAULT_HORIZON.days}d",
        description="how long after the opening (or the last step) SLA milestones are reached",
    )

    @model_validator(mode="after")
    def _horizon(self) -> Self:
        _offset(self.horizon, "horizon")
        return self

    def sample(self) -> Sample:
        return Sample(
            title=self.title,
            fields=self.fields,
            opened_at=self.opened_at or datetime.now(UTC),
            party_id=self.party_id,
            actor_id=self.actor.id,
            actor_role=self.actor.role,
            steps=tuple(step.step() for step in self.steps),
            horizon=_offset(self.horizon, "horizon"),
        )


class UnsavedSimulation(_Request):
    document: dict[str, Any] = Field(description="the case-type document, unsaved")
    sample: SampleIn


class SimulatedCase(BaseModel):
    title: str
    status: str
    queue: str | None
    priority: str
    assignee: str | None
    escalations: int
    party_id: str | None
    fields: dict[str, Any]


class StepPublic(BaseModel):
    index: int = Field(description="the step's place in the request's list")
    at: datetime
    step: str
    applied: bool = Field(description="false: the version refuses it (reason, hint)")
    reason: str | None
    hint: str | None


class SlaPublic(BaseModel):
    sla: str
    running: bool
    due: dict[str, datetime] = Field(description="milestones still due (goal, warning:75...)")
    reached: list[str]
    breached: bool = Field(description="its deadline passed within the horizon")


class BreachPublic(BaseModel):
    sla: str
    at: datetime


class NotificationPublic(BaseModel):
    notification: str
    channel: str
    recipients: list[str]
    subject: str | None
    body: str = Field(description="as rendered for this case")
    target: str | None
    at: datetime


class EventPublic(BaseModel):
    type: str
    case_version: int
    at: datetime
    data: dict[str, Any]


class SimulationPublic(BaseModel):
    case_type: str
    version: int = Field(description="0 for an unsaved document")
    opened_at: datetime
    until: datetime = Field(description="the end of the horizon")
    case: SimulatedCase = Field(description="the case at the end")
    steps: list[StepPublic]
    slas: list[SlaPublic]
    sla_breaches: list[BreachPublic]
    notifications: list[NotificationPublic] = Field(description="what would be sent")
    events: list[EventPublic] = Field(description="what the case would record, in order")

    @classmethod
    def of(cls, result: Simulation) -> SimulationPublic:
        case = result.case
        return cls(
            case_type=result.case_type,
            version=result.version,
            opened_at=result.opened_at,
            until=result.until,
            case=SimulatedCase(
                title=case.title, status=case.status, queue=case.queue, priority=case.priority,
                assignee=case.assignee, escalations=case.escalations, party_id=case.party_id,
                fields=plain(dict(case.fields)),
            ),
            steps=[StepPublic(**vars(s)) for s in result.steps],
            slas=[
                SlaPublic(sla=s.sla, running=s.running, due=dict(s.due), reached=list(s.reached),
                          breached=s.breached)
                for s in result.slas
            ],
            sla_breaches=[BreachPublic(sla=e.data["sla"], at=e.at) for e in result.breaches],
            notifications=[_notification(e) for e in result.notifications],
            events=[
                EventPublic(type=e.type, case_version=e.case_version, at=e.at, data=plain(e.data))
                for e in result.events
            ],
        )  # fmt: skip


def _notification(event: Recorded) -> NotificationPublic:
    data = event.data
    return NotificationPublic(
        notification=data["notification"],
        channel=data["channel"],
        recipients=list(data["recipients"]),
        subject=data.get("subject"),
        body=data["body"],
        target=data.get("target"),
        at=event.at,
    )


def _version(deps: ApiDependencies, name: str, version: int) -> Definition:
    registry = deps.case_types
    record = registry.version(name, version)
    if record.status == "published":
        return registry.definition(name, version)
    if record.status == "discarded":
        raise InvalidCommand(
            f"{name} v{version} was discarded", hint="simulate a draft or a published version"
        )
    return _compiled(deps, record.document, version)


def _compiled(deps: ApiDependencies, document: dict[str, Any], version: int) -> Definition:
    known = deps.case_types.known()
    problems = problems_in(document, known, deps.case_types.policy)
    if problems:
        raise InvalidDocument(problems)
    # compiled with names only, like a published version (CaseTypeRegistry.definition)
    return compile_definition(document, version, list(known))


@router.post("/{name}/versions/{version}/simulate")
def simulate_version(
    name: Name, version: Version, body: SampleIn, deps: Deps, _: Author
) -> SimulationPublic:
    """Run a sample case under this version (a draft or a published one), in memory: it
    opens, then each step runs at its offset as the ledger would run it, the rules react,
    and SLA milestones are reached up to the horizon. Answers where the case ends, its SLAs,
    the notifications it would send (rendered) and the events it would record; a step the
    version refuses is listed as refused. Nothing is stored, published or projected."""
    definition = _version(deps, name, version)
    result = simulate(definition, body.sample(), deps.case_types.current, _budget())
    return SimulationPublic.of(result)


@router.post("/simulate")
def simulate_document(body: UnsavedSimulation, deps: Deps, _: Author) -> SimulationPublic:
    """The same as ``/{name}/versions/{version}/simulate``, under an unsaved document (the
    studio's live preview): the document is checked as a draft would be (422 listing every
    problem), and answered as version 0."""
    document = read_document(json.dumps(body.document).encode(), "application/json")
    definition = _compiled(deps, document, 0)
    result = simulate(definition, body.sample.sample(), deps.case_types.current, _budget())
    return SimulationPublic.of(result)


def _budget() -> float:
    left = remaining()
    budget = MAX_BUDGET_S if left is None else min(MAX_BUDGET_S, left - ANSWER_MARGIN_S)
    return max(budget, 0.0)
