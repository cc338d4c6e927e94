"""The case use cases: load a case, run one command on it, save its new events."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from domain.case import Case
from domain.case_types import case_type_named
from domain.context import CommandContext
from services.errors import CaseNotFound, VersionConflict

RETRIES_WITHOUT_EXPECTED_VERSION = 30


class CaseLedger(Application[UUID]):
    """Opens cases and runs commands on them; every command is one atomic save.

    A command given ``expected_version`` fails with :class:`VersionConflict` when the case
    has moved on; without it, a command that loses a race is retried on the fresh case.
    """

    name = "caseledger"

    def open_case(
        self,
        case_type: str,
        title: str,
        fields: dict[str, Any],
        party_id: str | None,
        context: CommandContext,
    ) -> Case:
        case = Case.open(case_type_named(case_type), title, fields, party_id, context.as_dict())
        self.save(case)
        return case

    def assign(
        self, case_id: UUID, assignee: str | None, context: CommandContext, expected: int | None
    ) -> Case:
        return self._run(case_id, expected, lambda case: case.assign(assignee, context.as_dict()))

    def change_status(
        self,
        case_id: UUID,
        status: str,
        reason: str | None,
        context: CommandContext,
        expected: int | None,
    ) -> Case:
        def command(case: Case) -> None:
            case_type = case_type_named(case.case_type)
            case.change_status(case_type, status, reason, context.as_dict())

        return self._run(case_id, expected, command)

    def add_note(
        self, case_id: UUID, text: str, context: CommandContext, expected: int | None
    ) -> Case:
        return self._run(case_id, expected, lambda case: case.add_note(text, context.as_dict()))

    def close_case(
        self, case_id: UUID, reason: str, context: CommandContext, expected: int | None
    ) -> Case:
        return self._run(case_id, expected, lambda case: case.close(reason, context.as_dict()))

    def reopen_case(
        self, case_id: UUID, reason: str, context: CommandContext, expected: int | None
    ) -> Case:
        def command(case: Case) -> None:
            case.reopen(case_type_named(case.case_type), reason, context.as_dict())

        return self._run(case_id, expected, command)

    def get_case(self, case_id: UUID) -> Case:
        """The case as its events make it now."""
        try:
            case: Case = self.repository.get(case_id)
        except AggregateNotFoundError:
            raise CaseNotFound(
                f"no case has id {case_id}", hint="check the id, or list cases with GET /cases"
            ) from None
        if not isinstance(case, Case):  # an id of another kind of aggregate
            raise CaseNotFound(f"no case has id {case_id}")
        return case

    def history(self, case_id: UUID) -> list[Case.Event]:
        """Every event of the case, in version order."""
        self.get_case(case_id)
        return [e for e in self.events.get(case_id) if isinstance(e, Case.Event)]

    def _run(self, case_id: UUID, expected: int | None, command: Callable[[Case], None]) -> Case:
        attempts = 1 if expected is not None else RETRIES_WITHOUT_EXPECTED_VERSION
        for attempt in range(attempts):
            case = self.get_case(case_id)
            if expected is not None and case.version != expected:
                raise _conflict(case_id, case.version, expected)
            command(case)
            try:
                self.save(case)
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
