"""What if: replay recorded cases under another case-type version (a draft), in memory, and
report per case what would differ from what was recorded.

For each recorded case, its *inputs* (the events that actors and connectors caused: the
opening, assignments, transitions, field changes, notes, closings; not what rules, SLA
clocks or the notifier recorded after them) are grouped back into the commands that made
them (a transition with the fields set by the same request) and run again, at their recorded
times, on a new in-memory case under the other definition, whose rules react the way the
ledger lets them react (``domain.rules.react``). Between commands, the SLA milestones that
fall due are reached at their due time, as the SLA watcher would (``reach_milestone``); after
the last command, up to the case's last recorded event (so milestones that the watcher has
not recorded yet count neither way). A command the other definition refuses (a transition it
lacks, a field it does not declare) is a divergence; the replay goes on without it.

Nothing is stored, published or projected: the cases are read, and the shadow cases live in
memory only. :func:`compare_case` and :func:`replay` are pure (given the recorded events and
a definition); :class:`WhatIf` finds the recorded cases and keeps to a budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from domain.case import RULE_TRIGGERS, Case
from domain.definition import Definition, View
from domain.errors import DomainError, InvalidCommand, InvalidTransition
from domain.event_names import event_type
from domain.rules import DefinitionLookup, RuleRun, facts, react
from services.application import reach_milestone
from services.errors import CaseNotFound
from services.queries import CaseFilter, CaseListQueries, PageCursor

#: The events a replay runs again as commands (unless a rule caused them): those rules react
#: to, but for the SLA milestones (the replay reaches them itself) and migrations (skipped).
INPUTS: tuple[type[Case.Event], ...] = tuple(
    kind for kind in RULE_TRIGGERS if kind not in (Case.SlaWarned, Case.SlaBreached, Case.Migrated)
)
#: Bookkeeping that a command records along with its inputs (clocks moving with the status):
#: it does not end the command, as a rule's reaction or another command does.
_SAME_COMMAND: tuple[type[Case.Event], ...] = (
    Case.SlaStarted,
    Case.SlaPaused,
    Case.SlaResumed,
    Case.SlaStopped,
)
ATTRIBUTES = ("status", "assignee", "queue", "priority", "sla_breaches", "notifications")
"""What a report compares, per case."""
WATCHER = {"actor_id": "sla-watcher", "actor_role": "system", "correlation_id": "what-if"}
MAX_MILESTONES = 1_000  # per case: a bound even when rules keep restarting a short clock
DEFAULT_LIMIT = 1_000
DEFAULT_DAYS = 30


@dataclass(frozen=True, order=True)
class Notified:
    """A notification requested on a case: which one, to whom."""

    notification: str
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    """Where a case ends: the attributes a report compares."""

    status: str
    assignee: str | None
    queue: str | None
    priority: str
    sla_breaches: tuple[str, ...]
    """The SLAs whose deadline passed, one entry per breach, sorted."""
    notifications: tuple[Notified, ...]
    """Every notification requested, sorted."""

    def differences(self, other: Outcome | None) -> tuple[str, ...]:
        if other is None:
            return ATTRIBUTES
        return tuple(a for a in ATTRIBUTES if getattr(self, a) != getattr(other, a))


@dataclass(frozen=True)
class Refusal:
    """A recorded command that the other definition refuses."""

    at: datetime
    case_version: int
    """The recorded version of the command's first event."""
    command: str
    """The event type it recorded, with the transition's name for a transition."""
    reason: str
    hint: str


@dataclass(frozen=True)
class CaseComparison:
    """One case: what was recorded, what would be, and what differs."""

    case_id: UUID
    title: str
    opened_at: datetime
    recorded: Outcome
    would_be: Outcome | None
    """``None`` when the other definition would not even open the case."""
    differences: tuple[str, ...]
    refused: tuple[Refusal, ...]

    @property
    def differs(self) -> bool:
        return bool(self.differences or self.refused)


@dataclass(frozen=True)
class WhatIfReport:
    """The cases compared, those that differ (with the difference), and the totals."""

    case_type: str
    version: int
    compared: int
    differing: int
    by_attribute: dict[str, int]
    """How many cases differ in each of :data:`ATTRIBUTES`, and in ``refused`` commands."""
    cases: tuple[CaseComparison, ...]
    """The cases that differ, in the order compared."""
    selected: int
    """How many cases were selected; fewer are compared when the time budget ran out."""
    complete: bool
    stopped: str | None = None

    @classmethod
    def of(
        cls,
        definition: Definition,
        comparisons: Sequence[CaseComparison],
        selected: int,
        stopped: str | None,
    ) -> WhatIfReport:
        differing = tuple(c for c in comparisons if c.differs)
        counts = {a: sum(a in c.differences for c in differing) for a in ATTRIBUTES}
        counts["refused"] = sum(bool(c.refused) for c in differing)
        return cls(
            case_type=definition.name,
            version=definition.version,
            compared=len(comparisons),
            differing=len(differing),
            by_attribute=counts,
            cases=differing,
            selected=selected,
            complete=stopped is None,
            stopped=stopped,
        )


# -- the replay of one case ----------------------------------------------------------------


@dataclass
class Shadow:
    """The in-memory case under the other definition, and what it recorded so far (each
    event with the moment it would be recorded at, in ``at``). Also used to simulate a
    sample case (``services.simulation``)."""

    definition: Definition
    case_types: DefinitionLookup
    case: Case | None = None
    events: list[Case.Event] = field(default_factory=list)
    at: list[datetime] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    def open(
        self,
        opened: OpenCase,
        context: dict[str, Any],
        now: datetime,
        then: Callable[[RuleRun], None] | None = None,
    ) -> None:
        """Open the case as the ledger does (with the actor's role view, then ``then`` in the
        same command), and let the rules react; raises the domain's refusal."""
        view = _view(self.definition, context)
        case = Case.open(
            self.definition, opened.title, dict(opened.fields), opened.party_id, context, now, view
        )
        run = RuleRun(case, self.definition, context, now, self.case_types)
        if then is not None:
            then(run)
        react(run)
        self.case = case
        self._keep(case, now)

    def attempt(
        self, command: Callable[[RuleRun], None], context: dict[str, Any], now: datetime
    ) -> None:
        """Run ``command`` on a copy of the case and let the rules react; keep the copy only
        when nothing refused it (a refused command stores nothing, as in the ledger)."""
        assert self.case is not None
        trial = deepcopy(self.case)
        run = RuleRun(trial, self.definition, context, now, self.case_types)
        command(run)
        if trial.pending_events:
            react(run)
        self._keep(trial, now)
        self.case = trial

    def _keep(self, case: Case, now: datetime) -> None:
        new = _case_events(case)
        self.events.extend(new)
        self.at.extend([now] * len(new))


class OpenCase(Protocol):
    """What opens a case: a recorded ``Case.Opened`` or a sample's opening."""

    @property
    def title(self) -> str: ...

    @property
    def fields(self) -> Any: ...

    @property
    def party_id(self) -> str | None: ...


def replay(
    definition: Definition,
    events: Sequence[Case.Event],
    case_types: DefinitionLookup,
) -> tuple[Outcome | None, list[Refusal]]:
    """Replay a recorded case's inputs under ``definition``: where it would end, and the
    recorded commands ``definition`` refuses. ``case_types`` finds other case types (for a
    rule that opens a child case; the children stay in memory)."""
    own_name = definition.name

    def lookup(name: str) -> Definition:
        return definition if name == own_name else case_types(name)

    shadow = Shadow(definition, lookup)
    commands = list(recorded_commands(events))
    for index, group in enumerate(commands):
        now = group[0].timestamp
        if index == 0:
            refusal = _open(shadow, group, now)
            if refusal is not None:
                return None, [refusal]
            continue
        reach_milestones(shadow, until=now)
        try:
            shadow.attempt(_command(group), dict(_context(group[0])), now)
        except DomainError as error:
            shadow.refused.append(_refusal(group, error))
    reach_milestones(shadow, until=events[-1].timestamp)
    assert shadow.case is not None
    return outcome_of(shadow.case, shadow.events), shadow.refused


def compare_case(
    definition: Definition,
    case_id: UUID,
    events: Sequence[Case.Event],
    case_types: DefinitionLookup,
) -> CaseComparison:
    """The recorded case ``case_id`` (its ``events``) against its replay under
    ``definition``."""
    recorded_case = _fold(events)
    recorded = outcome_of(recorded_case, events)
    would_be, refused = replay(definition, events, case_types)
    opened = events[0]
    assert isinstance(opened, Case.Opened)
    return CaseComparison(
        case_id=case_id,
        title=opened.title,
        opened_at=opened.timestamp,
        recorded=recorded,
        would_be=would_be,
        differences=recorded.differences(would_be),
        refused=tuple(refused),
    )


def recorded_commands(events: Sequence[Case.Event]) -> Iterator[list[Case.Event]]:
    """The recorded inputs, grouped into the commands that recorded them (see
    :func:`_same_command`); the opening is always the first."""
    group: list[Case.Event] = []
    for event in events:
        if is_input(event):
            if group and _same_command(group, event):
                group.append(event)
                continue
            if group:
                yield group
            group = [event]
        elif group and not (isinstance(event, _SAME_COMMAND) and "rule" not in _context(event)):
            yield group
            group = []
    if group:
        yield group


def is_input(event: Case.Event) -> bool:
    """An event an actor or a connector caused (the opening always counts)."""
    if isinstance(event, Case.Opened):
        return True
    return isinstance(event, INPUTS) and "rule" not in _context(event)


def outcome_of(case: Case, events: Iterable[Case.Event]) -> Outcome:
    """What a case shows of the compared attributes, with the SLA breaches and the
    notifications of its ``events``."""
    breaches = sorted(e.sla for e in events if isinstance(e, Case.SlaBreached))
    notified = sorted(
        Notified(e.notification, tuple(e.recipients))
        for e in events
        if isinstance(e, Case.NotificationRequested)
    )
    return Outcome(
        status=case.status,
        assignee=case.assignee,
        queue=case.queue,
        priority=case.priority,
        sla_breaches=tuple(breaches),
        notifications=tuple(notified),
    )


def _same_command(group: list[Case.Event], event: Case.Event) -> bool:
    """Whether ``event`` was recorded by the command that recorded ``group``. Only a
    transition follows another input in one command: after the fields a transition request
    sets, or after the opening of a case a connector's record puts in a state."""
    first = group[0]
    if len(group) != 1 or not isinstance(event, Case.StatusChanged):
        return False
    a, b = _context(first), _context(event)
    if isinstance(first, Case.Opened) and not a.get("source_system"):
        return False
    return (
        isinstance(first, Case.Opened | Case.FieldsUpdated)
        and a.get("correlation_id") == b.get("correlation_id")
        and a.get("actor_id") == b.get("actor_id")
    )


def _context(event: Case.Event) -> dict[str, Any]:
    context: dict[str, Any] = getattr(event, "context", None) or {}
    return context


def _case_events(case: Case) -> list[Case.Event]:
    """The events the case recorded since last asked (they are all case events)."""
    return [e for e in case.collect_events() if isinstance(e, Case.Event)]


def _fold(events: Sequence[Case.Event]) -> Case:
    case: Any = None
    for event in events:
        case = event.mutate(case)
    assert isinstance(case, Case)
    return case


def _view(definition: Definition, context: dict[str, Any]) -> View | None:
    """The role view a command was checked against: none for connectors, rules and the
    system (they set any field), the actor's role view for the others."""
    role = context.get("actor_role")
    if context.get("source_system") or context.get("rule") or role in (None, "system"):
        return None
    return definition.view_for(str(role))


def _open(shadow: Shadow, group: list[Case.Event], now: datetime) -> Refusal | None:
    opened = group[0]
    assert isinstance(opened, Case.Opened)
    try:
        shadow.open(opened, dict(opened.context), now, then=_command(group[1:]))
    except DomainError as error:
        return _refusal(group, error)
    return None


def _command(group: Sequence[Case.Event]) -> Callable[[RuleRun], None]:
    def command(run: RuleRun) -> None:
        for event in group:
            _APPLY[type(event)](run, event, dict(_context(event)))

    return command


def _transition(run: RuleRun, event: Any, context: dict[str, Any]) -> None:
    case, definition = run.case, run.definition
    name = event.transition
    if not name or context.get("source_system"):
        name = _transition_to(definition, case.status, event.to_status)  # as a connector does
    actor = {"id": context.get("actor_id"), "role": context.get("actor_role")}
    case.transition(definition, name, event.reason, context, run.now, facts(case, None, actor))


def _transition_to(definition: Definition, status: str, target: str) -> str:
    for name, move in definition.transitions.items():
        if move.leaves(status) and move.target == target:
            return name
    raise InvalidTransition(
        f"{definition.name} v{definition.version} has no transition from {status!r} to {target!r}",
        hint="the recorded case moved so; the draft would not let it",
    )


_Apply = Callable[[RuleRun, Any, dict[str, Any]], None]
_APPLY: dict[type[Case.Event], _Apply] = {
    Case.Assigned: lambda run, e, ctx: run.case.assign(e.assignee, ctx, definition=run.definition),
    Case.StatusChanged: _transition,
    Case.FieldsUpdated: lambda run, e, ctx: run.case.update_fields(
        run.definition, dict(e.changes), ctx, _view(run.definition, ctx)
    ),
    Case.NoteAdded: lambda run, e, ctx: run.case.add_note(e.text, ctx),
    Case.Closed: lambda run, e, ctx: run.case.close(run.definition, e.reason, ctx, run.now),
    Case.Reopened: lambda run, e, ctx: run.case.reopen(run.definition, e.reason, ctx, run.now),
    Case.PriorityChanged: lambda run, e, ctx: run.case.set_priority(e.priority, ctx),
    Case.RoutedToQueue: lambda run, e, ctx: run.case.route(e.queue, ctx, definition=run.definition),
    Case.Escalated: lambda run, e, ctx: run.case.escalate(e.reason, ctx),
}


def _refusal(group: Sequence[Case.Event], error: DomainError) -> Refusal:
    first = next((e for e in group if isinstance(e, Case.StatusChanged)), group[0])
    command = event_type(type(first))
    if isinstance(first, Case.StatusChanged):
        command += f" {first.transition or first.to_status}"
    return Refusal(
        at=group[0].timestamp,
        case_version=group[0].originator_version,
        command=command,
        reason=error.message,
        hint=error.hint,
    )


def reach_milestones(shadow: Shadow, until: datetime) -> None:
    """Reach, in due order, every SLA milestone of the shadow case due by ``until``."""
    for _ in range(MAX_MILESTONES):
        assert shadow.case is not None
        due = _next_due(shadow.case)
        if due is None or due[0] > until:
            return
        at, sla, run_number, milestone = due

        def reach(run: RuleRun, sla: str = sla, n: int = run_number, m: str = milestone) -> None:
            reach_milestone(run, sla, n, m)

        shadow.attempt(reach, dict(WATCHER), at)


def _next_due(case: Case) -> tuple[datetime, str, int, str] | None:
    pending = [
        (datetime.fromisoformat(at), name, clock.run, milestone)
        for name, clock in case.clocks.items()
        if clock.running_since is not None
        for milestone, at in clock.due.items()
    ]
    return min(pending) if pending else None


# -- finding the recorded cases, within a budget ----------------------------------------------


class RecordedHistory(Protocol):
    """Where the recorded cases are read (the ledger)."""

    def history(self, case_id: UUID) -> list[Case.Event]: ...


class Drafts(Protocol):
    """The case-type registry: a draft's definition, and the current version of others."""

    def draft_definition(self, name: str, version: int) -> Definition: ...

    def current(self, name: str) -> Definition: ...


@dataclass(frozen=True)
class WhatIfRequest:
    """Which cases to replay under which draft: those of the last ``days`` days (by opening),
    or the given ``case_ids``; at most ``limit``, newest first, within ``budget_s``."""

    case_type: str
    version: int
    days: int | None = DEFAULT_DAYS
    case_ids: tuple[UUID, ...] = ()
    limit: int = DEFAULT_LIMIT
    budget_s: float = 60.0


Progress = Callable[[int, int], None]
"""Told (cases done, cases selected) after each case."""


class WhatIf:
    """Replays recorded cases under a draft (see the module's docstring)."""

    def __init__(
        self,
        history: RecordedHistory,
        drafts: Drafts,
        cases: CaseListQueries,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.history = history
        self.drafts = drafts
        self.cases = cases
        self.clock = clock

    def run(self, request: WhatIfRequest, progress: Progress | None = None) -> WhatIfReport:
        started = time.monotonic()
        definition = self.drafts.draft_definition(request.case_type, request.version)
        ids = self.select(request)
        comparisons: list[CaseComparison] = []
        stopped = None
        for case_id in ids:
            if time.monotonic() - started > request.budget_s:
                stopped = (
                    f"the time budget of {request.budget_s:g} s ran out after "
                    f"{len(comparisons)} of {len(ids)} cases; ask for fewer cases"
                )
                break
            events = self._events(case_id, request.case_type)
            comparisons.append(compare_case(definition, case_id, events, self.drafts.current))
            if progress is not None:
                progress(len(comparisons), len(ids))
        return WhatIfReport.of(definition, comparisons, len(ids), stopped)

    def select(self, request: WhatIfRequest) -> list[UUID]:
        """The cases to replay: the given ids, else the newest of the last ``days`` days."""
        if request.case_ids:
            return list(dict.fromkeys(request.case_ids))[: request.limit]
        since = None
        if request.days is not None:
            since = self.clock() - timedelta(days=request.days)
        where = CaseFilter(case_type=request.case_type, opened_from=since, sort="opened_at")
        ids: list[UUID] = []
        cursor: PageCursor | None = None
        while len(ids) < request.limit:
            page = self.cases.list_cases(where, min(500, request.limit - len(ids)), cursor)
            ids += [UUID(row.case_id) for row in page.cases]
            cursor = page.next_cursor
            if cursor is None:
                break
        return ids

    def _events(self, case_id: UUID, case_type: str) -> list[Case.Event]:
        events = self.history.history(case_id)
        opened = events[0] if events else None
        if not isinstance(opened, Case.Opened):
            raise CaseNotFound(f"no case has id {case_id}")
        if opened.case_type != case_type:
            raise InvalidCommand(
                f"case {case_id} is a {opened.case_type} case, not a {case_type} case",
                hint=f"give ids of {case_type} cases only",
            )
        return events
