"""The case use cases: load a case, run one command on it under its case type, let the case
type's rules react, and save every new event (and any child case) in one atomic save."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Generic, Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProjectorFunction,
    Repository,
    project_aggregate,
)
from eventsourcing.persistence import JSONTranscoder, Mapper, Transcoding

from domain.case import Case
from domain.context import CommandContext
from domain.definition import Definition
from domain.rules import Firing, RuleRun, facts, react, run_actions
from domain.sla import Clock, sla_named
from services.deadline import deadline_in
from services.errors import CaseNotFound, VersionConflict
from services.personal_data import SealingMapper, Vault
from services.retry import Retry
from services.time_travel import CaseNotYetOpened, Moment, VersionNotFound, fold_effective

#: A command that loses a race without ``expected_version`` runs again on the fresh case.
RETRY_WITHOUT_EXPECTED_VERSION = Retry(attempts=30, pause_s=0.002)
SNAPSHOT_EVERY = 100
log = logging.getLogger(__name__)
R = TypeVar("R")
Command = Callable[[RuleRun], R]
"""A command: changes ``run.case`` (pinned to ``run.definition``) and answers a value."""


@dataclass(frozen=True)
class CommandResult(Generic[R]):
    """A command's outcome: the case as saved (unchanged when nothing was to be recorded)
    and what the command answered."""

    case: Case
    value: R


class Definitions(Protocol):
    """Where the ledger finds case-type definitions (the case-type registry)."""

    def current(self, name: str) -> Definition: ...

    def definition(self, name: str, version: int) -> Definition: ...


@dataclass(frozen=True)
class RecordedVersion:
    """Where a case stood at a recorded moment: its version then (``None``: not opened yet),
    when it was opened, and its version now (both ``None``: no case has that id)."""

    version: int | None
    opened_at: datetime | None
    current: int | None


class RecordedVersions(Protocol):
    """The store's index of a case's events (``infra.event_store``): its version at a
    recorded moment, and the global position of its events."""

    def version_at(self, case_id: UUID, at: datetime) -> RecordedVersion: ...

    def positions(self, case_id: UUID, after: int, upto: int) -> dict[int, int]: ...


class CaseLedger(Application[UUID]):
    """Opens cases and runs commands on them; every command is one atomic save.

    A command given ``expected_version`` fails with :class:`VersionConflict` when the case
    has moved on; without it, a command that loses a race is retried on the fresh case.

    Loading a case costs the same however long its history: every :data:`SNAPSHOT_EVERY`
    versions a snapshot is stored, and a load reads the latest snapshot and the events after
    it. Recently used cases are also kept in memory (``AGGREGATE_CACHE_MAXSIZE``, set by
    ``infra.db``) and brought up to date with the events stored since, by any process,
    before every command and read.
    """

    name = "caseledger"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Case: SNAPSHOT_EVERY}

    def __init__(
        self,
        definitions: Definitions,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        deadline_s: float | None = None,
        vault: Vault | None = None,
    ) -> None:
        self.definitions = definitions
        #: Keys of data subjects: personal fields are sealed under them (set before the
        #: library builds the mapper that uses it).
        self.vault = vault
        super().__init__(env)
        self.clock = clock
        #: How long a command or a read may take before it is refused with 503; a command
        #: refused so is never stored later (``services.deadline``, ``infra.recorder``).
        self.deadline_s = deadline_s
        #: Answers "which version at that moment" with one query (the composition root sets
        #: it); without it the case's events are read to find out.
        self.recorded_versions: RecordedVersions | None = None

    def open_case(
        self,
        case_type: str,
        title: str,
        fields: dict[str, Any],
        party_id: str | None,
        context: CommandContext,
    ) -> Case:
        with deadline_in(self.deadline_s):
            definition = self.definitions.current(case_type)
            now, ctx = self.clock(), context.as_dict()
            view = definition.view_for(context.actor_role)
            case = Case.open(definition, title, fields, party_id, ctx, now, view)
            run = RuleRun(case, definition, ctx, now, self.definitions.current)
            self.save(case, *react(run).children)
            return case

    def assign(
        self, case_id: UUID, assignee: str | None, context: CommandContext, expected: int | None
    ) -> Case:
        def command(run: RuleRun) -> None:
            run.case.assign(assignee, run.context, definition=run.definition)

        return self.run_command(case_id, expected, context, command).case

    def transition(
        self,
        case_id: UUID,
        name: str,
        reason: str | None,
        fields: dict[str, Any],
        context: CommandContext,
        expected: int | None,
    ) -> Case:
        """Take the named transition, first setting ``fields`` (e.g. those it requires)."""

        def command(run: RuleRun) -> None:
            case, definition, ctx = run.case, run.definition, run.context
            if fields:
                view = definition.view_for(context.actor_role)
                case.update_fields(definition, fields, ctx, view)
            actor = {"id": context.actor_id, "role": context.actor_role}
            case.transition(definition, name, reason, ctx, run.now, facts(case, None, actor))

        return self.run_command(case_id, expected, context, command).case

    def update_fields(
        self,
        case_id: UUID,
        changes: dict[str, Any],
        context: CommandContext,
        expected: int | None,
    ) -> Case:
        """Change field values, as the caller's role view allows."""

        def command(run: RuleRun) -> None:
            view = run.definition.view_for(context.actor_role)
            run.case.update_fields(run.definition, changes, run.context, view)

        return self.run_command(case_id, expected, context, command).case

    def add_note(
        self, case_id: UUID, text: str, context: CommandContext, expected: int | None
    ) -> Case:
        def command(run: RuleRun) -> None:
            run.case.add_note(text, run.context)

        return self.run_command(case_id, expected, context, command).case

    def close_case(
        self, case_id: UUID, reason: str, context: CommandContext, expected: int | None
    ) -> Case:
        def command(run: RuleRun) -> None:
            run.case.close(run.definition, reason, run.context, run.now)

        return self.run_command(case_id, expected, context, command).case

    def reopen_case(
        self, case_id: UUID, reason: str, context: CommandContext, expected: int | None
    ) -> Case:
        def command(run: RuleRun) -> None:
            run.case.reopen(run.definition, reason, run.context, run.now)

        return self.run_command(case_id, expected, context, command).case

    def reach_sla_milestone(
        self, case_id: UUID, sla: str, sla_run: int, milestone: str, context: CommandContext
    ) -> bool:
        """Record an SLA milestone (warning or breach) and run its actions, at most once;
        ``False`` when there was nothing to record (already fired, clock moved on, not due)."""

        def command(run: RuleRun) -> bool:
            return reach_milestone(run, sla, sla_run, milestone)

        return self.run_command(case_id, None, context, command).value

    def record_delivery(
        self,
        case_id: UUID,
        notification_id: str,
        error: str | None,
        detail: str,
        context: CommandContext,
    ) -> bool:
        """Record whether a notification was delivered, once per notification."""

        def command(run: RuleRun) -> bool:
            return run.case.record_delivery(notification_id, error, detail, run.context)

        return self.run_command(case_id, None, context, command).value

    def construct_mapper(self) -> Mapper[UUID]:
        """The library's mapper, sealing personal fields (``services.personal_data``)."""
        return SealingMapper(super().construct_mapper(), self.vault, self._definition)

    def _definition(self, case_type: str, version: int) -> Definition:
        return self.definitions.definition(case_type, version)

    @property
    def stored_mapper(self) -> Mapper[UUID]:
        """A mapper that leaves personal values sealed, as stored: for everything that
        carries events out of the ledger (the relay, the projections)."""
        return Mapper(self.mapper.transcoder, self.mapper.compressor, self.mapper.cipher)

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """Save, telling the mapper whose personal data each case holds."""
        mapper = self.mapper
        if isinstance(mapper, SealingMapper):
            for obj in objs:
                if isinstance(obj, Case):
                    mapper.subjects.remember(obj.id, obj.subject)
        return super().save(*objs, **kwargs)

    def place_legal_hold(self, case_id: UUID, reason: str, context: CommandContext) -> Case:
        """Put the case on legal hold: its personal data may not be erased until lifted."""

        def command(run: RuleRun) -> None:
            run.case.place_legal_hold(reason, run.context)

        return self.run_command(case_id, None, context, command).case

    def lift_legal_hold(self, case_id: UUID, reason: str, context: CommandContext) -> Case:
        def command(run: RuleRun) -> None:
            run.case.lift_legal_hold(reason, run.context)

        return self.run_command(case_id, None, context, command).case

    def erase_personal_data(self, case_id: UUID, reason: str, context: CommandContext) -> bool:
        """Record that the case's subject's personal data is erased (refused on legal hold);
        ``False`` when it was recorded already. Rules do not react to it."""

        def command(run: RuleRun) -> bool:
            return run.case.erase_personal_data(run.definition, reason, run.context)

        return self.run_command(case_id, None, context, command).value

    def construct_repository(self) -> Repository[UUID]:
        """The library's repository, with its cache and fast-forward as ``infra.db`` sets
        them, copying a cached case only while no other thread brings it up to date."""
        size = self.env.get(self.AGGREGATE_CACHE_MAXSIZE)
        return _CaseRepository(
            event_store=self.events,
            snapshot_store=self.snapshots,
            cache_maxsize=int(size) if size else None,
            fastforward=True,
            deepcopy_from_cache=True,
        )

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        """The library's transcodings, and those of the case's state (for snapshots)."""
        super().register_transcodings(transcoder)
        transcoder.register(TimedeltaAsSeconds())
        transcoder.register(ClockAsDict())

    def take_snapshot(
        self,
        aggregate_id: UUID,
        version: int | None = None,
        projector_func: ProjectorFunction[Any, Any] = project_aggregate,
    ) -> None:
        """Store a snapshot; the command that reached ``version`` is stored already, so a
        snapshot that fails is logged, not raised (the next one will be taken)."""
        try:
            super().take_snapshot(aggregate_id, version, projector_func)
        except Exception:
            log.exception("could not snapshot case %s at version %s", aggregate_id, version)

    def get_case(self, case_id: UUID, version: int | None = None) -> Case:
        """The case as its events make it now, or as it was at ``version``."""
        try:
            with deadline_in(self.deadline_s):
                case: Case = self.repository.get(case_id, version=version)
        except AggregateNotFoundError:
            raise CaseNotFound(
                f"no case has id {case_id}", hint="check the id, or list cases with GET /cases"
            ) from None
        if not isinstance(case, Case):  # an id of another kind of aggregate
            raise CaseNotFound(f"no case has id {case_id}")
        return case

    # -- time travel (services.time_travel) ---------------------------------------------

    def case_at(self, case_id: UUID, moment: Moment) -> Case:
        """The case as recorded at ``moment.as_of`` or ``moment.version`` (loaded from the
        nearest snapshot), or as it stood at ``moment.effective_at`` by what was known then;
        now when ``moment`` names no moment."""
        if moment.is_now:
            return self.get_case(case_id)
        version = self.known_version(case_id, moment)
        if moment.effective_at is None:
            return self.get_case(case_id, version)
        with deadline_in(self.deadline_s):
            events = self.history(case_id, upto=version)
            case = fold_effective(events, moment.effective_at)
        if case is None:
            raise CaseNotYetOpened(
                f"case {case_id} was not open yet at effective time "
                f"{moment.effective_at.isoformat()}: it was opened effective "
                f"{_effective_opening(events).isoformat()}",
                hint="ask for an effective_at at or after that moment",
            )
        return case

    def known_version(self, case_id: UUID, moment: Moment) -> int:
        """The version of the case that ``moment`` reflects: ``moment.version``, the version
        at ``moment.as_of``, or the current one."""
        if moment.as_of is not None:
            return self.version_at(case_id, moment.as_of)
        case = self.get_case(case_id, moment.version)
        if moment.version is not None and case.version < moment.version:
            raise VersionNotFound(
                f"case {case_id} is at version {case.version}; it has no version "
                f"{moment.version} (yet)",
                hint=f"ask for a version from 1 to {case.version}",
            )
        return case.version

    def version_at(self, case_id: UUID, at: datetime) -> int:
        """The case's version at recorded moment ``at``: that of its newest event recorded
        by then. 404 (:class:`CaseNotYetOpened`) when it was opened later."""
        with deadline_in(self.deadline_s):
            found = (
                self.recorded_versions.version_at(case_id, at)
                if self.recorded_versions is not None
                else self._scan_version_at(case_id, at)
            )
        if found.current is None or found.opened_at is None:
            raise CaseNotFound(
                f"no case has id {case_id}", hint="check the id, or list cases with GET /cases"
            )
        if found.version is None:
            raise CaseNotYetOpened(
                f"case {case_id} did not exist yet at {at.isoformat()}: it was opened at "
                f"{found.opened_at.isoformat()}",
                hint="ask for a moment at or after its opening",
            )
        return found.version

    def positions(self, case_id: UUID, after: int, upto: int) -> dict[int, int]:
        """The global position of each event of the case with ``after < version <= upto``
        (none known without the store's index)."""
        if self.recorded_versions is None:
            return {}
        return self.recorded_versions.positions(case_id, after, upto)

    def _scan_version_at(self, case_id: UUID, at: datetime) -> RecordedVersion:
        events = [e for e in self.events.get(case_id) if isinstance(e, Case.Event)]
        if not events:
            return RecordedVersion(None, None, None)
        known = [e.originator_version for e in events if e.timestamp <= at]
        return RecordedVersion(max(known, default=None), events[0].timestamp, len(events))

    def definition_of(self, case: Case) -> Definition:
        """The case type version the case is pinned to."""
        return self.definitions.definition(case.case_type, case.case_type_version)

    def history(self, case_id: UUID, upto: int | None = None) -> list[Case.Event]:
        """Every event of the case, in version order (up to version ``upto``, if given)."""
        with deadline_in(self.deadline_s):
            self.get_case(case_id, upto)
            return [e for e in self.events.get(case_id, lte=upto) if isinstance(e, Case.Event)]

    def history_page(self, case_id: UUID, after: int, limit: int) -> list[Case.Event]:
        """Up to ``limit`` events of the case after version ``after``, in version order (an
        export reads a long history so, a page at a time)."""
        with deadline_in(self.deadline_s):
            page = self.events.get(case_id, gt=after, limit=limit)
            return [e for e in page if isinstance(e, Case.Event)]

    def run_command(
        self,
        case_id: UUID,
        expected: int | None,
        context: CommandContext,
        command: Command[R],
        rules_of: Definition | None = None,
    ) -> CommandResult[R]:
        """Load the case, run ``command`` on it with its pinned definition, let the rules of
        ``rules_of`` (default: that same definition) react, and save atomically, all within
        the ledger's deadline. Without ``expected_version`` a command that loses a race runs
        again on the fresh case; with it, it fails with :class:`VersionConflict`."""
        retry = RETRY_WITHOUT_EXPECTED_VERSION if expected is None else Retry(attempts=1)
        with deadline_in(self.deadline_s):
            return retry.run(
                lambda: self._run_once(case_id, expected, context, command, rules_of),
                gave_up=lambda: _conflict(case_id, None, expected),
            )

    def _run_once(
        self,
        case_id: UUID,
        expected: int | None,
        context: CommandContext,
        command: Command[R],
        rules_of: Definition | None,
    ) -> CommandResult[R]:
        case = self.get_case(case_id)
        if expected is not None and case.version != expected:
            raise _conflict(case_id, case.version, expected)
        definition = self.definition_of(case)
        run = RuleRun(case, definition, context.as_dict(), self.clock(), self.definitions.current)
        value = command(run)
        if case.pending_events:
            react(replace(run, definition=rules_of or definition))
            self.save(case, *run.children)
        return CommandResult(case, value)


def reach_milestone(run: RuleRun, sla: str, sla_run: int, milestone: str) -> bool:
    """The SLA watcher's command (also replayed by ``services.what_if``): record the
    milestone on ``run.case`` and run the SLA's actions for it; ``False`` when there was
    nothing to record."""
    case = run.case
    if not case.reach_milestone(sla, sla_run, milestone, run.context, run.now):
        return False
    spec = sla_named(run.definition, sla)
    if spec is None:
        return True
    actions = spec.on_breach if milestone == "deadline" else spec.on_warning
    if actions:
        firing = Firing(f"sla:{sla}", f"sla:{milestone}", case.version, actions)
        run_actions(run, firing)
    return True


def _effective_opening(events: list[Case.Event]) -> datetime:
    occurred = events[0].context.get("occurred_at") if isinstance(events[0], Case.Opened) else None
    return datetime.fromisoformat(occurred) if occurred else events[0].timestamp


def _conflict(case_id: UUID, actual: int | None, expected: int | None) -> VersionConflict:
    now = f" it is at version {actual}" if actual is not None else " another command won the race"
    wanted = f"expected version {expected}, but" if expected is not None else "the case changed:"
    return VersionConflict(
        f"case {case_id}: {wanted}{now}",
        hint="read the case again (GET /cases/{id}) and retry with its current version",
    )


class _CaseRepository(Repository[UUID]):
    """The library's repository brings a cached case up to date under a lock, but copies it
    for the caller after releasing that lock, so a thread could copy a case that another
    thread is half-way through updating. Here the catch-up and the copy of one case happen
    under one lock (one of :data:`_STRIPES`, chosen by the case's id)."""

    _STRIPES = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stripes = [threading.Lock() for _ in range(self._STRIPES)]

    def get(self, aggregate_id: UUID, **kwargs: Any) -> Any:
        if kwargs.get("version") is not None or not self.cache:
            return super().get(aggregate_id, **kwargs)
        with self._stripes[hash(aggregate_id) % self._STRIPES]:
            return super().get(aggregate_id, **kwargs)


class TimedeltaAsSeconds(Transcoding):
    type = timedelta
    name = "timedelta_s"

    def encode(self, obj: timedelta) -> float:
        return obj.total_seconds()

    def decode(self, data: float) -> timedelta:
        return timedelta(seconds=data)


class ClockAsDict(Transcoding):
    """An SLA clock in a snapshot of its case."""

    type = Clock
    name = "sla_clock"

    def encode(self, obj: Clock) -> dict[str, Any]:
        return {**asdict(obj), "worked": obj.worked}  # asdict would copy, not transcode, it

    def decode(self, data: dict[str, Any]) -> Clock:
        return Clock(**data)
