"""Migrating open cases to a newer version of their case type: an explicit, recorded command.

Run it as a dry run first: the report says, case by case, which status each case would take
and what the new version would find wrong with its fields. Run for real, each migrated case
records a ``Migrated`` event (and its SLA clocks restart under the new version).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from uuid import UUID

from domain.case import Case
from domain.context import CommandContext
from domain.definition import CLOSED, Definition
from domain.errors import DomainError, InvalidCommand
from domain.rules import RuleRun
from services.application import CaseLedger


@dataclass
class CaseMigration:
    """What migrating one case does (or would do)."""

    case_id: UUID
    from_version: int
    from_status: str
    to_status: str | None
    outcome: str  # "migrated", "would migrate", "skipped"
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_state_map(new: Definition, state_map: Mapping[str, str]) -> None:
    """Refuse a mapping to states the new version does not have."""
    problems = [
        f"state_map.{source}: {target!r} is not a state of v{new.version}"
        for source, target in state_map.items()
        if target not in new.states
    ]
    if problems:
        states = ", ".join(new.states)
        raise InvalidCommand("; ".join(problems), hint=f"states of v{new.version}: {states}")


def plan(case: Case, new: Definition, state_map: Mapping[str, str]) -> CaseMigration:
    """What migrating ``case`` to ``new`` would do, without doing it."""
    report = CaseMigration(case.id, case.case_type_version, case.status, None, "would migrate")
    if case.status == CLOSED:
        report.outcome, report.problems = "skipped", ["the case is closed"]
        return report
    target = state_map.get(case.status, case.status)
    if target not in new.states:
        report.outcome = "skipped"
        report.problems.append(
            f"state {case.status!r} does not exist in v{new.version}; map it in state_map"
        )
        return report
    report.to_status = target
    try:
        new.check_fields(case.fields, opening=True)
    except DomainError as error:
        report.warnings.append(error.message)
    return report


def migrate_cases(
    ledger: CaseLedger,
    case_ids: Iterable[UUID],
    new: Definition,
    state_map: Mapping[str, str],
    dry_run: bool,
    context: CommandContext,
    progress: Callable[[CaseMigration], None] = lambda _: None,
) -> list[CaseMigration]:
    """Plan (``dry_run``) or carry out the migration of each case to ``new``."""
    reports = []
    for case_id in case_ids:
        case = ledger.get_case(case_id)
        if case.case_type != new.name or case.case_type_version >= new.version:
            continue
        report = plan(case, new, state_map)
        if report.outcome == "would migrate" and not dry_run:
            report = _migrate(ledger, case_id, new, state_map, context)
        reports.append(report)
        progress(report)
    return reports


def _migrate(
    ledger: CaseLedger,
    case_id: UUID,
    new: Definition,
    state_map: Mapping[str, str],
    context: CommandContext,
) -> CaseMigration:

    def command(run: RuleRun) -> CaseMigration:
        report = plan(run.case, new, state_map)
        if report.to_status is not None and report.outcome == "would migrate":
            run.case.migrate(run.definition, new, report.to_status, run.context, run.now)
            report.outcome = "migrated"
        return report

    return ledger.run_command(case_id, None, context, command, rules_of=new).value
