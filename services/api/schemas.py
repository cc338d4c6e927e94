"""Request and response bodies of the HTTP API (requests refuse unknown fields)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from domain.case import MAX_NOTE, MAX_TITLE
from domain.errors import InvalidCommand
from domain.values import MAX_FIELDS_DEPTH, check_field_values, check_storable_text
from services.auth import Role

NO_NUL = r"^[^\x00]*$"


def _as_value_error(check: Callable[[Any], None]) -> Callable[[Any], Any]:
    """A pydantic validator from a domain check: its refusal becomes a 422 naming the field."""

    def validate(value: Any) -> Any:
        try:
            check(value)
        except InvalidCommand as error:
            raise ValueError(error.message) from None
        return value

    return validate


# A string the event store, the read models and Kafka consumers can all hold.
Text = Annotated[str, Field(pattern=NO_NUL), AfterValidator(_as_value_error(check_storable_text))]
Fields = Annotated[
    dict[str, Any],
    AfterValidator(_as_value_error(check_field_values)),
    Field(
        description="the case's field values: any JSON object, without NUL characters or "
        f"non-finite numbers, nested at most {MAX_FIELDS_DEPTH} levels"
    ),
]


class _Request(BaseModel):
    # strict: "1", 1.0 or true are not a version; unknown fields are refused, not ignored
    model_config = ConfigDict(extra="forbid", strict=True)


class SourceIn(_Request):
    """Where a fact came from, for a fact a silo holds (integrator keys only)."""

    system: Text = Field(min_length=1, max_length=100, description="the silo's name")
    record_id: Text | None = Field(
        default=None, max_length=200, description="the record's id in that silo"
    )


class _Lineage(_Request):
    source: SourceIn | None = Field(
        default=None,
        description="integrator keys: the silo and record this fact comes from (lineage, "
        "published in the event's `source`)",
    )
    occurred_at: AwareDatetime | None = Field(
        default=None,
        strict=False,
        description="integrator keys: when it happened in the world (ISO 8601 with a time "
        "zone), if not now: stored as the event's effective time beside its recorded time",
    )


class _Command(_Lineage):
    expected_version: int | None = Field(
        default=None,
        ge=1,
        description="the version you last read; if the case has moved on, the answer is 409",
    )


class CaseCreate(_Lineage):
    case_type: Text = Field(min_length=1, max_length=100, examples=["generic"])
    title: Text = Field(min_length=1, max_length=MAX_TITLE)
    fields: Fields = Field(default_factory=dict)
    party_id: Text | None = Field(default=None, max_length=200)


class AssignCommand(_Command):
    assignee: Text | None = Field(max_length=200, description="null unassigns the case")


class TransitionCommand(_Command):
    transition: Text = Field(
        min_length=1,
        max_length=100,
        examples=["start_work"],
        description="a transition of the case's type available from its state "
        "(GET /cases/{id} lists them)",
    )
    reason: Text | None = Field(default=None, max_length=MAX_NOTE)
    fields: Fields = Field(
        default_factory=dict,
        description="field values to set first, e.g. those the transition requires",
    )


class FieldsCommand(_Command):
    fields: Fields = Field(description="the fields to change, with their new values")


class NoteCommand(_Command):
    text: Text = Field(min_length=1, max_length=MAX_NOTE)


class ReasonCommand(_Command):
    reason: Text = Field(min_length=1, max_length=MAX_NOTE)


class CommandAccepted(BaseModel):
    id: UUID
    version: int


class NotePublic(BaseModel):
    version: int
    text: str
    author: str | None


class TransitionPublic(BaseModel):
    name: str
    label: str
    to: str
    to_label: str = Field(description="the label of the state it leads to")
    enabled: bool = Field(
        description="false while a field it requires is empty or its condition does not hold"
    )
    reason: str | None = Field(
        description="when not enabled: why, in plain words in the answer's language"
    )


class CaseActionsPublic(BaseModel):
    """What your role may do with the case in its state, besides transitions."""

    assign: bool
    close: bool
    reopen: bool = Field(description="only on a closed case (or one in a final state)")
    edit_fields: bool = Field(description="editable_fields names which")
    add_note: bool


class SlaClockPublic(BaseModel):
    sla: str
    running: bool = Field(description="false while paused")
    due: dict[str, datetime] = Field(description="milestones still to come and when they fall")
    reached: list[str] = Field(description="milestones already passed (warning:75, goal, ...)")


class CaseLabels(BaseModel):
    language: str = Field(description="the language of these labels (Content-Language)")
    case_type: str
    status: str
    fields: dict[str, str] = Field(description="field name -> its label, for the fields shown")
    choices: dict[str, dict[str, str]] = Field(
        description="for each choice field your role's view shows: every value it may take -> "
        "its label (the value itself when the case type gives none), e.g. "
        '{"category": {"water_damage": "Dégât des eaux", "fire": "Incendie"}}; the label of '
        "the case's value of `category` is choices.category[fields.category]"
    )
    field_help: dict[str, str] = Field(
        default_factory=dict,
        description="field name -> its help text (a hint shown under its input), for the "
        "fields shown that have one",
    )


class LegalHoldPublic(BaseModel):
    """A case's legal hold: its personal data may not be erased until it is lifted."""

    reason: str
    placed_by: str | None
    version: int = Field(description="the case version that placed it")


class CasePublic(BaseModel):
    id: UUID
    case_type: str
    case_type_version: int
    title: str
    status: str
    priority: str
    queue: str | None
    escalations: int
    assignee: str | None
    party_id: str | None
    fields: dict[str, Any] = Field(description="the fields your role's view shows")
    editable_fields: list[str] | None = Field(
        description="the fields your role may change (null: every field)"
    )
    labels: CaseLabels
    transitions: list[TransitionPublic] = Field(
        description="the transitions your role may take from the case's state, each enabled "
        "or not with the reason (none on a closed case or one in a final state)"
    )
    actions: CaseActionsPublic
    slas: list[SlaClockPublic]
    notes: list[NotePublic]
    closed_reason: str | None
    parent_id: str | None
    children: list[str]
    # Personal data (audit): erased fields and the legal hold; both absent from older answers.
    erased: list[str] = Field(
        default_factory=list,
        description="personal fields whose values were erased with the case's data subject "
        "(shown as null in fields)",
    )
    legal_hold: LegalHoldPublic | None = Field(
        default=None, description="the legal hold the case is on (null: none)"
    )
    version: int
    opened_at: datetime
    updated_at: datetime
    # Time travel (audit): which moments a past read reflects; null when read as it is now.
    as_of: datetime | None = Field(
        default=None, description="the recorded moment this read reflects (?as_of=)"
    )
    effective_at: datetime | None = Field(
        default=None, description="the effective moment this read reflects (?effective_at=)"
    )


class ActorPublic(BaseModel):
    id: str
    role: str


class HistoryEntry(BaseModel):
    version: int
    type: str
    recorded_at: datetime
    occurred_at: datetime
    actor: ActorPublic
    correlation_id: str
    causation_id: str | None
    rule: str | None = Field(description="the rule of the case type that caused it, if any")
    source: dict[str, Any] | None = Field(
        default=None,
        description="for a fact ingested from a silo: the system, record id, connector and its "
        "version, position, batch and when it was read (the envelope's `source`)",
    )
    data: dict[str, Any]
    withheld: list[str] = Field(
        default_factory=list,
        description="what your role's view hides and was left out of data: field names, or "
        "subject, body, recipients of a notification that quotes hidden fields",
    )
    effective_at: datetime | None = Field(  # time travel (audit)
        default=None,
        description="when it took effect in the world: occurred_at, or for an automatic step "
        "(a rule's action, an SLA milestone) the time of its cause or when it fell due",
    )


class FieldChangePublic(BaseModel):
    field: str
    label: str
    before: Any = Field(description="the value before the event (null: empty)")
    after: Any
    before_label: str | None = Field(
        description="for a choice field: the label of `before` in the answer's language "
        "(null: not a choice field, or empty)"
    )
    after_label: str | None = Field(description="for a choice field: the label of `after`")


class RulePublic(BaseModel):
    name: str = Field(description="the rule of the case type (sla:<name> for an SLA's actions)")
    label: str | None


class SlaMarkPublic(BaseModel):
    name: str
    label: str
    milestone: str | None = Field(description="warning:75, goal or deadline, if any")
    due_at: datetime | None = Field(description="when that milestone was due")
    due: dict[str, datetime] = Field(description="a started or resumed clock's due times")
    met: bool | None = Field(description="a stopped clock: whether its deadline was kept")
    sentence: str


class SourcePublic(BaseModel):
    system: str
    record_id: str | None
    connector: str | None


class TimelineEntryPublic(BaseModel):
    version: int
    at: datetime = Field(description="when it happened (UTC)")
    recorded_at: datetime = Field(description="when caseledger recorded it (UTC)")
    actor: ActorPublic
    kind: str = Field(description="the event type: CaseOpened, CaseStatusChanged, ...")
    sentence: str = Field(description="what happened, in the answer's language")
    changes: list[FieldChangePublic] = Field(
        description="field values set, before and after (only fields your role sees)"
    )
    rule: RulePublic | None = Field(description="the rule that made this automatic step")
    sla: SlaMarkPublic | None
    source: SourcePublic | None = Field(description="where an ingested fact came from")
    withheld: list[str] = Field(description="as in the history: what your role may not see")


class MePublic(BaseModel):
    role: Role
    role_label: str = Field(description="in the language of your Accept-Language header")
    actor_id: str = Field(description="how your actions are recorded")
    key_label: str = Field(description="the label your API key was given (may be empty)")
    case_type_rights: list[str] = Field(
        default_factory=list,
        description="what your role may do with case types (configuration): author (draft, "
        "edit, submit, discard), review (approve or reject others' drafts), publish",
    )


class CaseSlaPublic(BaseModel):
    """The latest run of one SLA clock of a listed case."""

    running: bool = Field(description="false while paused or once stopped")
    deadline: datetime | None = Field(description="when this run's deadline falls")
    warned: bool = Field(description="a warning or the goal of this run was reached")
    breached: bool = Field(description="this run missed its deadline")
    met: bool | None = Field(description="a stopped clock: whether its deadline was kept")


class CaseSummary(BaseModel):
    id: UUID
    case_type: str
    case_type_version: int
    title: str
    status: str
    priority: str
    queue: str | None
    escalations: int
    sla_breaches: int
    assignee: str | None
    party_id: str | None
    fields: dict[str, Any] = Field(description="the fields your role's view shows")
    version: int
    opened_at: datetime
    updated_at: datetime
    status_label: str = Field(description="in the language of your Accept-Language header")
    case_type_label: str
    priority_label: str
    choice_labels: dict[str, str] = Field(
        description="for each choice field in `fields`: the label of its value, in the same "
        'language (e.g. {"category": "Dégât des eaux"} beside "category": "water_damage")'
    )
    sla_deadline: datetime | None = Field(
        description="the nearest deadline of the case's running SLA clocks (null: none runs); "
        "the order of ?sort=sla_deadline"
    )
    slas: dict[str, CaseSlaPublic] = Field(description="each SLA of the case, by name")
    erased: list[str] = Field(
        default_factory=list,
        description="personal fields in `fields` erased with the case's data subject (null)",
    )
    legal_hold: bool = Field(default=False, description="the case is on legal hold")


class CasePage(BaseModel):
    cases: list[CaseSummary]
    columns: list[str] | None = Field(
        description="with ?case_type=: the list columns your role's view of that type shows"
    )
    next_cursor: str | None = Field(description="pass as ?cursor= to get the next page")


class ErrorBody(BaseModel):
    detail: str
    code: str
    hint: str = ""
    problems: list[str] | None = Field(
        default=None, description="for a refused case-type document: every problem, with its path"
    )
    issues: list[dict[str, str]] | None = Field(
        default=None,
        description="for a case-type document refused when drafted, changed or submitted: the "
        "same problems at their places, each {path, pointer (JSON pointer), message, hint}",
    )


class HealthBody(BaseModel):
    status: str = Field(description="ok, or degraded when a component is down")
    components: dict[str, dict[str, Any]] | None = Field(
        default=None,
        description="only with a valid key: each component (database, broker): ok, its "
        "address, and what is wrong when it is not",
    )


class KeyCreate(_Request):
    role: Role = Field(strict=False, description="the role the key acts in")
    label: Text = Field(
        default="", max_length=200, description="who or what holds the key (shown as the actor)"
    )
    expires_in: str | None = Field(
        default=None,
        max_length=40,
        examples=["30d"],
        description="how long the key works, e.g. 30d, 12h, 90m; null: until revoked",
    )


class KeyPublic(BaseModel):
    id: str = Field(description="the key's public id (DELETE /keys/{id} revokes it)")
    role: str
    label: str
    created_at: datetime | None
    expires_at: datetime | None = Field(description="null: the key never expires")
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="the key itself: shown this once, store it safely")
