"""The case use cases: load a case, run one command on it under its case type, let the case
type's rules react, and save every new event (and any child case) in one atomic save."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from domain.case import Case
from domain.context import CommandContext
from domain.definition import Definition
from domain.rules import facts, react, run_actions
from domain.sla import sla_named
from services.deadline import deadline_in
from services.errors import CaseNotFound, VersionConflict

RETRIES_WITHOUT_EXPECTED_VERSION = 30
Command = Callable[[Case, Definition, datetime], None]


class Definitions(Protocol):
    """Where the ledger finds case-type definitions (the case-type registry)."""

    def current(self, name: str) -> Definition: ...

    def definition(self, name: str, version: int) -> Definition: ...


class CaseLedger(Application[UUID]):
    """Opens cases and runs commands on them; every command is one atomic save.

    A command given ``expected_version`` fails with :class:`VersionConflict` when the case
    has moved on; without it, a command that loses a race is retried on the fresh case.
    """

    name = "caseledger"

    def __init__(
        self,
        definitions: Definitions,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        deadline_s: float | None = None,
    ) -> None:
        super().__init__(env)
        self.definitions = definitions
        self.clock = clock
        #: How long a command or a read may take before it is refused with 503; a command
        #: refused so is never stored later (``services.deadline``, ``infra.recorder``).
        self.deadline_s = deadline_s

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
            reaction = react(case, definition, 0, ctx, now, self.definitions.current)
            self.save(case, *reaction.children)
            return case

    def assign(
        self, case_id: UUID, assignee: str | None, context: CommandContext, expected: int | None
    ) -> Case:
        ctx = context.as_dict()
        return self.run_command(case_id, expected, context, lambda c, d, n: c.assign(assignee, ctx))

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
        ctx = context.as_dict()

        def command(case: Case, definition: Definition, now: datetime) -> None:
            if fields:
                view = definition.view_for(context.actor_role)
                case.update_fields(definition, fields, ctx, view)
            actor = {"id": context.actor_id, "role": context.actor_role}
            case.transition(definition, name, reason, ctx, now, facts(case, None, actor))

        return self.run_command(case_id, expected, context, command)

    def update_fields(
        self,
        case_id: UUID,
        changes: dict[str, Any],
        context: CommandContext,
        expected: int | None,
    ) -> Case:
        """Change field values, as the caller's role view allows."""
        ctx = context.as_dict()

        def command(case: Case, definition: Definition, now: datetime) -> None:
            case.update_fields(definition, changes, ctx, definition.view_for(context.actor_role))

        return self.run_command(case_id, expected, context, command)

    def add_note(
        self, case_id: UUID, text: str, context: CommandContext, expected: int | None
    ) -> Case:
        ctx = context.as_dict()
        return self.run_command(case_id, expected, context, lambda c, d, n: c.add_note(text, ctx))

    def close_case(
        self, case_id: UUID, reason: str, context: CommandContext, expected: int | None
    ) -> Case:
        ctx = context.as_dict()
        return self.run_command(
            case_id, expected, context, lambda c, d, n: c.close(d, reason, ctx, n)
        )

    def reopen_case(
        self, case_id: UUID, reason: str, context: CommandContext, expected: int | None
    ) -> Case:
        ctx = context.as_dict()
        return self.run_command(
            case_id, expected, context, lambda c, d, n: c.reopen(d, reason, ctx, n)
        )

    def reach_sla_milestone(
        self, case_id: UUID, sla: str, run: int, milestone: str, context: CommandContext
    ) -> bool:
        """Record an SLA milestone (warning or breach) and run its actions, at most once;
        ``False`` when there was nothing to record (already fired, clock moved on, not due)."""
        ctx = context.as_dict()
        recorded: list[bool] = []

        def command(case: Case, definition: Definition, now: datetime) -> None:
            recorded[:] = [case.reach_milestone(sla, run, milestone, ctx, now)]
            spec = sla_named(definition, sla)
            if recorded[0] and spec is not None:
                actions = spec.on_breach if milestone == "deadline" else spec.on_warning
                if actions:
                    run_actions(
                        case,
                        definition,
                        f"sla:{sla}",
                        f"sla:{milestone}",
                        case.version,
                        actions,
                        ctx,
                        now,
                        self.definitions.current,
                        [],
                    )

        self.run_command(case_id, None, context, command)
        return recorded[0]

    def record_delivery(
        self,
        case_id: UUID,
        notification_id: str,
        error: str | None,
        detail: str,
        context: CommandContext,
    ) -> bool:
        """Record whether a notification was delivered, once per notification."""
        ctx = context.as_dict()
        recorded: list[bool] = []

        def command(case: Case, definition: Definition, now: datetime) -> None:
            recorded[:] = [case.record_delivery(notification_id, error, detail, ctx)]

        self.run_command(case_id, None, context, command)
        return recorded[0]

    def get_case(self, case_id: UUID) -> Case:
        """The case as its events make it now."""
        try:
            with deadline_in(self.deadline_s):
                case: Case = self.repository.get(case_id)
        except AggregateNotFoundError:
            raise CaseNotFound(
                f"no case has id {case_id}", hint="check the id, or list cases with GET /cases"
            ) from None
        if not isinstance(case, Case):  # an id of another kind of aggregate
            raise CaseNotFound(f"no case has id {case_id}")
        return case

    def definition_of(self, case: Case) -> Definition:
        """The case type version the case is pinned to."""
        return self.definitions.definition(case.case_type, case.case_type_version)

    def history(self, case_id: UUID) -> list[Case.Event]:
        """Every event of the case, in version order."""
        with deadline_in(self.deadline_s):
            self.get_case(case_id)
            return [e for e in self.events.get(case_id) if isinstance(e, Case.Event)]

    def run_command(
        self,
        case_id: UUID,
        expected: int | None,
        context: CommandContext,
        command: Command,
        rules_of: Definition | None = None,
    ) -> Case:
        """Load the case, run ``command`` on it with its pinned definition, let the rules of
        ``rules_of`` (default: that same definition) react, and save atomically, all within
        the ledger's deadline."""
        with deadline_in(self.deadline_s):
            return self._run_command(case_id, expected, context, command, rules_of)

    def _run_command(
        self,
        case_id: UUID,
        expected: int | None,
        context: CommandContext,
        command: Command,
        rules_of: Definition | None,
    ) -> Case:
        attempts = 1 if expected is not None else RETRIES_WITHOUT_EXPECTED_VERSION
        for attempt in range(attempts):
            case = self.get_case(case_id)
            if expected is not None and case.version != expected:
                raise _conflict(case_id, case.version, expected)
            definition, now = self.definition_of(case), self.clock()
            command(case, definition, now)
            if not case.pending_events:
                return case
            reaction = react(
                case, rules_of or definition, 0, context.as_dict(), now, self.definitions.current
            )
            try:
                self.save(case, *reaction.children)
            except IntegrityError:
                if attempt + 1 == attempts:
                    raise _conflict(case_id, None, expected) from None
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # spread out the racers
                continue
            return case
        raise AssertionError("unreachable")  # pragma: no cover


def _conflict(case_id: UUID, actual: int | None, expected: int | None) -> VersionConflict:
    now = f" it is at version {actual}" if actual is not None else " another command won the race"
    wanted = f"expected version {expected}, but" if expected is not None else "the case changed:"
    return VersionConflict(
        f"case {case_id}: {wanted}{now}",
        hint="read the case again (GET /cases/{id}) and retry with its current version",
    )
